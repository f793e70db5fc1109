package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/snapshot"
)

type snapshotFilter struct {
	tags, hosts, paths []string
}

func (f *snapshotFilter) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.tags, "tag", nil, "only snapshots with `TAG` (repeatable; any matches; also narrows 'latest')")
	c.Flags().StringArrayVar(&f.hosts, "host", nil, "only snapshots from `HOST` (repeatable; also narrows 'latest')")
	c.Flags().StringArrayVar(&f.paths, "path", nil, "only snapshots that include `PATH` (repeatable; also narrows 'latest')")
}

func (f *snapshotFilter) match(sn *snapshot.Snapshot) bool {
	if len(f.hosts) > 0 && !contains(f.hosts, sn.Hostname) {
		return false
	}
	if len(f.tags) > 0 {
		ok := false
		for _, t := range f.tags {
			ok = ok || sn.HasTag(t)
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.paths {
		abs, err := filepath.Abs(p)
		if err != nil || !contains(sn.Paths, abs) {
			return false
		}
	}
	return true
}

// String describes the filter as flags, for error messages.
func (f *snapshotFilter) String() string {
	var parts []string
	for _, h := range f.hosts {
		parts = append(parts, "--host "+h)
	}
	for _, t := range f.tags {
		parts = append(parts, "--tag "+t)
	}
	for _, p := range f.paths {
		parts = append(parts, "--path "+p)
	}
	return strings.Join(parts, " ")
}

// apply keeps the snapshots that match, in order.
func (f *snapshotFilter) apply(snaps []*snapshot.Snapshot) []*snapshot.Snapshot {
	var out []*snapshot.Snapshot
	for _, sn := range snaps {
		if f.match(sn) {
			out = append(out, sn)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type snapshotJSON struct {
	ID       string            `json:"id"`
	ShortID  string            `json:"short_id"`
	Time     string            `json:"time"`
	Host     string            `json:"host"`
	Username string            `json:"username,omitempty"`
	Paths    []string          `json:"paths"`
	Tags     []string          `json:"tags"`
	Tree     string            `json:"tree"`
	Parent   string            `json:"parent,omitempty"`
	Original string            `json:"original,omitempty"`
	Summary  *snapshot.Summary `json:"summary,omitempty"`
}

func toSnapshotJSON(sn *snapshot.Snapshot) snapshotJSON {
	j := snapshotJSON{
		ID: sn.ID.String(), ShortID: sn.ID.Short(), Time: sn.Time.Format(time.RFC3339Nano),
		Host: sn.Hostname, Username: sn.Username, Paths: sn.Paths, Tags: sn.Tags,
		Tree: sn.Tree.String(), Summary: sn.Summary,
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if sn.Parent != nil {
		j.Parent = sn.Parent.String()
	}
	if sn.Original != nil {
		j.Original = sn.Original.String()
	}
	return j
}

func newSnapshotsCommand(g *globals) *cobra.Command {
	var filter snapshotFilter
	c := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			if len(snaps) > 0 {
				g.metrics.latestSnapshot = snaps[len(snaps)-1].Time
			}
			out := filter.apply(snaps)
			if g.json {
				list := make([]snapshotJSON, 0, len(out))
				for _, sn := range out {
					list = append(list, toSnapshotJSON(sn))
				}
				return g.printJSON(list)
			}
			if g.quiet {
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tSize\tPaths")
			for _, sn := range out {
				size := ""
				if sn.Summary != nil {
					size = formatBytes(sn.Summary.BytesProcessed)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sn.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04:05"),
					sn.Hostname, strings.Join(sn.Tags, ","), size, strings.Join(sn.Paths, ", "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d snapshots\n", len(out))
			return nil
		},
	}
	filter.register(c)
	return c
}

// formatBytes prints a size in binary units.
func formatBytes(n int64) string { return report.BinarySize(n) }
