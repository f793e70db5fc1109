package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/status"
)

type statusFlags struct {
	maxAge  time.Duration
	reports []string
	labels  labelFlags
}

func newStatusCommand(g *globals) *cobra.Command {
	var f statusFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Every court's protection at a glance: newest backup, replica lag, last verification",
		Long: `Show whether a court's backups are protected: when the newest snapshot was
stored and, with the password, the newest snapshot of each host and set of
paths and its age against --max-age; for each --replica the objects and bytes
it lacks (replication lag); the last verification recorded at each copy and
how much of the data it has covered; the repository's size and growth per day.

Without a password (no --password-file, --password-command or
COURTBAK_PASSWORD) everything comes from storage listings and the small state
that verify runs leave: the provincial center needs no password.

--report FILE writes the status as a self-contained HTML page (.html) or
JSON (.json). Exit status: 0 when every court is protected, 1 when any
breaches its threshold (a copy unreachable, a snapshot older than --max-age, a
replica lacking objects older than --max-age, a verification that found
problems).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runStatus(c.Context(), g, &f) },
	}
	fl := c.Flags()
	fl.DurationVar(&f.maxAge, "max-age", 0, "the newest snapshot must be younger than `DURATION` (e.g. 26h), and replicas must hold what the primary stored before that; 0 checks no age")
	fl.StringArrayVar(&f.reports, "report", nil, "write the status to `FILE` (.html or .json; repeatable)")
	f.labels.register(fl, false)
	return c
}

func runStatus(ctx context.Context, g *globals, f *statusFlags) error {
	if f.maxAge < 0 {
		return fmt.Errorf("--max-age %s: give a positive duration such as 26h, or 0", f.maxAge)
	}
	for _, p := range f.reports {
		if ext := strings.ToLower(filepath.Ext(p)); ext != ".html" && ext != ".htm" && ext != ".json" {
			return fmt.Errorf("status report %q: name it .html or .json to choose the format", p)
		}
	}
	courts, err := statusCourts(g, f)
	if err != nil {
		return err
	}
	opts := status.Options{Open: g.openBackend}
	if g.passwordFile != "" || g.passwordCommand != "" || os.Getenv("COURTBAK_PASSWORD") != "" {
		opts.Snapshots = g.statusSnapshots
	}
	sum := status.Collect(ctx, courts, opts)
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range f.reports {
		var data []byte
		if strings.HasSuffix(strings.ToLower(p), ".json") {
			data, err = sum.JSON()
		} else {
			data, err = sum.HTML(time.Local)
		}
		if err != nil {
			return err
		}
		if err := writeReportAtomic(p, data); err != nil {
			return fmt.Errorf("write status report: %w", err)
		}
	}
	if g.json {
		if err := g.printJSON(sum); err != nil {
			return err
		}
	} else if !g.quiet {
		printStatus(g, sum)
	}
	if !sum.OK {
		return &exitError{code: exitFatal, err: fmt.Errorf("%d of %d %s %s attention", sum.Breached, len(sum.Courts),
			countNoun(len(sum.Courts), "court", "courts"), countNoun(sum.Breached, "needs", "need"))}
	}
	return nil
}

// statusCourts is the court of --repo and its --replicas.
func statusCourts(g *globals, f *statusFlags) ([]status.Court, error) {
	if g.repoURL == "" {
		return nil, errors.New("no repository given: use --repo URL (and --replica URL for each copy) or set COURTBAK_REPOSITORY")
	}
	labels, err := f.labels.replicaLabels(g.replicas)
	if err != nil {
		return nil, err
	}
	c := status.Court{Label: f.labels.court, Primary: status.Site{Label: f.labels.primary, URL: g.repoURL}, MaxAge: f.maxAge}
	for i, u := range g.replicas {
		c.Replicas = append(c.Replicas, status.Site{Label: labels[i], URL: u})
	}
	return []status.Court{c}, nil
}

// statusSnapshots reads a court's snapshots with the password, through
// the local cache (one request per snapshot not yet cached).
func (g *globals) statusSnapshots(ctx context.Context, _ status.Court, be remote.Backend) ([]status.Snapshot, error) {
	pw, err := g.password(false)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, pw, g.repoOptions())
	if err != nil {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]status.Snapshot, len(snaps))
	for i, s := range snaps {
		out[i] = status.Snapshot{ID: s.ID.String(), Time: s.Time, Host: s.Hostname, Paths: s.Paths}
	}
	return out, nil
}

// printStatus prints one line per copy of each court, then what breaches.
func printStatus(g *globals, sum *status.Summary) {
	now := sum.Generated
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "court\tstatus\tnewest backup\tcopy\treplication\tlast verification\tsize\tgrowth/day")
	for _, c := range sum.Courts {
		state := "protected"
		if !c.OK {
			state = "ATTENTION"
		}
		for i, cp := range c.Copies {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Label, state, c.NewestText(now), cp.Name(), cp.LagText(), cp.VerifyText(now), formatBytes(c.Bytes), formatBytes(c.GrowthPerDay))
			} else {
				fmt.Fprintf(tw, "\t\t\t%s\t%s\t%s\t\t\n", cp.Name(), cp.LagText(), cp.VerifyText(now))
			}
		}
	}
	_ = tw.Flush()
	for _, c := range sum.Courts {
		for _, b := range c.Breaches {
			fmt.Fprintf(g.stdout, "%s: %s\n", c.Label, b)
		}
	}
	fmt.Fprintln(g.stdout, sum.Headline())
}
