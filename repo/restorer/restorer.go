// Package restorer writes a snapshot's files back to disk and proves each
// one against its recorded whole-file BLAKE3 before reporting success.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/courtbak/courtbak/remote/directio"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// ErrMismatch means a restored file's content does not hash to the value
// recorded at backup.
var ErrMismatch = errors.New("restored content does not match the recorded BLAKE3")

// Options describe one restore.
type Options struct {
	Target string
	// Includes restricts the restore to matching paths (and everything
	// below a matching directory). Patterns match the absolute snapshot path
	// or the base name, as filepath.Match does.
	Includes []string
	// Workers restore files in parallel; 0 picks a default.
	Workers int
	OnBytes func(n int64)
}

// Result counts what was restored.
type Result struct {
	Files, Dirs, Symlinks int
	Bytes                 int64
}

// Matches reports whether nodePath is selected by patterns: the path, one
// of its parents, or its base name matches a pattern. No patterns selects all.
func Matches(patterns []string, nodePath string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, path.Base(nodePath)); ok {
			return true
		}
		for p := nodePath; p != "/" && p != "."; p = path.Dir(p) {
			if ok, _ := path.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

type dirMeta struct {
	path string
	node snapshot.Node
}

// Restore restores snapshot sn under opts.Target.
func Restore(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, opts Options) (*Result, error) {
	for _, pat := range opts.Includes {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("invalid include pattern %q: %w", pat, err)
		}
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("create target %s: %w", target, err)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}
	res := &Result{}
	fe := newFetcher(r, restoreBudget, maxRun)
	var (
		mu       sync.Mutex
		dirs     []dirMeta
		fileErrs []error
		wg       sync.WaitGroup
		files    = make(chan fileJob)
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stage := directio.Buffer(stageSize)
			for j := range files {
				if err := restoreFile(ctx, r, fe, stage, j.dst, j.node, opts.OnBytes); err != nil {
					mu.Lock()
					fileErrs = append(fileErrs, fmt.Errorf("restore %s: %w", j.nodePath, err))
					mu.Unlock()
					continue
				}
				mu.Lock()
				res.Files++
				res.Bytes += int64(j.node.Size)
				mu.Unlock()
			}
		}()
	}

	walkErr := snapshot.Walk(ctx, r, sn.Tree, func(nodePath string, n *snapshot.Node) error {
		selected := Matches(opts.Includes, nodePath)
		dst := filepath.Join(target, filepath.FromSlash(nodePath))
		switch n.Type {
		case snapshot.NodeDir:
			if selected {
				if err := os.MkdirAll(dst, 0o700); err != nil {
					return err
				}
				dirs = append(dirs, dirMeta{path: dst, node: *n})
			}
			return nil
		case snapshot.NodeFile, snapshot.NodeSymlink:
			if !selected {
				return nil
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			if n.Type == snapshot.NodeSymlink {
				if err := restoreSymlink(dst, n); err != nil {
					return fmt.Errorf("restore symlink %s: %w", nodePath, err)
				}
				res.Symlinks++
				return nil
			}
			select {
			case files <- fileJob{dst: dst, nodePath: nodePath, node: *n}:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		default:
			return fmt.Errorf("%s has unknown node type %q", nodePath, n.Type)
		}
	})
	close(files)
	wg.Wait()
	if walkErr != nil {
		return res, walkErr
	}
	// One unreadable file must not cost the others: all are attempted.
	if len(fileErrs) > 0 {
		return res, fmt.Errorf("%d of %d files could not be restored: %w", len(fileErrs), len(fileErrs)+res.Files, errors.Join(fileErrs...))
	}
	// Directory metadata last, deepest first, so writing children does not
	// bump a restored directory's mtime.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].path) > len(dirs[j].path) })
	for _, d := range dirs {
		if err := os.Chmod(d.path, d.node.Mode.Perm()); err != nil {
			return res, fmt.Errorf("restore mode of %s: %w", d.path, err)
		}
		if err := os.Chtimes(d.path, d.node.ModTime, d.node.ModTime); err != nil {
			return res, fmt.Errorf("restore mtime of %s: %w", d.path, err)
		}
		res.Dirs++
	}
	return res, nil
}

type fileJob struct {
	dst, nodePath string
	node          snapshot.Node
}

func restoreSymlink(dst string, n *snapshot.Node) error {
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Symlink(n.LinkTarget, dst); err != nil {
		return err
	}
	return lutimes(dst, n.ModTime)
}

// stageSize is each file worker's buffer for writing around the page cache
// (directio): restored recordings are large and written once.
const stageSize = 2 << 20

// restoreFile writes a file next to its destination, checks its BLAKE3,
// then renames it into place: a file at the destination path is either the
// old one or a verified new one.
func restoreFile(ctx context.Context, r *repo.Repository, fe *fetcher, stage []byte, dst string, n snapshot.Node, onBytes func(int64)) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+strings.TrimPrefix(filepath.Base(dst), ".")+".courtbak-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	var dw *directio.Writer
	if n.Size >= uint64(len(stage)) {
		dw = directio.NewWriter(tmp, stage)
		w = dw
	}
	if err := writeContent(ctx, r, fe, n, w, onBytes); err != nil {
		return err
	}
	if dw != nil {
		if err := dw.Flush(); err != nil {
			return err
		}
	}
	if err := tmp.Chmod(n.Mode.Perm() | n.Mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	return os.Chtimes(dst, n.ModTime, n.ModTime)
}
