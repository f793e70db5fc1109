package restorer

import (
	"context"
	"fmt"
	"hash"
	"io"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

const (
	// maxRun caps one range read: large enough that a 1 GiB recording
	// takes a few hundred requests, small enough that the budget below
	// keeps several files in flight.
	maxRun = 4 << 20
	// window is how many runs of one file are fetched ahead of the writer.
	window = 4
	// restoreBudget bounds the bytes fetched but not yet written, over all
	// files restored at once. 32 MiB kept a 3 GB restore as fast as 64 MiB
	// did, with 40 MB less peak memory.
	restoreBudget = 32 << 20
)

type run struct {
	locs []index.Location
	size int64
}

// planRuns groups a file's blobs into runs that are contiguous in a pack
// and at most maxRun bytes, unless one blob is larger. The index finds
// the whole file's blobs in one batch.
func planRuns(r *repo.Repository, content []blob.ID, maxRun int64) ([]run, error) {
	locs, missing := r.Index().LookupAll(content)
	if missing >= 0 {
		return nil, fmt.Errorf("data blob %s: %w", content[missing].Short(), repo.ErrBlobNotIndexed)
	}
	var runs []run
	for _, loc := range locs {
		if n := len(runs); n > 0 {
			last := &runs[n-1]
			if repo.Contiguous(last.locs[len(last.locs)-1], loc) && last.size+int64(loc.Length) <= maxRun {
				last.locs = append(last.locs, loc)
				last.size += int64(loc.Length)
				continue
			}
		}
		runs = append(runs, run{locs: []index.Location{loc}, size: int64(loc.Length)})
	}
	return runs, nil
}

type fetched struct {
	blobs [][]byte
	buf   []byte // the run's read buffer, which blobs may alias
	held  int64
	err   error
}

// fetcher bounds and recycles the memory of runs fetched but not yet
// written, shared by all files restored at once. Reused read buffers spare
// the page faults of fresh allocations, which cost more than the reads.
type fetcher struct {
	bud    *buffers.Budget
	bufs   *buffers.List
	maxRun int64
	// big recycles the buffers of runs larger than maxRun: single chunks
	// of up to the repository's maximum, a few percent of the blobs and a
	// tenth of the bytes of a recording. Allocated afresh, they were
	// zeroed and page-faulted on every read.
	big    *buffers.List
	bigRun int64
	// packs, set by Restore where storage prefers large reads, serves
	// runs from packs read whole. WriteContent (dump) reads one file,
	// whose runs share their packs with other files: reading those whole
	// would fetch several times the bytes it needs.
	packs *packCache
}

func newFetcher(r *repo.Repository, budget, maxRun int64) *fetcher {
	bigRun := max(int64(r.Chunking().MaxSize)+crypto.Overhead, maxRun)
	return &fetcher{
		bud:    buffers.NewBudget(budget),
		bufs:   buffers.New(int(budget/maxRun), int(maxRun)),
		maxRun: maxRun,
		big:    buffers.New(2, int(bigRun)),
		bigRun: bigRun,
	}
}

// loadRun is r.LoadRun, through the pack cache where there is one.
func (fe *fetcher) loadRun(ctx context.Context, r *repo.Repository, run []index.Location, buf []byte) ([][]byte, error) {
	if fe.packs != nil {
		return fe.packs.loadRun(ctx, run, buf)
	}
	return r.LoadRun(ctx, run, buf)
}

// get takes the memory of a run of size bytes, waiting for it only if wait
// is set, and returns the bytes held and a buffer for the run: a recycled
// one for large runs, none (LoadRun allocates exactly) for small ones,
// which would waste a large buffer.
func (fe *fetcher) get(size int64, wait bool) (int64, []byte, bool) {
	var list *buffers.List
	switch {
	case size > fe.maxRun:
		list = fe.big
	case size >= fe.maxRun/4:
		list, size = fe.bufs, fe.maxRun
	}
	var held int64
	if wait {
		held = fe.bud.Acquire(size)
	} else if n, ok := fe.bud.TryAcquire(size); ok {
		held = n
	} else {
		return 0, nil, false
	}
	if list == nil {
		return held, nil, true
	}
	return held, *list.Get(), true
}

// done gives back a fetched run's memory once its blobs are written.
func (fe *fetcher) done(f fetched) {
	switch {
	case int64(cap(f.buf)) > fe.maxRun:
		fe.big.Put(&f.buf)
	case cap(f.buf) > 0:
		fe.bufs.Put(&f.buf)
	}
	fe.bud.Release(f.held)
}

// WriteContent writes a file node's content to w, checking the whole-file
// BLAKE3 recorded at backup. On a mismatch the bytes were already written:
// callers writing to a terminal or pipe report the error.
func WriteContent(ctx context.Context, r *repo.Repository, n snapshot.Node, w io.Writer, onBytes func(int64)) error {
	return writeContent(ctx, r, newFetcher(r, restoreBudget, maxRun), n, w, onBytes)
}

// writeContent fetches runs of blobs in parallel, a few ahead, and writes
// them in order while hashing.
func writeContent(ctx context.Context, r *repo.Repository, fe *fetcher, n snapshot.Node, w io.Writer, onBytes func(int64)) error {
	if n.Type != snapshot.NodeFile {
		return fmt.Errorf("%s is a %s, not a file", n.Name, n.Type)
	}
	runs, err := planRuns(r, n.Content, fe.maxRun)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pending []chan fetched
	next := 0
	// fill starts fetches up to the window. It waits for memory only when
	// nothing of this file is in flight, so it never waits while holding
	// memory other files may be waiting for.
	fill := func() {
		for next < len(runs) && len(pending) < window {
			rn := runs[next]
			held, buf, ok := fe.get(rn.size, len(pending) == 0)
			if !ok {
				return
			}
			next++
			ch := make(chan fetched, 1)
			pending = append(pending, ch)
			go func() {
				blobs, err := fe.loadRun(ctx, r, rn.locs, buf)
				ch <- fetched{blobs: blobs, buf: buf, held: held, err: err}
			}()
		}
	}
	// On an early return, wait for fetches in flight and give back their memory.
	defer func() {
		cancel()
		for _, ch := range pending {
			fe.done(<-ch)
		}
	}()

	v := newVerifier(n)
	fill()
	for len(pending) > 0 {
		f := <-pending[0]
		pending = pending[1:]
		if f.err != nil {
			fe.done(f)
			return f.err
		}
		for _, data := range f.blobs {
			if _, err := w.Write(data); err != nil {
				fe.done(f)
				return err
			}
			v.add(data)
			if onBytes != nil {
				onBytes(int64(len(data)))
			}
		}
		fe.done(f)
		fill()
	}
	return v.check()
}

// verifier checks a file's content as it is written against the size and
// whole-file BLAKE3 recorded at backup.
type verifier struct {
	n    snapshot.Node
	h    hash.Hash
	size uint64
}

func newVerifier(n snapshot.Node) *verifier { return &verifier{n: n, h: crypto.NewHasher()} }

func (v *verifier) add(data []byte) {
	_, _ = v.h.Write(data)
	v.size += uint64(len(data))
}

func (v *verifier) check() error {
	if v.size != v.n.Size {
		return fmt.Errorf("%w: %d bytes, recorded size %d", ErrMismatch, v.size, v.n.Size)
	}
	if v.n.BLAKE3 != nil {
		var got blob.ID
		v.h.Sum(got[:0])
		if got != *v.n.BLAKE3 {
			return fmt.Errorf("%w: got %s, recorded %s", ErrMismatch, got, v.n.BLAKE3)
		}
	}
	return nil
}
