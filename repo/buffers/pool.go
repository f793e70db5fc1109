package buffers

import (
	"context"
	"fmt"
	"sync"
)

// Pool lends at most n buffers: Get waits for one to come back once n are
// out. Bounding the buffers in use bounds a pipeline's memory, not just
// its idle buffers; safe for concurrent use.
type Pool struct {
	size int
	free chan *[]byte
	mu   sync.Mutex
	made int
}

// NewPool returns a pool of n buffers, each made with capacity size when
// first needed.
func NewPool(n, size int) *Pool {
	return &Pool{size: size, free: make(chan *[]byte, n)}
}

// TryGet returns an empty buffer if one is free or may still be made.
func (p *Pool) TryGet() (*[]byte, bool) {
	select {
	case b := <-p.free:
		*b = (*b)[:0]
		return b, true
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.made < cap(p.free) {
		p.made++
		b := make([]byte, 0, p.size)
		return &b, true
	}
	return nil, false
}

// Get returns an empty buffer, waiting while all n are out until ctx is done.
func (p *Pool) Get(ctx context.Context) (*[]byte, error) {
	if b, ok := p.TryGet(); ok {
		return b, nil
	}
	select {
	case b := <-p.free:
		*b = (*b)[:0]
		return b, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a buffer: %w", ctx.Err())
	}
}

// Put returns a buffer from Get; its storage may have been replaced by a
// larger one, which is kept. Each buffer must be put back exactly once.
func (p *Pool) Put(b *[]byte) {
	if cap(*b) < p.size {
		*b = make([]byte, 0, p.size)
	}
	p.free <- b
}
