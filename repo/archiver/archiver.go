// Package archiver makes snapshots: it walks the source paths, reads only
// the files that changed since the parent snapshot, chunks them, stores the
// new chunks through a repo.Saver and writes trees and the snapshot.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courtbak/courtbak/chunking"
	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// Options describe one backup.
type Options struct {
	Paths []string
	// Excludes leave out entries that match (and what is below them); see
	// pattern for the syntax. IExcludes do the same ignoring case.
	Excludes, IExcludes []string
	// ExcludeCaches keeps only the CACHEDIR.TAG of a directory tagged as
	// a cache; ExcludeIfPresent (NAME or NAME:HEADER) does the same for
	// directories holding such a file.
	ExcludeCaches    bool
	ExcludeIfPresent []string
	// OneFileSystem stores directories on other file systems than the
	// source paths' as empty mount points.
	OneFileSystem bool
	Tags          []string
	Host          string
	Parent        *snapshot.Snapshot // files unchanged since it are not read again
	Program       string             // courtbak version, recorded in the snapshot
	// Workers chunk-process in parallel; 0 means one per CPU.
	Workers int
	// OnBytes is called as source bytes are processed (progress bars).
	OnBytes func(n int64)
	// OnFile is called when a regular file is done with, read or not
	// (progress bars).
	OnFile func()
	// OnError is called for each source file that could not be read.
	OnError func(path string, err error)
}

// FileError is a source file or directory that could not be read.
type FileError struct {
	Path string
	Err  error
}

// Result is a finished backup.
type Result struct {
	Snapshot *snapshot.Snapshot
	Summary  snapshot.Summary
	Errors   []FileError
}

type archiver struct {
	r     *repo.Repository
	saver *repo.Saver
	opts  Options
	sel   *selector
	jobs  chan *chunkJob
	// window bounds the chunks of one file in flight: enough to keep every
	// worker busy while the reader runs ahead, few enough to bound memory.
	window  int
	workers int
	files   chan struct{} // bounds files read at once
	// Chunk buffers for large files and for small ones, and chunkers,
	// kept for reuse.
	bigBufs, smallBufs *buffers.Pool
	chunkers           sync.Pool // *chunking.Chunker

	filesNew, filesChanged, filesUnmodified, dirsNew, total atomic.Int64
	bytesProcessed                                          atomic.Int64
	mu                                                      sync.Mutex
	errs                                                    []FileError
}

// Files from parallelChunkMin bytes on are chunked on every core, in
// rounds of parallelSegment bytes per core: one huge recording then keeps
// all cores busy, with the exact chunks of a sequential pass. With fewer
// than parallelChunkCores cores the sequential chunker on one core and the
// hashing and sealing on the other already fill the machine, and the
// parallel chunker's extra copies made a 2-core backup about 15% slower
// (BenchmarkBackupLargeFile), so it is used only where cores are spare.
const (
	parallelChunkMin   = 64 << 20
	parallelSegment    = 12 << 20
	parallelChunkCores = 4
)

// Files up to smallFile bytes take small chunk buffers.
const smallFile = 1 << 20

// chunkSource yields a stream's chunks in order.
type chunkSource interface {
	Next(buf []byte) ([]byte, error)
}

type chunkJob struct {
	buf  *[]byte
	bufs *buffers.Pool // where buf goes back
	data []byte
	done chan chunkResult
	refs atomic.Int32 // the hasher and a blob worker each release it
}

type chunkResult struct {
	id  blob.ID
	err error
}

// Run makes a snapshot. ctx stops the walk (an interrupt); storeCtx governs
// uploads, so work already packed is still stored and indexed when ctx is
// cancelled, and the next backup reuses it. No snapshot is written unless
// everything it refers to is stored.
func Run(ctx, storeCtx context.Context, r *repo.Repository, opts Options) (*Result, error) {
	start := time.Now()
	snapTime := r.Now() // a snapshot is dated when it starts, as the files were then
	if len(opts.Paths) == 0 {
		return nil, errors.New("no paths to back up")
	}
	sel, err := newSelector(opts)
	if err != nil {
		return nil, err
	}
	if n, err := r.RecoverJournal(ctx); err != nil {
		r.Warn("could not recover packs of an interrupted backup (they will be uploaded again): %v", err)
	} else if n > 0 {
		r.Warn("reusing %d packs uploaded by an interrupted backup", n)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	a := &archiver{
		r:       r,
		saver:   r.NewSaver(storeCtx, 0),
		opts:    opts,
		sel:     sel,
		jobs:    make(chan *chunkJob, workers),
		window:  workers,
		workers: workers,
		files:   make(chan struct{}, 2),
	}
	// Chunk buffers, shared by the files read at once: a file's chunks in
	// flight and the one being filled, and a reader waits for one to come
	// back. A large file's have room for the largest chunk from the start:
	// grown by the chunker's appends from twice the average, they were
	// copied and reallocated about 90 MB per backup, and a 512 MB backup
	// took 15% longer and 20 MB more memory. Pages are only touched, and
	// so resident, as far as chunks fill them; kept buffers also spare
	// collections that cost a deduplicating backup a tenth of its CPU. A
	// small file is one chunk no larger than itself.
	a.bigBufs = buffers.NewPool(workers+3, int(r.Chunking().MaxSize))
	a.smallBufs = buffers.NewPool(2*(a.window+2), smallFile)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); a.blobWorker() }()
	}

	rootNode, walkErr := a.saveRoots(ctx, opts.Paths)
	close(a.jobs)
	wg.Wait()
	flushErr := a.saver.Flush(storeCtx)
	if walkErr == nil {
		walkErr = ctx.Err()
	}
	if err := errors.Join(walkErr, flushErr); err != nil {
		return nil, err
	}

	st := a.saver.Stats()
	sum := snapshot.Summary{
		FilesNew:        int(a.filesNew.Load()),
		FilesChanged:    int(a.filesChanged.Load()),
		FilesUnmodified: int(a.filesUnmodified.Load()),
		DirsNew:         int(a.dirsNew.Load()),
		FilesFailed:     len(a.errs),
		TotalFiles:      int(a.total.Load()),
		BytesProcessed:  a.bytesProcessed.Load(),
		BytesAdded:      st.StoredAdded,
		BlobsAdded:      st.BlobsAdded,
	}
	sn := &snapshot.Snapshot{
		Time:     snapTime,
		Hostname: opts.Host,
		Paths:    AbsPaths(opts.Paths),
		Tags:     opts.Tags,
		Excludes: opts.Excludes,
		Tree:     *rootNode.Subtree,
		Program:  opts.Program,
	}
	if u, err := userName(); err == nil {
		sn.Username = u
	}
	if opts.Parent != nil {
		pid := opts.Parent.ID
		sn.Parent = &pid
	}
	sum.DurationSeconds = time.Since(start).Seconds()
	sn.Summary = &sum
	if err := r.SecureSnapshot(storeCtx, sn.Tree); err != nil {
		return nil, err
	}
	if err := r.SaveSnapshot(storeCtx, sn); err != nil {
		return nil, err
	}
	return &Result{Snapshot: sn, Summary: sum, Errors: a.errs}, nil
}

// AbsPaths returns the cleaned absolute forms of paths, sorted, as a
// snapshot records them.
func AbsPaths(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		out = append(out, filepath.Clean(p))
	}
	sort.Strings(out)
	return out
}

func (a *archiver) fileError(path string, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, FileError{Path: path, Err: err})
	a.mu.Unlock()
	if a.opts.OnError != nil {
		a.opts.OnError(path, err)
	}
}

// vdir is a directory on the way from / to a backed-up path.
type vdir struct {
	children map[string]*vdir
	target   bool // this path itself was named for backup
}

// saveRoots builds the snapshot's root tree: each source path appears
// under its absolute path, with the directories above it recorded too.
func (a *archiver) saveRoots(ctx context.Context, paths []string) (snapshot.Node, error) {
	root := &vdir{children: map[string]*vdir{}}
	for _, p := range AbsPaths(paths) {
		if _, err := os.Lstat(p); err != nil {
			return snapshot.Node{}, fmt.Errorf("source path %s: %w", p, err)
		}
		cur := root
		for _, part := range strings.Split(strings.Trim(filepath.ToSlash(p), "/"), "/") {
			if part == "" {
				continue
			}
			next := cur.children[part]
			if next == nil {
				next = &vdir{children: map[string]*vdir{}}
				cur.children[part] = next
			}
			cur = next
		}
		cur.target = true
	}
	var parentRoot *snapshot.Node
	if a.opts.Parent != nil {
		parentRoot = &snapshot.Node{Type: snapshot.NodeDir, Subtree: &a.opts.Parent.Tree}
	}
	return a.saveVirtual(ctx, "/", root, parentRoot)
}

func (a *archiver) saveVirtual(ctx context.Context, path string, d *vdir, old *snapshot.Node) (snapshot.Node, error) {
	if d.target {
		fi, err := os.Lstat(path)
		if err != nil {
			return snapshot.Node{}, err
		}
		return a.saveDir(ctx, path, fi, old)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return snapshot.Node{}, err
	}
	oldTree := a.loadOldTree(ctx, old)
	var tree snapshot.Tree
	names := make([]string, 0, len(d.children))
	for n := range d.children {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		childPath := filepath.Join(path, name)
		child, err := a.saveVirtual(ctx, childPath, d.children[name], oldTree.Find(name))
		if err != nil {
			return snapshot.Node{}, err
		}
		child.Name = name
		tree.Nodes = append(tree.Nodes, child)
	}
	return a.finishDir(fi, &tree)
}

func (a *archiver) loadOldTree(ctx context.Context, old *snapshot.Node) *snapshot.Tree {
	if old == nil || old.Type != snapshot.NodeDir || old.Subtree == nil {
		return &snapshot.Tree{}
	}
	t, err := a.r.LoadTree(ctx, *old.Subtree)
	if err != nil {
		// The parent is only an optimisation: read everything instead.
		a.r.Warn("parent snapshot tree %s unreadable, re-reading files: %v", old.Subtree.Short(), err)
		return &snapshot.Tree{}
	}
	return t
}

func (a *archiver) finishDir(fi fs.FileInfo, tree *snapshot.Tree) (snapshot.Node, error) {
	data, err := snapshot.EncodeTree(tree)
	if err != nil {
		return snapshot.Node{}, err
	}
	id := a.r.BlobID(data)
	if _, err := a.saver.SaveBlob(blob.Tree, id, data); err != nil {
		return snapshot.Node{}, err
	}
	n := baseNode(fi)
	n.Type = snapshot.NodeDir
	n.Subtree = &id
	return n, nil
}

// storableTime clamps a timestamp into the years JSON and RFC 3339 can
// hold (1..9999): one file with a corrupt clock must not fail a backup.
func storableTime(t time.Time) time.Time {
	switch {
	case t.Year() > 9999:
		return time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	case t.Year() < 1:
		return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

func baseNode(fi fs.FileInfo) snapshot.Node {
	idn := identity(fi)
	var links uint64
	if fi.Mode().IsRegular() && idn.links > 1 {
		links = idn.links // a hard-linked file; directories always have several
	}
	return snapshot.Node{
		Links:      links,
		Name:       fi.Name(),
		Mode:       fi.Mode(),
		ModTime:    storableTime(fi.ModTime()),
		ChangeTime: storableTime(idn.ctime),
		Inode:      idn.inode,
		DeviceID:   idn.device,
		UID:        idn.uid,
		GID:        idn.gid,
	}
}

// saveDir stores a directory: subdirectories depth first, files in parallel.
func (a *archiver) saveDir(ctx context.Context, path string, fi fs.FileInfo, old *snapshot.Node) (snapshot.Node, error) {
	if err := ctx.Err(); err != nil {
		return snapshot.Node{}, err
	}
	if !fi.IsDir() {
		// A source path that is a file or symlink gets a tree of its own.
		n, ok, err := a.saveEntry(ctx, path, fi, old, false)
		if err != nil || !ok {
			return snapshot.Node{}, fmt.Errorf("source path %s could not be read", path)
		}
		return n, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		a.fileError(path, err)
		return a.finishDir(fi, &snapshot.Tree{})
	}
	oldTree := a.loadOldTree(ctx, old)
	if old == nil {
		a.dirsNew.Add(1)
	}

	type pendingNode struct {
		node snapshot.Node
		ok   bool
		err  error
		done chan struct{}
	}
	var children []child
	for _, de := range a.sel.entries(path, entries) {
		cfi, err := de.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // vanished since listing: not an error
				a.fileError(filepath.Join(path, de.Name()), err)
			}
			continue
		}
		children = append(children, child{name: de.Name(), fi: cfi})
	}
	stored := a.storedFiles(oldTree, children)
	results := make([]*pendingNode, 0, len(children))
	for _, c := range children {
		childPath, cfi := filepath.Join(path, c.name), c.fi
		p := &pendingNode{done: make(chan struct{})}
		results = append(results, p)
		oldChild := oldTree.Find(c.name)
		if cfi.IsDir() && a.sel.otherDevice(cfi) {
			// A mount point of another file system: stored, not entered.
			p.node, p.err = a.finishDir(cfi, &snapshot.Tree{})
			p.ok = p.err == nil
			close(p.done)
			continue
		}
		if cfi.IsDir() {
			// Subdirectories are walked alongside: waiting for each one's
			// files before starting the next left one large recording
			// being read at a time at the end of every directory.
			go func() {
				defer close(p.done)
				p.node, p.err = a.saveDir(ctx, childPath, cfi, oldChild)
				p.ok = p.err == nil
			}()
			continue
		}
		select {
		case a.files <- struct{}{}:
		case <-ctx.Done():
			p.err = ctx.Err()
			close(p.done)
			continue
		}
		go func() {
			defer func() { <-a.files; close(p.done) }()
			p.node, p.ok, p.err = a.saveEntry(ctx, childPath, cfi, oldChild, stored[c.name])
		}()
	}
	var tree snapshot.Tree
	var firstErr error
	for _, p := range results {
		<-p.done
		if p.err != nil && firstErr == nil {
			firstErr = p.err
		}
		if p.ok {
			tree.Nodes = append(tree.Nodes, p.node)
		}
	}
	if firstErr != nil {
		return snapshot.Node{}, firstErr
	}
	return a.finishDir(fi, &tree)
}

// saveEntry stores a non-directory. ok is false when the entry is skipped
// (unreadable, or a device, socket or pipe). err is only for fatal errors.
// stored says the blobs of old were all found stored already.
func (a *archiver) saveEntry(ctx context.Context, path string, fi fs.FileInfo, old *snapshot.Node, stored bool) (snapshot.Node, bool, error) {
	switch {
	case fi.Mode().IsRegular():
		return a.saveFile(ctx, path, fi, old, stored)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			a.fileError(path, err)
			return snapshot.Node{}, false, nil
		}
		n := baseNode(fi)
		n.Type = snapshot.NodeSymlink
		n.LinkTarget = target
		return n, true, nil
	default:
		return snapshot.Node{}, false, nil
	}
}

func unchanged(old *snapshot.Node, n *snapshot.Node) bool {
	return old != nil && old.Type == snapshot.NodeFile && old.BLAKE3 != nil &&
		old.Size == n.Size && old.ModTime.Equal(n.ModTime) &&
		old.ChangeTime.Equal(n.ChangeTime) && old.Inode == n.Inode
}

func (a *archiver) saveFile(ctx context.Context, path string, fi fs.FileInfo, old *snapshot.Node, stored bool) (snapshot.Node, bool, error) {
	a.total.Add(1)
	if a.opts.OnFile != nil {
		defer a.opts.OnFile()
	}
	n := fileNode(fi)
	if unchanged(old, &n) && (stored || a.allStored(old.Content)) {
		n.Content, n.BLAKE3 = old.Content, old.BLAKE3
		a.filesUnmodified.Add(1)
		a.bytesProcessed.Add(int64(n.Size))
		if a.opts.OnBytes != nil {
			a.opts.OnBytes(int64(n.Size))
		}
		return n, true, nil
	}
	f, err := openNoAtime(path)
	if err != nil {
		a.fileError(path, err)
		return snapshot.Node{}, false, nil
	}
	defer f.Close()
	// Describe the file as opened, not as listed: it may have been replaced.
	sizeHint := fi.Size()
	if fi2, err := f.Stat(); err == nil {
		n = baseNode(fi2)
		n.Name = fi.Name()
		n.Type = snapshot.NodeFile
		sizeHint = fi2.Size()
	}
	content, sum, size, err := a.chunkFile(ctx, f, sizeHint)
	if err != nil {
		if ctx.Err() != nil || a.storeFailed(err) {
			return snapshot.Node{}, false, err
		}
		a.fileError(path, err)
		return snapshot.Node{}, false, nil
	}
	n.Size = uint64(size)
	n.Content = content
	n.BLAKE3 = &sum
	if old == nil {
		a.filesNew.Add(1)
	} else {
		a.filesChanged.Add(1)
	}
	return n, true, nil
}

// storeFailed tells a repository error (fatal) from a source read error.
func (a *archiver) storeFailed(err error) bool {
	var se *storeError
	return errors.As(err, &se)
}

type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// fileNode describes a regular file as listed.
func fileNode(fi fs.FileInfo) snapshot.Node {
	n := baseNode(fi)
	n.Type = snapshot.NodeFile
	n.Size = uint64(fi.Size())
	return n
}

// child is an entry of a directory being saved.
type child struct {
	name string
	fi   fs.FileInfo
}

// maxDirBatch bounds the blob ids of one directory checked at once
// (2 MiB of ids); the files beyond it are checked one by one.
const maxDirBatch = 1 << 16

// storedFiles checks the blobs of a directory's unchanged files in one
// batch and returns the names of those whose blobs are all stored (or
// being stored by this run). One sorted batch reads each block of the
// index tables once where the files' blobs share blocks (design.md §24);
// a file left out, or with a blob not found, is checked again on its own
// by saveFile. What it finds stays true for the rest of the run: the
// index and the saver's pending blobs only grow while a backup runs.
func (a *archiver) storedFiles(oldTree *snapshot.Tree, children []child) map[string]bool {
	var ids []blob.ID
	var names []string
	for _, c := range children {
		if !c.fi.Mode().IsRegular() {
			continue
		}
		old, n := oldTree.Find(c.name), fileNode(c.fi)
		if !unchanged(old, &n) || len(ids)+len(old.Content) > maxDirBatch {
			continue
		}
		ids = append(ids, old.Content...)
		names = append(names, c.name)
	}
	if len(names) < 2 {
		return nil // one file is checked on its own
	}
	missing := map[blob.ID]bool{}
	for _, id := range a.saver.Unknown(ids) {
		missing[id] = true
	}
	out := make(map[string]bool, len(names))
	for _, name := range names {
		out[name] = !slices.ContainsFunc(oldTree.Find(name).Content, func(id blob.ID) bool { return missing[id] })
	}
	return out
}

// allStored reports whether every blob of an unchanged file is still
// indexed (or being stored by this run), so its content list can be
// reused (design.md §18.1); it asks the index once for the whole file.
func (a *archiver) allStored(ids []blob.ID) bool {
	return a.saver.KnownAll(ids)
}

// chunkFile reads f once. This goroutine only reads and finds chunk
// boundaries; a companion goroutine computes the whole-file hash in order,
// and the blob workers compute ids, compress and encrypt. At most a few
// chunks are in flight, so memory stays bounded.
func (a *archiver) chunkFile(ctx context.Context, f *os.File, sizeHint int64) ([]blob.ID, blob.ID, int64, error) {
	bufs := a.bigBufs
	if sizeHint <= smallFile {
		bufs = a.smallBufs
	}
	var ch chunkSource
	if sizeHint >= parallelChunkMin && a.workers >= parallelChunkCores {
		pc := chunking.NewParallel(f, a.r.Chunking(), a.workers, parallelSegment)
		defer pc.Close()
		ch = pc
	} else {
		c, ok := a.chunkers.Get().(*chunking.Chunker)
		if ok {
			c.Reset(f, a.r.Chunking())
		} else {
			c = chunking.New(f, a.r.Chunking())
		}
		defer func() {
			c.Reset(nil, a.r.Chunking()) // let go of the file
			a.chunkers.Put(c)
		}()
		ch = c
	}
	hashq := make(chan *chunkJob, a.window+1)
	hashed := make(chan blob.ID, 1)
	go func() {
		hasher := crypto.NewHasher()
		for j := range hashq {
			_, _ = hasher.Write(j.data)
			a.release(j)
		}
		var sum blob.ID
		hasher.Sum(sum[:0])
		hashed <- sum
	}()
	var (
		size     int64
		inflight []chan chunkResult
		content  []blob.ID
		firstErr error
	)
	collect := func() {
		res := <-inflight[0]
		inflight = inflight[1:]
		if res.err != nil && firstErr == nil {
			firstErr = &storeError{res.err}
		}
		content = append(content, res.id)
	}
	for firstErr == nil {
		if err := ctx.Err(); err != nil {
			firstErr = err
			break
		}
		buf, err := bufs.Get(ctx)
		if err != nil {
			firstErr = err
			break
		}
		data, err := ch.Next(*buf)
		if err == io.EOF {
			bufs.Put(buf)
			break
		}
		if err != nil {
			bufs.Put(buf)
			firstErr = err
			break
		}
		*buf = data[:0] // keep the storage if the chunker grew it
		size += int64(len(data))
		j := &chunkJob{buf: buf, bufs: bufs, data: data, done: make(chan chunkResult, 1)}
		j.refs.Store(2)
		inflight = append(inflight, j.done)
		hashq <- j
		a.jobs <- j
		if len(inflight) > a.window {
			collect()
		}
		a.bytesProcessed.Add(int64(len(data)))
		if a.opts.OnBytes != nil {
			a.opts.OnBytes(int64(len(data)))
		}
	}
	for len(inflight) > 0 {
		collect()
	}
	close(hashq)
	return content, <-hashed, size, firstErr
}

// release returns a chunk's buffer once both the hasher and a blob worker
// are done with it.
func (a *archiver) release(j *chunkJob) {
	if j.refs.Add(-1) == 0 {
		j.bufs.Put(j.buf)
	}
}

func (a *archiver) blobWorker() {
	for j := range a.jobs {
		id := a.r.BlobID(j.data)
		_, err := a.saver.SaveBlob(blob.Data, id, j.data)
		a.release(j)
		j.done <- chunkResult{id: id, err: err}
	}
}

func userName() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
