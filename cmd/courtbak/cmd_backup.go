package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/snapshot"
)

func newBackupCommand(g *globals) *cobra.Command {
	var (
		tags         []string
		host, parent string
		sel          selectionFlags
		dryRun       bool
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
			if len(paths) == 0 && len(sel.filesFrom) == 0 && g.profile != nil {
				paths = g.profile.Paths
			}
			opts, err := sel.options(paths)
			if err != nil {
				return err
			}
			if len(opts.Paths) == 0 {
				return errors.New("give the PATHs to back up, --files-from FILE, or paths in the backup table of the --profile")
			}
			if dryRun {
				return backupDryRun(ctx, g, opts)
			}
			paths = opts.Paths
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
			opts.Tags, opts.Host, opts.Parent, opts.Program = tags, host, par, versionString()
			opts.OnError = g.sourceError
			prog := g.newBackupProgress(ctx, opts)
			if prog != nil {
				opts.OnBytes, opts.OnFile = prog.addBytes, prog.fileDone
			}
			res, err := archiver.Run(ctx, g.storeCtx, r, opts)
			if prog != nil {
				prog.finish()
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
	c.Flags().StringVar(&parent, "parent", "", "compare against snapshot `ID` (default, or 'latest': the newest with the same host and paths)")
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be backed up; read no file and write nothing to the repository")
	sel.register(c)
	return c
}

// selectionFlags are backup's file selection options.
type selectionFlags struct {
	excludes, iexcludes, excludeFiles, filesFrom, ifPresent []string
	excludeCaches, oneFileSystem                            bool
}

func (f *selectionFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringArrayVarP(&f.excludes, "exclude", "e", nil, "skip entries matching `GLOB` (repeatable; ** spans directories; see docs/usage.md §6.2)")
	fl.StringArrayVar(&f.iexcludes, "iexclude", nil, "like --exclude, ignoring case (repeatable)")
	fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read --exclude patterns from `FILE`, one per line (repeatable)")
	fl.StringArrayVar(&f.filesFrom, "files-from", nil, "read the paths to back up from `FILE`, one per line (repeatable)")
	fl.BoolVar(&f.excludeCaches, "exclude-caches", false, "skip the contents of directories tagged as caches (CACHEDIR.TAG)")
	fl.StringArrayVar(&f.ifPresent, "exclude-if-present", nil, "skip the contents of directories holding a file `NAME[:HEADER]` (repeatable)")
	fl.BoolVarP(&f.oneFileSystem, "one-file-system", "x", false, "do not cross into other file systems (mount points are stored empty)")
}

// options turns the flags into the archiver's selection, reading the
// files they name.
func (f *selectionFlags) options(paths []string) (archiver.Options, error) {
	opts := archiver.Options{
		Paths: slices.Clone(paths), Excludes: slices.Clone(f.excludes), IExcludes: f.iexcludes,
		ExcludeCaches: f.excludeCaches, ExcludeIfPresent: f.ifPresent, OneFileSystem: f.oneFileSystem,
	}
	for _, file := range f.excludeFiles {
		pats, err := archiver.ReadPatternFile(file)
		if err != nil {
			return opts, fmt.Errorf("--exclude-file: %w", err)
		}
		opts.Excludes = append(opts.Excludes, pats...)
	}
	for _, file := range f.filesFrom {
		more, err := archiver.ReadFilesFrom(file)
		if err != nil {
			return opts, err
		}
		opts.Paths = append(opts.Paths, more...)
	}
	return opts, nil
}

// sourceError reports a source file or directory that cannot be read.
func (g *globals) sourceError(path string, err error) {
	err = unwrapPathError(err)
	fmt.Fprintf(g.stderr, "courtbak: cannot read %s: %v\n", path, err)
	if g.json {
		_ = g.printJSON(map[string]string{"message_type": "error", "path": path, "error": err.Error()})
	}
}

// backupDryRun lists what a backup with opts would store. It opens the
// repository (so a wrong URL or password shows now, not tonight) but reads
// no file's contents and writes nothing there.
func backupDryRun(ctx context.Context, g *globals, opts archiver.Options) error {
	if _, err := g.openRepo(ctx); err != nil {
		return err
	}
	var files, dirs, failed int
	var size int64
	opts.OnError = func(path string, err error) {
		failed++
		g.sourceError(path, err)
	}
	err := archiver.Scan(ctx, opts, func(path string, fi fs.FileInfo) error {
		kind := "file"
		switch {
		case fi.IsDir():
			kind = "dir"
			dirs++
		case fi.Mode()&fs.ModeSymlink != 0:
			kind = "symlink"
		default:
			files++
			size += fi.Size()
		}
		if g.json {
			return g.printJSON(map[string]any{"message_type": "dry_run", "path": path, "type": kind, "size": fi.Size()})
		}
		g.printf("would store %s %s\n", kind, path)
		return nil
	})
	if err != nil {
		return err
	}
	if g.json {
		err = g.printJSON(map[string]any{"message_type": "summary", "dry_run": true, "total_files": files, "total_dirs": dirs, "bytes_processed": size, "files_failed": failed})
	} else {
		g.printf("Dry run: would back up %d files (%s) in %d directories; nothing was read or written\n", files, formatBytes(size), dirs)
	}
	if err == nil && failed > 0 {
		return &exitError{code: exitPartial, err: fmt.Errorf("dry run: %d source files could not be read (listed above)", failed)}
	}
	return err
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
