package restorer

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
)

const (
	// maxRun caps one range read: large enough that a 1 GiB recording
	// takes few requests, small enough to keep memory bounded.
	maxRun = 8 << 20
	// window is how many runs of one file are fetched ahead of the writer.
	window = 4
	// restoreBudget bounds the bytes fetched but not yet written, over all
	// files restored at once.
	restoreBudget = 64 << 20
)

// budget is a counting semaphore over bytes in flight.
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int64
	max  int64
}

func newBudget(n int64) *budget {
	b := &budget{free: n, max: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits for n bytes (at most the whole budget, so a huge run
// cannot wait forever).
func (b *budget) acquire(n int64) int64 {
	n = min(n, b.max)
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
	return n
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

type run struct {
	locs []index.Location
	size int64
}

// planRuns groups a file's blobs into runs that are contiguous in a pack.
func planRuns(r *repo.Repository, content []blob.ID) ([]run, error) {
	var runs []run
	for _, id := range content {
		loc, ok := r.Index().Lookup(id)
		if !ok {
			return nil, fmt.Errorf("data blob %s: %w", id.Short(), repo.ErrBlobNotIndexed)
		}
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
	held  int64
	err   error
}

// WriteContent writes a file node's content to w, checking the whole-file
// BLAKE3 recorded at backup. On a mismatch the bytes were already written:
// callers writing to a terminal or pipe report the error.
func WriteContent(ctx context.Context, r *repo.Repository, n repo.Node, w io.Writer, onBytes func(int64)) error {
	return writeContent(ctx, r, newBudget(restoreBudget), n, w, onBytes)
}

// writeContent fetches runs of blobs in parallel, a few ahead, and writes
// them in order while hashing.
func writeContent(ctx context.Context, r *repo.Repository, bud *budget, n repo.Node, w io.Writer, onBytes func(int64)) error {
	if n.Type != repo.NodeFile {
		return fmt.Errorf("%s is a %s, not a file", n.Name, n.Type)
	}
	runs, err := planRuns(r, n.Content)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pending []chan fetched
	next := 0
	start := func() {
		rn := runs[next]
		next++
		ch := make(chan fetched, 1)
		pending = append(pending, ch)
		held := bud.acquire(rn.size)
		go func() {
			blobs, err := r.LoadRun(ctx, rn.locs)
			ch <- fetched{blobs: blobs, held: held, err: err}
		}()
	}
	// On an early return, wait for fetches in flight and give back their budget.
	defer func() {
		cancel()
		for _, ch := range pending {
			bud.release((<-ch).held)
		}
	}()

	h := crypto.NewHasher()
	var size uint64
	for next < len(runs) && len(pending) < window {
		start()
	}
	for len(pending) > 0 {
		f := <-pending[0]
		pending = pending[1:]
		if f.err != nil {
			bud.release(f.held)
			return f.err
		}
		for _, data := range f.blobs {
			if _, err := w.Write(data); err != nil {
				bud.release(f.held)
				return err
			}
			_, _ = h.Write(data)
			size += uint64(len(data))
			if onBytes != nil {
				onBytes(int64(len(data)))
			}
		}
		bud.release(f.held)
		if next < len(runs) {
			start()
		}
	}
	if size != n.Size {
		return fmt.Errorf("%w: %d bytes, recorded size %d", ErrMismatch, size, n.Size)
	}
	if n.BLAKE3 != nil {
		var got blob.ID
		h.Sum(got[:0])
		if got != *n.BLAKE3 {
			return fmt.Errorf("%w: got %s, recorded %s", ErrMismatch, got, n.BLAKE3)
		}
	}
	return nil
}
