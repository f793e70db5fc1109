package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/prune"
	"github.com/courtbak/courtbak/repo/retention"
)

type forgetGroupJSON struct {
	Host   string         `json:"host"`
	Paths  []string       `json:"paths"`
	Keep   []keptJSON     `json:"keep"`
	Remove []snapshotJSON `json:"remove"`
}

type keptJSON struct {
	snapshotJSON
	Reasons []string `json:"reasons"`
}

type forgetJSON struct {
	DryRun bool              `json:"dry_run"`
	Groups []forgetGroupJSON `json:"groups"`
	// Removed counts the snapshots deleted (0 in a dry run).
	Removed int           `json:"removed"`
	Prune   *prune.Result `json:"prune,omitempty"`
}

type pruneFlags struct {
	grace        time.Duration
	adopt        bool
	repackUnused float64
}

func (f *pruneFlags) register(c *cobra.Command) {
	c.Flags().DurationVar(&f.grace, "grace", prune.DefaultGrace,
		"delete unused data this long after it was marked; more than 24h, or 0 to mark and delete at once when no backup into the repository is running")
	c.Flags().Float64Var(&f.repackUnused, "repack-unused", 100*prune.DefaultRepackUnused,
		"copy the used blobs out of a pack, and delete it, once `PERCENT` of it is unused (1-100)")
	c.Flags().BoolVar(&f.adopt, "adopt", false, "take over a pending mark this host has no plan for (its plan was lost, or its host is gone); only when no other prune runs")
}

func newForgetCommand(g *globals) *cobra.Command {
	var (
		p         retention.Policy
		filter    snapshotFilter
		dryRun    bool
		alsoPrune bool
		pf        pruneFlags
	)
	c := &cobra.Command{
		Use:   "forget",
		Short: "Remove snapshots according to a retention policy",
		Long: "Apply a retention policy to the snapshots of each host and set of paths: a snapshot is kept if any --keep rule keeps it, " +
			"and removed otherwise. Removing a snapshot frees no space by itself: prune (or --prune) deletes the data no snapshot needs.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if p.Empty() {
				return errors.New("forget needs a policy: give at least one --keep-* option (nothing was removed)")
			}
			if err := p.Validate(); err != nil {
				return err
			}
			ctx := c.Context()
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			groups := retention.Apply(filter.apply(snaps), p)
			out := forgetJSON{DryRun: dryRun, Groups: []forgetGroupJSON{}}
			for _, gr := range groups {
				out.Groups = append(out.Groups, toForgetGroupJSON(gr))
			}
			g.printForget(groups, dryRun)
			if !dryRun {
				// The log records the forget before anything is deleted:
				// a deletion it does not record is a rollback to verify.
				var ids []blob.ID
				for _, gr := range groups {
					for _, sn := range gr.Remove {
						ids = append(ids, sn.ID)
					}
				}
				if len(ids) > 0 {
					if err := r.AppendLog(ctx, nil, ids); err != nil {
						return fmt.Errorf("nothing was removed: %w", err)
					}
				}
				for _, gr := range groups {
					for _, sn := range gr.Remove {
						if err := r.RemoveSnapshot(ctx, sn.ID); err != nil {
							if g.json {
								_ = g.printJSON(out)
							}
							return err
						}
						out.Removed++
					}
				}
				g.printf("removed %d snapshots\n", out.Removed)
			}
			if alsoPrune {
				var forgotten []blob.ID
				for _, gr := range groups {
					for _, sn := range gr.Remove {
						forgotten = append(forgotten, sn.ID)
					}
				}
				res, err := g.runPrune(ctx, r, pf, dryRun, forgotten)
				out.Prune = res
				if g.json {
					_ = g.printJSON(out)
				}
				return err
			}
			if g.json {
				return g.printJSON(out)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.IntVar(&p.Last, "keep-last", 0, "keep the `N` newest snapshots (-1: all)")
	fl.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last `N` hours that have one (-1: all)")
	fl.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last `N` days that have one (-1: all)")
	fl.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last `N` ISO weeks that have one (-1: all)")
	fl.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last `N` months that have one (-1: all)")
	fl.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last `N` years that have one (-1: all)")
	fl.DurationVar(&p.Within, "keep-within", 0, "keep snapshots taken within `DURATION` (e.g. 720h) of the group's newest one")
	fl.StringArrayVar(&p.Tags, "keep-tag", nil, "keep snapshots with `TAG` (repeatable), e.g. a legal hold")
	fl.BoolVar(&dryRun, "dry-run", false, "only show what would be removed (and, with --prune, deleted)")
	fl.BoolVar(&alsoPrune, "prune", false, "prune afterwards: delete the data no snapshot needs")
	filter.register(c)
	pf.register(c)
	return c
}

func toForgetGroupJSON(gr retention.Group) forgetGroupJSON {
	j := forgetGroupJSON{Host: gr.Host, Paths: gr.Paths, Keep: []keptJSON{}, Remove: []snapshotJSON{}}
	for _, k := range gr.Keep {
		j.Keep = append(j.Keep, keptJSON{snapshotJSON: toSnapshotJSON(k.Snapshot), Reasons: k.Reasons})
	}
	for _, sn := range gr.Remove {
		j.Remove = append(j.Remove, toSnapshotJSON(sn))
	}
	return j
}

// printForget shows, per group, each snapshot with the rules that keep it
// or "remove".
func (g *globals) printForget(groups []retention.Group, dryRun bool) {
	if g.quiet || g.json {
		return
	}
	verb := "remove"
	if dryRun {
		verb = "would remove"
	}
	for _, gr := range groups {
		g.printf("host %s, paths %s: keep %d, %s %d\n", gr.Host, strings.Join(gr.Paths, ", "), len(gr.Keep), verb, len(gr.Remove))
		tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTime\tTags\tDecision")
		for _, k := range gr.Keep {
			sn := k.Snapshot
			fmt.Fprintf(tw, "%s\t%s\t%s\tkeep (%s)\n", sn.ID.Short(), sn.Time.Format("2006-01-02 15:04:05"), strings.Join(sn.Tags, ","), strings.Join(k.Reasons, ", "))
		}
		for _, sn := range gr.Remove {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sn.ID.Short(), sn.Time.Format("2006-01-02 15:04:05"), strings.Join(sn.Tags, ","), verb)
		}
		_ = tw.Flush()
		g.printf("\n")
	}
}

func newPruneCommand(g *globals) *cobra.Command {
	var (
		pf     pruneFlags
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot needs",
		Long: "Delete data no snapshot needs, safely while other hosts back up. Each run deletes what an earlier run marked unused " +
			"at least --grace ago and no snapshot has needed since, then marks what is unused now. Run it from one host, " +
			"for example daily from cron at the center; the plan between runs is kept in that host's cache directory.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			res, err := g.runPrune(ctx, r, pf, dryRun, nil)
			if g.json && res != nil {
				_ = g.printJSON(res)
			}
			return err
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be marked and deleted")
	pf.register(c)
	return c
}

// runPrune runs a prune and prints what it did, unless --json. In a dry
// run, the forgotten snapshots count as removed.
func (g *globals) runPrune(ctx context.Context, r *repo.Repository, pf pruneFlags, dryRun bool, forgotten []blob.ID) (*prune.Result, error) {
	if pf.repackUnused < 1 || pf.repackUnused > 100 {
		return nil, fmt.Errorf("--repack-unused %g: give a percentage from 1 to 100", pf.repackUnused)
	}
	opts := prune.Options{Grace: pf.grace, DryRun: dryRun, Adopt: pf.adopt, RepackUnused: pf.repackUnused / 100, Forgotten: forgotten}
	if g.showProgress() {
		opts.Progress = func(step string) { fmt.Fprintf(g.stderr, "courtbak: prune: %s\n", step) }
	}
	res, err := prune.Run(ctx, r, opts)
	if res == nil {
		return nil, err
	}
	would := func(done, planned string) string {
		if dryRun {
			return planned
		}
		return done
	}
	if s := res.Swept; s != nil {
		g.metrics.bytes = count(s.BytesDeleted)
		g.printf("%s %d unused packs (%s), %s %d index files", would("deleted", "would delete"), s.PacksDeleted, formatBytes(s.BytesDeleted),
			would("deleted", "would delete"), s.IndexFilesDeleted)
		if s.PacksKept > 0 {
			g.printf("; kept %d marked packs that snapshots need again", s.PacksKept)
		}
		g.printf("\n")
		if s.PacksNotDeleted > 0 {
			g.printf("%d packs could not be deleted (see above); the next prune tries again\n", s.PacksNotDeleted)
		}
	}
	if m := res.Marked; m != nil {
		g.printf("%d snapshots need %d packs (%s)\n", m.Snapshots, m.PacksUsed, formatBytes(m.BytesUsed))
		if m.PacksRepacked > 0 {
			g.printf("%s %s of used data out of %d partly unused packs (%s)\n", would("copied", "would copy"), formatBytes(m.BytesMoved),
				m.PacksRepacked, formatBytes(m.BytesRepacked))
		}
		if m.IndexFilesRead > 0 && m.PacksUnused+m.PacksUnindexed+m.PacksRepacked+m.PacksReindexed == 0 {
			g.printf("%s %d index files into bounded ones\n", would("consolidated", "would consolidate"), m.IndexFilesRead)
		}
		if m.PacksReindexed > 0 {
			g.printf("indexed %d packs again that snapshots need but no index file listed\n", m.PacksReindexed)
		}
		unused := m.PacksUnused + m.PacksUnindexed + m.PacksRepacked
		unusedBytes := formatBytes(m.BytesUnused + m.BytesUnindexed + m.BytesRepacked)
		switch {
		case unused == 0:
			g.printf("nothing unused to mark\n")
		case pf.grace == 0:
			g.printf("%s %d unused packs (%s) for deletion at once\n", would("marked", "would mark"), unused, unusedBytes)
		default:
			g.printf("%s %d unused packs (%s); a prune run after %s deletes those still unused\n", would("marked", "would mark"), unused,
				unusedBytes, m.Due.Local().Format("2006-01-02 15:04"))
		}
	}
	if p := res.Pending; p != nil {
		g.printf("%d packs (%s) marked unused at %s wait for the grace period: a prune run after %s deletes those still unused\n",
			p.Packs, formatBytes(p.Bytes), p.Marked.Local().Format("2006-01-02 15:04"), p.Due.Local().Format("2006-01-02 15:04"))
	}
	return res, err
}
