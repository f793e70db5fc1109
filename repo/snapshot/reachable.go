package snapshot

import (
	"context"
	"fmt"
	"sync"

	"github.com/courtbak/courtbak/repo/blob"
)

// reachableWorkers is how many trees Reachable reads at once: on object
// storage each read is a round trip, and a repository has one tree per
// directory version.
const reachableWorkers = 8

// Reachable calls fn for every blob the trees reach: the trees themselves
// and their files' data blobs, a data blob once per tree that lists it. A
// tree is read once however many snapshots share it, so snapshots that
// share most of their directories cost little more than one. fn is called
// by one goroutine at a time. Callers keep only what they need of the ids:
// for a prune of millions of blobs, the set of them is most of its memory.
func Reachable(ctx context.Context, l TreeLoader, trees []blob.ID, fn func(blob.ID)) error {
	w := &treeWalk{seen: map[blob.ID]struct{}{}, fn: fn}
	w.cond = sync.NewCond(&w.mu)
	w.push(trees)
	var wg sync.WaitGroup
	for range reachableWorkers {
		wg.Go(func() { w.work(ctx, l) })
	}
	wg.Wait()
	return w.err
}

// treeWalk is the shared state of Reachable's workers: the trees seen,
// those still to read, how many are being read, and the first error.
type treeWalk struct {
	mu    sync.Mutex
	cond  *sync.Cond
	seen  map[blob.ID]struct{}
	fn    func(blob.ID)
	stack []blob.ID
	busy  int
	err   error
}

// push queues the trees not seen yet; the caller holds mu or is alone.
func (w *treeWalk) push(trees []blob.ID) {
	for _, id := range trees {
		if _, ok := w.seen[id]; !ok {
			w.seen[id] = struct{}{}
			w.fn(id)
			w.stack = append(w.stack, id)
		}
	}
}

func (w *treeWalk) work(ctx context.Context, l TreeLoader) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.stack) == 0 && w.busy > 0 && w.err == nil {
			w.cond.Wait()
		}
		if w.err != nil || len(w.stack) == 0 {
			w.cond.Broadcast() // the walk is over: wake the others to leave
			return
		}
		id := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		w.busy++
		w.mu.Unlock()
		t, err := l.LoadTree(ctx, id)
		w.mu.Lock()
		w.busy--
		if err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("tree %s: %w", id.Short(), err)
			}
			continue
		}
		var subtrees []blob.ID
		for i := range t.Nodes {
			n := &t.Nodes[i]
			for _, c := range n.Content {
				w.fn(c)
			}
			if n.Type == NodeDir && n.Subtree != nil {
				subtrees = append(subtrees, *n.Subtree)
			}
		}
		w.push(subtrees)
		w.cond.Broadcast()
	}
}
