package restorer

import (
	"context"
	"sync"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// Directories are read one tree blob at a time, and the walk needs a tree
// before it can go on: on object storage, a snapshot of 1,000 directories
// cost 1,000 round trips one after the other, seconds before the first
// file of a directory could start. The restore's walk reads its trees
// through a treePrefetcher, which loads the subtrees of each tree handed
// out in the background, a bounded number at once and ahead.
const (
	// prefetchLoads is how many trees are loaded at once.
	prefetchLoads = 8
	// prefetchAhead bounds the trees loaded but not yet walked.
	prefetchAhead = 64
)

// treePrefetcher is a snapshot.TreeLoader that loads ahead of the walk.
type treePrefetcher struct {
	l      snapshot.TreeLoader
	ctx    context.Context // of the loads ahead; cancelled by close
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	ahead map[blob.ID]*treeFuture
}

type treeFuture struct {
	done chan struct{}
	t    *snapshot.Tree
	err  error
}

func newTreePrefetcher(ctx context.Context, l snapshot.TreeLoader) *treePrefetcher {
	ctx, cancel := context.WithCancel(ctx)
	return &treePrefetcher{l: l, ctx: ctx, cancel: cancel, sem: make(chan struct{}, prefetchLoads), ahead: map[blob.ID]*treeFuture{}}
}

// LoadTree returns tree id, loaded ahead if it was, and starts loading its
// subtrees. A load ahead that failed is repeated here, so the walk sees the
// error of a load made for it, under its own context.
func (p *treePrefetcher) LoadTree(ctx context.Context, id blob.ID) (*snapshot.Tree, error) {
	p.mu.Lock()
	f := p.ahead[id]
	delete(p.ahead, id)
	p.mu.Unlock()
	var (
		t   *snapshot.Tree
		err error
	)
	if f != nil {
		select {
		case <-f.done:
			t, err = f.t, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f == nil || err != nil {
		if t, err = p.l.LoadTree(ctx, id); err != nil {
			return nil, err
		}
	}
	p.prefetch(t)
	return t, nil
}

// prefetch starts loading the subtrees of t, while fewer than
// prefetchAhead trees wait to be walked.
func (p *treePrefetcher) prefetch(t *snapshot.Tree) {
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type != snapshot.NodeDir || n.Subtree == nil {
			continue
		}
		id := *n.Subtree
		p.mu.Lock()
		if len(p.ahead) >= prefetchAhead {
			p.mu.Unlock()
			return
		}
		if _, ok := p.ahead[id]; ok {
			p.mu.Unlock()
			continue
		}
		f := &treeFuture{done: make(chan struct{})}
		p.ahead[id] = f
		p.mu.Unlock()
		p.wg.Go(func() {
			defer close(f.done)
			select {
			case p.sem <- struct{}{}:
			case <-p.ctx.Done():
				f.err = p.ctx.Err()
				return
			}
			defer func() { <-p.sem }()
			f.t, f.err = p.l.LoadTree(p.ctx, id)
		})
	}
}

// close stops the loads ahead and waits for them.
func (p *treePrefetcher) close() {
	p.cancel()
	p.wg.Wait()
}
