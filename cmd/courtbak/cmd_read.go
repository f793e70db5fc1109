package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// findSnapshot resolves a SNAPSHOT argument; the filter narrows what
// "latest" means (the newest of one host, say). An explicit id is looked up
// among all snapshots.
func findSnapshot(ctx context.Context, r *repo.Repository, ref string, filter *snapshotFilter) (*snapshot.Snapshot, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return resolveSnapshot(snaps, ref, filter)
}

func resolveSnapshot(snaps []*snapshot.Snapshot, ref string, filter *snapshotFilter) (*snapshot.Snapshot, error) {
	if ref != "latest" {
		return snapshot.Find(snaps, ref)
	}
	kept := filter.apply(snaps)
	if len(kept) == 0 && len(snaps) > 0 {
		return nil, fmt.Errorf("%s: none of the %d snapshots matches %s: %w", ref, len(snaps), filter, snapshot.ErrNotFound)
	}
	return snapshot.Find(kept, ref)
}

type lsJSON struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Size   uint64 `json:"size"`
	Mode   string `json:"mode"`
	MTime  string `json:"mtime"`
	BLAKE3 string `json:"blake3,omitempty"`
	Target string `json:"link_target,omitempty"`
}

func newLsCommand(g *globals) *cobra.Command {
	var filter snapshotFilter
	c := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files in a snapshot",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			sn, err := findSnapshot(ctx, r, args[0], &filter)
			if err != nil {
				return err
			}
			prefix := "/"
			if len(args) == 2 {
				prefix = path.Clean("/" + args[1])
			}
			found := prefix == "/"
			err = snapshot.Walk(ctx, r, sn.Tree, func(p string, n *snapshot.Node) error {
				inside := prefix == "/" || p == prefix || strings.HasPrefix(p, prefix+"/")
				if !inside {
					if n.Type == snapshot.NodeDir && strings.HasPrefix(prefix, p+"/") {
						return nil // on the way to the prefix
					}
					return snapshot.ErrSkipDir
				}
				found = true
				if g.json {
					j := lsJSON{Path: p, Type: n.Type, Size: n.Size, Mode: n.Mode.String(), MTime: n.ModTime.Format(time.RFC3339Nano), Target: n.LinkTarget}
					if n.BLAKE3 != nil {
						j.BLAKE3 = n.BLAKE3.String()
					}
					return g.printJSON(j)
				}
				if !g.quiet {
					fmt.Fprintf(g.stdout, "%s %12d %s %s\n", n.Mode, n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), lsName(p, n))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%s: no such path in snapshot %s", prefix, sn.ID.Short())
			}
			return nil
		},
	}
	filter.register(c)
	return c
}

func lsName(p string, n *snapshot.Node) string {
	if n.Type == snapshot.NodeSymlink {
		return p + " -> " + n.LinkTarget
	}
	return p
}

func newRestoreCommand(g *globals) *cobra.Command {
	var (
		target   string
		includes []string
		filter   snapshotFilter
	)
	c := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR",
		Short: "Restore a snapshot, checking every file against its recorded BLAKE3",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if target == "" {
				return fmt.Errorf("give --target DIR: where to restore to")
			}
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			sn, err := findSnapshot(ctx, r, args[0], &filter)
			if err != nil {
				return err
			}
			opts := restorer.Options{Target: target, Includes: includes}
			var total int64
			if sn.Summary != nil && len(includes) == 0 {
				total = sn.Summary.BytesProcessed
			}
			bar := g.bytesBar(total, "restore")
			if bar != nil {
				opts.OnBytes = func(n int64) { _ = bar.Add64(n) }
			}
			start := time.Now()
			res, err := restorer.Restore(ctx, r, sn, opts)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			g.metrics.files, g.metrics.bytes = count(res.Files), count(res.Bytes)
			if g.json {
				return g.printJSON(map[string]any{
					"message_type": "summary", "snapshot_id": sn.ID.String(), "target": target,
					"files_restored": res.Files, "dirs_restored": res.Dirs, "symlinks_restored": res.Symlinks,
					"bytes_restored": res.Bytes, "files_verified": res.Files, "duration_s": time.Since(start).Seconds(),
				})
			}
			if res.Files+res.Symlinks == 0 && len(includes) > 0 {
				return fmt.Errorf("no file in snapshot %s matches --include %s", sn.ID.Short(), strings.Join(includes, " --include "))
			}
			g.printf("restored snapshot %s to %s: %d %s (%s, each verified against its BLAKE3), %d %s, %d %s\n",
				sn.ID.Short(), target, res.Files, countNoun(res.Files, "file", "files"), formatBytes(res.Bytes),
				res.Dirs, countNoun(res.Dirs, "directory", "directories"), res.Symlinks, countNoun(res.Symlinks, "symlink", "symlinks"))
			return nil
		},
	}
	filter.register(c)
	c.Flags().StringVarP(&target, "target", "t", "", "restore into `DIR`")
	c.Flags().StringArrayVarP(&includes, "include", "i", nil, "restore only paths matching `GLOB` (repeatable; matched against the absolute path in the snapshot, its parents, and the base name)")
	return c
}

func newDumpCommand(g *globals) *cobra.Command {
	var filter snapshotFilter
	c := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write one file's contents to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			sn, err := findSnapshot(ctx, r, args[0], &filter)
			if err != nil {
				return err
			}
			n, err := snapshot.FindNode(ctx, r, sn.Tree, args[1])
			if err != nil {
				return err
			}
			if n.Type != snapshot.NodeFile {
				return fmt.Errorf("%s is a %s; dump writes single files (use restore --include for directories)", args[1], n.Type)
			}
			return restorer.WriteContent(ctx, r, *n, os.Stdout, nil)
		},
	}
	filter.register(c)
	return c
}

func newDiffCommand(g *globals) *cobra.Command {
	var filter snapshotFilter
	c := &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show added, removed and changed paths between two snapshots",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			a, err := resolveSnapshot(snaps, args[0], &filter)
			if err != nil {
				return err
			}
			b, err := resolveSnapshot(snaps, args[1], &filter)
			if err != nil {
				return err
			}
			changes, err := snapshot.Diff(ctx, r, a.Tree, b.Tree)
			if err != nil {
				return err
			}
			counts := map[string]int{}
			for _, ch := range changes {
				counts[ch.Kind]++
				if g.json {
					if err := g.printJSON(map[string]string{"message_type": "change", "path": ch.Path, "modifier": ch.Kind}); err != nil {
						return err
					}
					continue
				}
				g.printf("%s  %s\n", diffMark[ch.Kind], ch.Path)
			}
			if g.json {
				return g.printJSON(map[string]any{"message_type": "statistics", "source_snapshot": a.ID.String(), "target_snapshot": b.ID.String(),
					"added": counts[snapshot.ChangeAdded], "removed": counts[snapshot.ChangeRemoved], "changed": counts[snapshot.ChangeModified]})
			}
			g.printf("\n%d added, %d removed, %d changed\n", counts[snapshot.ChangeAdded], counts[snapshot.ChangeRemoved], counts[snapshot.ChangeModified])
			return nil
		},
	}
	filter.register(c)
	return c
}

var diffMark = map[string]string{snapshot.ChangeAdded: "+", snapshot.ChangeRemoved: "-", snapshot.ChangeModified: "M"}
