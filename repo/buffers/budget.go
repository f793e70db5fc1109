package buffers

import "sync"

// Budget is a counting semaphore over bytes held in memory: the objects a
// replication copies at once, the runs a restore has fetched and not yet
// written. Safe for concurrent use.
type Budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int64
	max  int64
}

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := &Budget{free: n, max: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Acquire waits until n bytes are free and takes them, returning what it
// took: n, clamped to [0, the whole budget], so that a request larger
// than the budget waits only for all of it and then runs alone. Only a
// caller that holds none of the budget may wait: one holding some while
// waiting for more could deadlock with others doing the same; it uses
// TryAcquire.
func (b *Budget) Acquire(n int64) int64 {
	n = min(max(n, 0), b.max)
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
	return n
}

// TryAcquire takes n bytes (clamped as in Acquire) if they are free now.
func (b *Budget) TryAcquire(n int64) (int64, bool) {
	n = min(max(n, 0), b.max)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free < n {
		return 0, false
	}
	b.free -= n
	return n, true
}

// Release gives back n bytes that Acquire or TryAcquire returned.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Free is the number of bytes not held now.
func (b *Budget) Free() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}
