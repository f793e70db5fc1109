package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/replicate"
)

// replicaJSON is one replica's line of the --json summary.
type replicaJSON struct {
	replicate.Result
	DurationSeconds float64       `json:"duration_s"`
	Requests        *requestsJSON `json:"requests,omitempty"`
	Error           string        `json:"error,omitempty"`
}

// requestsJSON is the adaptive limit on the requests in flight to an S3
// replica (docs/replication.md §7), at the end of its run.
type requestsJSON struct {
	Limit int `json:"limit"`
	Peak  int `json:"peak"`
	Drops int `json:"drops"`
}

// requestStats reports be's adaptive limit, if it has one.
func requestStats(be remote.Backend) *requestsJSON {
	a, ok := remote.As[*remote.Adaptive](be)
	if !ok {
		return nil
	}
	st := a.Stats()
	return &requestsJSON{Limit: st.Limit, Peak: st.Peak, Drops: st.Drops}
}

type replicateJSON struct {
	MessageType    string        `json:"message_type"`
	Primary        string        `json:"primary"`
	Replicas       []replicaJSON `json:"replicas"`
	ObjectsCopied  int           `json:"objects_copied"`
	BytesCopied    int64         `json:"bytes_copied"`
	ObjectsPresent int           `json:"objects_present"`
	BytesPresent   int64         `json:"bytes_present"`
	Failed         int           `json:"replicas_failed"`
	DurationSec    float64       `json:"duration_s"`
}

func newReplicateCommand(g *globals) *cobra.Command {
	var (
		to      []string
		workers int
	)
	c := &cobra.Command{
		Use:   "replicate",
		Short: "Copy what the replicas lack from the primary (no password needed)",
		Long: `Bring every replica (--to URL, repeatable; else the --replica list) up to date
with the primary (--repo): copy the objects it lacks, unchanged, each checked
against its name before it is written. Keys and config go first, then packs,
then index, then snapshots, so a replica is a complete repository at every
moment; a run that is killed is simply run again. An object missing or damaged
at the primary is copied from another replica that holds it intact. Replicas
are never deleted from: objects pruned at the primary stay until pruned there.

A replica that holds another repository is refused. Replication needs storage
credentials only, no repository password.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			targets := to
			if len(targets) == 0 {
				targets = g.replicas
			}
			if len(targets) == 0 {
				return errors.New("no replica given: use --to URL or --replica URL (or COURTBAK_REPLICAS)")
			}
			if workers < 1 {
				return fmt.Errorf("--workers must be at least 1")
			}
			primary, err := g.openBackend(ctx, g.repoURL)
			if err != nil {
				return err
			}
			defer primary.Close()
			urls := slices.Concat(targets, g.replicas)
			slices.Sort(urls)
			urls = slices.Compact(urls)
			backends := map[string]remote.Backend{}
			for _, u := range urls {
				be, err := g.openBackend(ctx, u)
				if err != nil {
					return err
				}
				defer be.Close()
				backends[u] = be
			}

			start := time.Now()
			sum := replicateJSON{MessageType: "summary", Primary: primary.Location()}
			var failures []error
			for _, u := range targets {
				replica := backends[u]
				opts := replicate.Options{Workers: workers, Warn: g.warn, Fallbacks: fallbacks(g.replicas, u, backends)}
				var bar *progressbar.ProgressBar
				opts.OnPlan = func(_ int, n int64) {
					if n > 0 {
						bar = g.bytesBar(n, "replicate to "+replica.Location())
					}
				}
				opts.OnBytes = func(n int64) {
					if bar != nil {
						_ = bar.Add64(n)
					}
				}
				t0 := time.Now()
				res, err := replicate.Run(ctx, g.storeCtx, primary, replica, opts)
				if bar != nil {
					_ = bar.Finish()
				}
				rj := replicaJSON{Result: res, DurationSeconds: time.Since(t0).Seconds(), Requests: requestStats(replica)}
				if err != nil {
					rj.Error = err.Error()
					failures = append(failures, err)
				}
				sum.Replicas = append(sum.Replicas, rj)
				sum.ObjectsCopied += res.ObjectsCopied
				sum.BytesCopied += res.BytesCopied
				sum.ObjectsPresent += res.ObjectsPresent
				sum.BytesPresent += res.BytesPresent
				if err == nil {
					if g.metrics.replicaSynced == nil {
						g.metrics.replicaSynced = map[string]time.Time{}
					}
					g.metrics.replicaSynced[res.Location] = t0 // it holds what the primary had then
					g.printf("%s: copied %d objects (%s), %d already present%s\n", g.labelled(u, res.Location), res.ObjectsCopied,
						formatBytes(res.BytesCopied), res.ObjectsPresent, extraNote(res))
				}
				if ctx.Err() != nil {
					break
				}
			}
			sum.Failed = len(failures)
			g.metrics.bytes, g.metrics.errors = count(sum.BytesCopied), count(len(failures))
			sum.DurationSec = time.Since(start).Seconds()
			if g.json {
				if err := g.printJSON(sum); err != nil {
					return err
				}
			}
			switch {
			case ctx.Err() != nil:
				return errors.New("replication interrupted; what was copied is consistent, run replicate again to finish")
			case len(failures) == 1:
				return failures[0]
			case len(failures) > 1:
				return fmt.Errorf("replication to %d of %d replicas failed: %w", len(failures), len(targets), errors.Join(failures...))
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&to, "to", nil, "replicate to `URL` (repeatable; default: the --replica list)")
	c.Flags().IntVar(&workers, "workers", replicate.DefaultWorkers, "at most `N` objects copied at once (and at most 64 MiB of them)")
	return c
}

// fallbacks are the --replica copies other than target, in priority order:
// where an object missing or damaged at the primary is copied from.
func fallbacks(replicas []string, target string, backends map[string]remote.Backend) []remote.Backend {
	var out []remote.Backend
	for _, u := range replicas {
		if u != target {
			out = append(out, backends[u])
		}
	}
	return out
}

func extraNote(res replicate.Result) string {
	if res.ObjectsExtra == 0 {
		return ""
	}
	return fmt.Sprintf(", %d no longer at the primary (kept)", res.ObjectsExtra)
}
