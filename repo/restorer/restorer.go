// Package restorer writes a snapshot's files back to disk and proves each
// one against its recorded whole-file BLAKE3 before reporting success.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/courtbak/courtbak/remote/directio"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// ErrMismatch means a restored file's content does not hash to the value
// recorded at backup.
var ErrMismatch = errors.New("restored content does not match the recorded BLAKE3")

// ErrSymlinkInTarget means the target holds a symlink, which this restore
// did not create, where restore must enter a directory.
var ErrSymlinkInTarget = errors.New("is a symlink restore did not create; refusing to follow it (remove it, or restore into an empty directory)")

// Options describe one restore.
type Options struct {
	Target string
	// Includes restricts the restore to matching paths (and everything
	// below a matching directory). Patterns match the absolute snapshot path
	// or the base name, as path.Match does, and "**" matches any number of
	// path components.
	Includes []string
	// Workers restore files in parallel; 0 means defaultWorkers.
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
		if ok, _ := doublestar.Match(pat, path.Base(nodePath)); ok {
			return true
		}
		for p := nodePath; p != "/" && p != "."; p = path.Dir(p) {
			if ok, _ := doublestar.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// CheckIncludes refuses invalid include patterns.
func CheckIncludes(patterns []string) error {
	for _, pat := range patterns {
		if !doublestar.ValidatePattern(pat) {
			return fmt.Errorf("invalid include pattern %q: unbalanced '[' or '{', or a trailing '\\'", pat)
		}
	}
	return nil
}

// defaultWorkers is how many files are restored at once. Each fetches a
// few runs ahead (window), so on object storage a few dozen requests may
// be in flight: enough for a distant server, while how many it gets at
// once the adaptive limit of its backend decides (remote.Adaptive). The
// memory stays bound by restoreBudget and the pack cache.
const defaultWorkers = 16

// Restore restores snapshot sn under opts.Target.
//
// Everything is created relative to directory handles restore opened
// itself, without following a symlink it did not create (target.go). A
// directory's mode and mtime are set on its handle as soon as everything
// in it is restored, so an interrupted or partly failed restore leaves
// only the directories it was working in with mode 0700.
func Restore(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, opts Options) (*Result, error) {
	if err := CheckIncludes(opts.Includes); err != nil {
		return nil, err
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, err
	}
	h, err := openTarget(target)
	if err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWorkers
	}
	fe := newFetcher(r, restoreBudget, maxRun)
	fe.packs = newPackCache(r)
	var loader snapshot.TreeLoader = r
	if fe.packs != nil {
		loader = fe.packs
	}
	trees := newTreePrefetcher(ctx, loader)
	defer trees.close()
	rs := &restore{r: r, trees: trees, opts: opts, fe: fe, jobs: make(chan job),
		small: newBatcher(r, maxRun), bud: snapshot.NewBudget(r)}
	root := &dirState{h: h, pending: 1}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.fileWorker(ctx)
		}()
	}
	walkErr := rs.walkDir(ctx, sn.Tree, root, "/", 0)
	rs.flushSmall(ctx, walkErr == nil)
	close(rs.jobs)
	wg.Wait()
	if walkErr == nil {
		rs.makeLinks(ctx, root.h)
	}
	rs.release(root)
	res := rs.res
	if walkErr != nil {
		return &res, walkErr
	}
	return &res, rs.failure()
}

// restore is one run of Restore.
type restore struct {
	r     *repo.Repository
	trees snapshot.TreeLoader // r, loading subtrees ahead of the walk
	opts  Options
	fe    *fetcher
	jobs  chan job
	small *batcher         // small files gathered into batches by pack (walk goroutine only)
	bud   *snapshot.Budget // the walk's limits (--max-tree-depth, --max-entries)
	// links holds the first restored name of each hard-linked file, and
	// linkJobs the other names, linked once the files are written (walk
	// goroutine only).
	links    map[linkKey]*linkFirst
	linkJobs []linkJob

	mu       sync.Mutex // guards what follows, and dirState.pending
	res      Result
	fileErrs []error // files that could not be restored; the others are
	dirErrs  []error // directories (and so their contents) and symlinks likewise
}

// dirState is a directory of the snapshot on its way to the target.
type dirState struct {
	parent *dirState
	name   string
	// node is the recorded directory when it is selected for restore: its
	// mode and mtime are restored. Directories on the way to selected
	// entries are created, but keep mode 0700.
	node *snapshot.Node
	h    dirHandle // nil until opened
	err  error     // why it could not be opened; its contents are skipped
	// pending counts what must finish before the directory's metadata is
	// set: the walk through it, its files being written, its open
	// subdirectories.
	pending int
}

type fileJob struct {
	dir      *dirState
	nodePath string
	node     snapshot.Node
	first    *linkFirst // set when other names of the file link to it
}

// job is a file to restore on its own, or a batch of small files.
type job struct {
	file  fileJob
	batch *batch
}

// linkKey is a hard-linked file's identity at backup.
type linkKey struct{ dev, ino uint64 }

// linkFirst is the name of a hard-linked file that is restored with its
// content; the others become links to it.
type linkFirst struct {
	path string // in the snapshot
	node snapshot.Node
	id   fileID // the restored file, once ok (set under restore.mu)
	ok   bool
}

// linkJob is another name of a linkFirst's file.
type linkJob struct {
	first   *linkFirst
	path    string
	dirNode *snapshot.Node // its directory's recorded metadata, when restored
}

// walkDir restores the entries of the tree id into d: directories and
// symlinks itself, files through the workers. Only a tree that cannot be
// loaded, or cancellation, stops it; other failures are collected.
func (rs *restore) walkDir(ctx context.Context, id blob.ID, d *dirState, dir string, depth int) error {
	t, err := rs.trees.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("tree of %s: %w", dir, err)
	}
	if err := rs.bud.Tree(dir, depth, len(t.Nodes)); err != nil {
		return err
	}
	for i := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &t.Nodes[i] // names were validated when the tree was decoded
		p := path.Join(dir, n.Name)
		selected := Matches(rs.opts.Includes, p)
		switch n.Type {
		case snapshot.NodeDir:
			if err := rs.walkSubdir(ctx, d, n, p, depth+1, selected); err != nil {
				return err
			}
		case snapshot.NodeSymlink:
			if !selected {
				continue
			}
			h, err := rs.open(d)
			if err != nil {
				continue // reported once, for the directory
			}
			err = restoreSymlink(h, n)
			rs.mu.Lock()
			if err != nil {
				rs.dirErrs = append(rs.dirErrs, fmt.Errorf("restore symlink %s: %w", p, err))
			} else {
				rs.res.Symlinks++
			}
			rs.mu.Unlock()
		case snapshot.NodeFile:
			if !selected {
				continue
			}
			if _, err := rs.open(d); err != nil {
				continue
			}
			first, linked := rs.hardlink(d, p, n)
			if linked {
				continue
			}
			rs.mu.Lock()
			d.pending++ // until the file is restored, in a batch or alone
			rs.mu.Unlock()
			fj := fileJob{dir: d, nodePath: p, node: *n, first: first}
			taken, full := rs.small.add(fj)
			for _, bt := range full {
				if err := rs.send(ctx, job{batch: bt}); err != nil {
					if !taken {
						rs.release(d)
					}
					return err
				}
			}
			if !taken {
				if err := rs.send(ctx, job{file: fj}); err != nil {
					rs.release(d)
					return err
				}
			}
		default:
			return fmt.Errorf("%s has unknown node type %q", p, n.Type)
		}
	}
	return nil
}

// hardlink decides how the file n at p is restored. A name of a file with
// other names (hard links) that was seen before becomes a link job; the
// first name of such a file is returned, to be restored with its content.
// Names are only linked when they agree on everything restore sets, so a
// reused inode number cannot join two different files.
func (rs *restore) hardlink(d *dirState, p string, n *snapshot.Node) (*linkFirst, bool) {
	if !hardlinks || n.Links < 2 || n.Inode == 0 {
		return nil, false
	}
	key := linkKey{dev: n.DeviceID, ino: n.Inode}
	if f, seen := rs.links[key]; seen {
		if f.node.Size == n.Size && *f.node.BLAKE3 == *n.BLAKE3 && f.node.Mode == n.Mode && f.node.ModTime.Equal(n.ModTime) {
			rs.linkJobs = append(rs.linkJobs, linkJob{first: f, path: p, dirNode: d.node})
			return nil, true
		}
		return nil, false
	}
	if rs.links == nil {
		rs.links = map[linkKey]*linkFirst{}
	}
	f := &linkFirst{path: p, node: *n}
	rs.links[key] = f
	return f, false
}

// makeLinks makes the link jobs' names, once every file is written. Both
// directories are entered again from the target without following
// symlinks, the link is only made to the file this restore wrote, and the
// directory of the new name gets its recorded mtime back.
func (rs *restore) makeLinks(ctx context.Context, root dirHandle) {
	for _, j := range rs.linkJobs {
		if ctx.Err() != nil {
			return
		}
		err := rs.makeLink(root, j)
		rs.mu.Lock()
		if err != nil {
			rs.fileErrs = append(rs.fileErrs, fmt.Errorf("restore %s: %w", j.path, err))
		} else {
			rs.res.Files++
			rs.res.Bytes += int64(j.first.node.Size)
		}
		rs.mu.Unlock()
	}
}

func (rs *restore) makeLink(root dirHandle, j linkJob) error {
	rs.mu.Lock()
	ok, id := j.first.ok, j.first.id
	rs.mu.Unlock()
	if !ok {
		return fmt.Errorf("it is a hard link of %s, which could not be restored", j.first.path)
	}
	oldDir, err := openPath(root, path.Dir(j.first.path))
	if err != nil {
		return err
	}
	defer closeUnlessRoot(root, oldDir)
	newDir, err := openPath(root, path.Dir(j.path))
	if err != nil {
		return err
	}
	defer closeUnlessRoot(root, newDir)
	if j.dirNode != nil {
		if err := newDir.makeWritable(); err != nil {
			return err
		}
	}
	if err := newDir.link(oldDir, path.Base(j.first.path), id, path.Base(j.path)); err != nil {
		return err
	}
	if j.dirNode != nil {
		return newDir.setMeta(restoredMode(j.dirNode.Mode), j.dirNode.ModTime)
	}
	return nil
}

// openPath enters the snapshot directory dir from the target's root,
// component by component, following no symlink.
func openPath(root dirHandle, dir string) (dirHandle, error) {
	h := root
	for _, name := range strings.Split(strings.Trim(dir, "/"), "/") {
		if name == "" {
			continue
		}
		next, err := h.enter(name)
		closeUnlessRoot(root, h)
		if err != nil {
			return nil, err
		}
		h = next
	}
	return h, nil
}

func closeUnlessRoot(root, h dirHandle) {
	if h != root {
		_ = h.close()
	}
}

// walkSubdir restores the directory n, a child of d. A selected directory
// is opened (or created) at once, so that a planted symlink is refused
// even for an empty directory; one on the way to selected entries only
// when one of them is restored.
func (rs *restore) walkSubdir(ctx context.Context, d *dirState, n *snapshot.Node, p string, depth int, selected bool) error {
	child := &dirState{parent: d, name: n.Name, pending: 1}
	rs.mu.Lock()
	d.pending++
	rs.mu.Unlock()
	defer rs.release(child)
	if selected {
		node := *n
		child.node = &node
		if _, err := rs.open(child); err != nil {
			return nil // reported; its contents are skipped
		}
	}
	return rs.walkDir(ctx, *n.Subtree, child, p, depth)
}

// open returns d's handle, entering it (and the directories on the way)
// without following symlinks. A failure is reported once, for the
// directory where it happened. Only the walk calls open.
func (rs *restore) open(d *dirState) (dirHandle, error) {
	if d.h != nil || d.err != nil {
		return d.h, d.err
	}
	ph, err := rs.open(d.parent)
	if err != nil {
		d.err = err
		return nil, err
	}
	h, err := ph.enter(d.name)
	if err == nil && d.node != nil {
		if err = h.makeWritable(); err != nil {
			_ = h.close()
		}
	}
	if err != nil {
		d.err = err
		rs.mu.Lock()
		rs.dirErrs = append(rs.dirErrs, err)
		rs.mu.Unlock()
		return nil, err
	}
	d.h = h
	return h, nil
}

// release ends one pending use of d. The last one sets the directory's
// recorded mode and mtime on its handle and closes it: everything in it is
// written, so nothing will change its mtime again.
func (rs *restore) release(d *dirState) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for ; d != nil; d = d.parent {
		if d.pending--; d.pending > 0 {
			return
		}
		if d.h == nil {
			continue
		}
		if d.node != nil {
			if err := d.h.setMeta(restoredMode(d.node.Mode), d.node.ModTime); err != nil {
				rs.dirErrs = append(rs.dirErrs, err)
			} else {
				rs.res.Dirs++
			}
		}
		_ = d.h.close()
		d.h = nil
	}
}

// send hands j to the workers. A batch that cannot be sent gives back its
// files' directories.
func (rs *restore) send(ctx context.Context, j job) error {
	select {
	case rs.jobs <- j:
		return nil
	case <-ctx.Done():
		if j.batch != nil {
			for _, f := range j.batch.files {
				rs.release(f.dir)
			}
		}
		return ctx.Err()
	}
}

// flushSmall sends the batches still gathering files once the walk is
// over, or, when it failed, gives back their files' directories.
func (rs *restore) flushSmall(ctx context.Context, ok bool) {
	for _, bt := range rs.small.flush() {
		if ok {
			if rs.send(ctx, job{batch: bt}) != nil {
				ok = false // send gave this batch's directories back
			}
			continue
		}
		for _, f := range bt.files {
			rs.release(f.dir)
		}
	}
}

// fileWorker restores files and batches of small files until the walk is
// done.
func (rs *restore) fileWorker(ctx context.Context) {
	stage := directio.Buffer(stageSize)
	for j := range rs.jobs {
		if j.batch != nil {
			restoreBatch(ctx, rs.r, rs.fe, stage, j.batch, rs.opts.OnBytes, rs.done)
			continue
		}
		id, err := restoreFile(ctx, stage, j.file.dir.h, j.file.node, func(w io.Writer) error {
			return writeContent(ctx, rs.r, rs.fe, j.file.node, w, rs.opts.OnBytes)
		})
		rs.done(j.file, id, err)
	}
}

// done records the outcome of restoring j and gives back its directory.
func (rs *restore) done(j fileJob, id fileID, err error) {
	rs.mu.Lock()
	if err == nil && j.first != nil {
		j.first.id, j.first.ok = id, true
	}
	if err != nil {
		rs.fileErrs = append(rs.fileErrs, fmt.Errorf("restore %s: %w", j.nodePath, err))
	} else {
		rs.res.Files++
		rs.res.Bytes += int64(j.node.Size)
	}
	rs.mu.Unlock()
	rs.release(j.dir)
}

// failure sums up what could not be restored: one unreadable file, or one
// directory that cannot be entered, must not cost the others.
func (rs *restore) failure() error {
	switch {
	case len(rs.dirErrs) > 0:
		all := append(rs.dirErrs, rs.fileErrs...)
		return fmt.Errorf("%d entries could not be restored (with everything below the directories among them): %w", len(all), errors.Join(all...))
	case len(rs.fileErrs) > 0:
		return fmt.Errorf("%d of %d files could not be restored: %w", len(rs.fileErrs), len(rs.fileErrs)+rs.res.Files, errors.Join(rs.fileErrs...))
	}
	return nil
}

// restoreSymlink creates the symlink under a new name, then renames it
// over whatever is at its path: an old file or symlink is replaced, never
// followed.
func restoreSymlink(h dirHandle, n *snapshot.Node) error {
	tmp, err := h.symlink(n.LinkTarget, n.ModTime)
	if err != nil {
		return err
	}
	if err := h.rename(tmp, n.Name); err != nil {
		_ = h.remove(tmp)
		return err
	}
	return nil
}

// stageSize is each file worker's buffer for writing around the page cache
// (directio): restored recordings are large and written once.
const stageSize = 2 << 20

// restoreFile writes a file under a new name in its directory (whole
// blocks of zeros as holes), checks its BLAKE3, sets its mode and mtime on its handle, then renames it into
// place: a file at the destination path is either the old one or a
// verified new one, and an old file or symlink there is replaced, never
// written through.
func restoreFile(ctx context.Context, stage []byte, h dirHandle, n snapshot.Node, write func(io.Writer) error) (fileID, error) {
	if err := ctx.Err(); err != nil {
		return fileID{}, err
	}
	tmp, tmpName, err := h.createTemp()
	if err != nil {
		return fileID{}, err
	}
	closed, renamed := false, false
	defer func() {
		if !closed {
			_ = tmp.Close()
		}
		if !renamed {
			_ = h.remove(tmpName)
		}
	}()
	hw := &holeWriter{w: tmp, skip: func(n int64) error {
		_, err := tmp.Seek(n, io.SeekCurrent)
		return err
	}}
	var dw *directio.Writer
	if n.Size >= uint64(len(stage)) {
		dw = directio.NewWriter(tmp, stage)
		hw.w, hw.skip = dw, dw.Skip
	}
	if err := write(hw); err != nil {
		return fileID{}, err
	}
	if dw != nil {
		if err := dw.Flush(); err != nil {
			return fileID{}, err
		}
	}
	if hw.holes {
		// A file that ends in a hole gets its size only from this.
		if err := tmp.Truncate(int64(n.Size)); err != nil {
			return fileID{}, err
		}
	}
	if err := tmp.Chmod(restoredMode(n.Mode)); err != nil {
		return fileID{}, err
	}
	if err := h.fileTimes(tmp, tmpName, n.ModTime); err != nil {
		return fileID{}, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return fileID{}, err
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return fileID{}, err
	}
	if err := h.rename(tmpName, n.Name); err != nil {
		return fileID{}, err
	}
	renamed = true
	return fileIDOf(fi), nil
}
