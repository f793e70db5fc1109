package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

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

// lsJSON is one line of ls --json. JSON strings hold only UTF-8: a path or
// link target that is not valid UTF-8 is printed with U+FFFD in place of
// each invalid byte, and its exact bytes (base64, as trees keep them) are
// given in path_raw or link_target_raw.
type lsJSON struct {
	Path      string `json:"path"`
	PathRaw   []byte `json:"path_raw,omitempty"`
	Type      string `json:"type"`
	Size      uint64 `json:"size"`
	Mode      string `json:"mode"`
	MTime     string `json:"mtime"`
	BLAKE3    string `json:"blake3,omitempty"`
	Target    string `json:"link_target,omitempty"`
	TargetRaw []byte `json:"link_target_raw,omitempty"`
}

// rawIfNotUTF8 returns s's bytes when s is not valid UTF-8, else nil.
func rawIfNotUTF8(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
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
					j := lsJSON{Path: p, PathRaw: rawIfNotUTF8(p), Type: n.Type, Size: n.Size, Mode: n.Mode.String(), MTime: n.ModTime.Format(time.RFC3339Nano), Target: n.LinkTarget, TargetRaw: rawIfNotUTF8(n.LinkTarget)}
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
		dryRun   bool
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
			if dryRun {
				return restoreDryRun(ctx, g, r, sn, target, includes)
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
			skipped := g.skippedCopies()
			if g.json {
				summary := map[string]any{
					"message_type": "summary", "snapshot_id": sn.ID.String(), "target": target,
					"files_restored": res.Files, "dirs_restored": res.Dirs, "symlinks_restored": res.Symlinks,
					"bytes_restored": res.Bytes, "files_verified": res.Files, "duration_s": time.Since(start).Seconds(),
				}
				if skipped != nil {
					summary["copies_skipped"] = skipped
				}
				return g.printJSON(summary)
			}
			if res.Files+res.Symlinks == 0 && len(includes) > 0 {
				return fmt.Errorf("no file in snapshot %s matches --include %s", sn.ID.Short(), strings.Join(includes, " --include "))
			}
			g.printf("restored snapshot %s to %s: %d %s (%s, each verified against its BLAKE3), %d %s, %d %s\n",
				sn.ID.Short(), target, res.Files, countNoun(res.Files, "file", "files"), formatBytes(res.Bytes),
				res.Dirs, countNoun(res.Dirs, "directory", "directories"), res.Symlinks, countNoun(res.Symlinks, "symlink", "symlinks"))
			for _, s := range skipped {
				g.printf("skipped %s for %d %s: %s\n", s.Location, s.Requests, countNoun(s.Requests, "request", "requests"), s.Reason)
			}
			return nil
		},
	}
	filter.register(c)
	c.Flags().StringVarP(&target, "target", "t", "", "restore into `DIR`")
	c.Flags().StringArrayVarP(&includes, "include", "i", nil, "restore only paths matching `GLOB` (repeatable; matched against the absolute path in the snapshot, its parents, and the base name; ** spans directories)")
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be written; write nothing to the target")
	return c
}

// restoreDryRun lists what restore would write under target, without
// creating or changing anything there.
func restoreDryRun(ctx context.Context, g *globals, r *repo.Repository, sn *snapshot.Snapshot, target string, includes []string) error {
	if err := restorer.CheckIncludes(includes); err != nil {
		return err
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var files, dirs, links int
	var size int64
	err = snapshot.Walk(ctx, r, sn.Tree, func(nodePath string, n *snapshot.Node) error {
		if !restorer.Matches(includes, nodePath) {
			return nil
		}
		dst := filepath.Join(abs, filepath.FromSlash(nodePath))
		switch n.Type {
		case snapshot.NodeDir:
			dirs++
		case snapshot.NodeFile:
			files++
			size += int64(n.Size)
		case snapshot.NodeSymlink:
			links++
		default:
			return nil
		}
		if g.json {
			return g.printJSON(map[string]any{"message_type": "dry_run", "path": dst, "type": n.Type, "size": n.Size})
		}
		g.printf("would write %s %s\n", n.Type, dst)
		return nil
	})
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(map[string]any{"message_type": "summary", "dry_run": true, "snapshot_id": sn.ID.String(), "target": abs,
			"files_restored": files, "dirs_restored": dirs, "symlinks_restored": links, "bytes_restored": size})
	}
	if files+links == 0 && len(includes) > 0 {
		return fmt.Errorf("no file in snapshot %s matches --include %s", sn.ID.Short(), strings.Join(includes, " --include "))
	}
	g.printf("Dry run: would restore snapshot %s to %s: %d %s (%s), %d %s, %d %s; nothing was written\n",
		sn.ID.Short(), abs, files, countNoun(files, "file", "files"), formatBytes(size),
		dirs, countNoun(dirs, "directory", "directories"), links, countNoun(links, "symlink", "symlinks"))
	return nil
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
