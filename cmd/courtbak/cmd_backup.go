package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/snapshot"
)

func newBackupCommand(g *globals) *cobra.Command {
	var (
		tags, excludes []string
		host, parent   string
	)
	c := &cobra.Command{
		Use:   "backup [PATH...]",
		Short: "Snapshot the given paths",
		Long: `Snapshot the given paths. Files unchanged since the parent snapshot (same
size, mtime, ctime and inode) are not read again. Files that cannot be read are
listed on stderr and the snapshot holds the rest (exit code 3).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, paths []string) error {
			ctx := c.Context()
			if len(paths) == 0 && g.profile != nil {
				paths = g.profile.Paths
			}
			if len(paths) == 0 {
				return errors.New("give the PATHs to back up (or paths in the backup table of the --profile)")
			}
			if host == "" {
				h, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("hostname unknown, give --host: %w", err)
				}
				host = h
			}
			r, err := g.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			var par *snapshot.Snapshot
			switch parent {
			case "", "latest": // the newest of this host and these paths
				par = latestFor(snaps, host, archiver.AbsPaths(paths))
			default:
				if par, err = snapshot.Find(snaps, parent); err != nil {
					return fmt.Errorf("--parent: %w", err)
				}
			}
			bar := g.bytesBar(-1, "backup")
			opts := archiver.Options{
				Paths: paths, Excludes: excludes, Tags: tags, Host: host,
				Parent: par, Program: versionString(),
				OnError: func(path string, err error) {
					err = unwrapPathError(err)
					fmt.Fprintf(g.stderr, "courtbak: cannot read %s: %v\n", path, err)
					if g.json {
						_ = g.printJSON(map[string]string{"message_type": "error", "path": path, "error": err.Error()})
					}
				},
			}
			if bar != nil {
				opts.OnBytes = func(n int64) { _ = bar.Add64(n) }
			}
			res, err := archiver.Run(ctx, g.storeCtx, r, opts)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("backup interrupted; no snapshot was made, data already uploaded is kept and reused by the next run: %w", err)
				}
				return fmt.Errorf("backup failed, no snapshot was made: %w", err)
			}
			s := res.Summary
			g.metrics = runMetrics{
				files: count(s.TotalFiles), bytes: count(s.BytesProcessed), bytesAdded: count(s.BytesAdded),
				errors: count(s.FilesFailed), latestSnapshot: res.Snapshot.Time,
			}
			if g.json {
				err = g.printJSON(backupJSON{
					MessageType: "summary", SnapshotID: res.Snapshot.ID.String(),
					FilesNew: s.FilesNew, FilesChanged: s.FilesChanged, FilesUnmodified: s.FilesUnmodified,
					FilesFailed: s.FilesFailed, DirsNew: s.DirsNew, TotalFiles: s.TotalFiles,
					BytesProcessed: s.BytesProcessed, BytesAdded: s.BytesAdded, BlobsAdded: s.BlobsAdded,
					DurationSeconds: s.DurationSeconds, Parent: parentID(par),
				})
			} else if g.quiet {
				fmt.Fprintln(g.stdout, res.Snapshot.ID)
			} else {
				fmt.Fprintf(g.stdout, "Files: %d new, %d changed, %d unmodified", s.FilesNew, s.FilesChanged, s.FilesUnmodified)
				if s.FilesFailed > 0 {
					fmt.Fprintf(g.stdout, ", %d unreadable", s.FilesFailed)
				}
				fmt.Fprintf(g.stdout, "\nProcessed %s, added %s to the repository in %s\n",
					formatBytes(s.BytesProcessed), formatBytes(s.BytesAdded), (time.Duration(s.DurationSeconds * float64(time.Second))).Round(time.Millisecond))
				fmt.Fprintf(g.stdout, "snapshot %s saved\n", res.Snapshot.ID)
			}
			if err != nil {
				return err
			}
			if len(res.Errors) > 0 {
				return &exitError{code: exitPartial, err: fmt.Errorf("snapshot %s saved, but %d source files could not be read (listed above)", res.Snapshot.ID.Short(), len(res.Errors))}
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&tags, "tag", nil, "add `TAG` to the snapshot (repeatable)")
	c.Flags().StringVar(&host, "host", "", "record `NAME` as the host (default: this machine's hostname)")
	c.Flags().StringArrayVarP(&excludes, "exclude", "e", nil, "skip paths matching `GLOB` (repeatable; matched against the base name and the absolute path)")
	c.Flags().StringVar(&parent, "parent", "", "compare against snapshot `ID` (default, or 'latest': the newest with the same host and paths)")
	return c
}

type backupJSON struct {
	MessageType     string  `json:"message_type"`
	SnapshotID      string  `json:"snapshot_id"`
	Parent          string  `json:"parent,omitempty"`
	FilesNew        int     `json:"files_new"`
	FilesChanged    int     `json:"files_changed"`
	FilesUnmodified int     `json:"files_unmodified"`
	FilesFailed     int     `json:"files_failed"`
	DirsNew         int     `json:"dirs_new"`
	TotalFiles      int     `json:"total_files"`
	BytesProcessed  int64   `json:"bytes_processed"`
	BytesAdded      int64   `json:"bytes_added"`
	BlobsAdded      int     `json:"blobs_added"`
	DurationSeconds float64 `json:"duration_s"`
}

func parentID(p *snapshot.Snapshot) string {
	if p == nil {
		return ""
	}
	return p.ID.String()
}

// latestFor picks the newest snapshot of the same host and paths.
func latestFor(snaps []*snapshot.Snapshot, host string, paths []string) *snapshot.Snapshot {
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].Hostname == host && slices.Equal(snaps[i].Paths, paths) {
			return snaps[i]
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
