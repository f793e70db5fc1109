// Package buffers recycles large byte buffers through a bounded free list.
// Unlike sync.Pool it keeps them across garbage collections, so a steady
// pipeline allocates its buffers once and its memory stays flat.
package buffers

// List is a free list of buffers; safe for concurrent use.
type List struct {
	free chan *[]byte
	size int
}

// New returns a list keeping at most n idle buffers, each made with
// capacity size.
func New(n, size int) *List {
	return &List{free: make(chan *[]byte, n), size: size}
}

// Get returns an empty buffer of capacity at least size.
func (l *List) Get() *[]byte {
	select {
	case b := <-l.free:
		*b = (*b)[:0]
		return b
	default:
		b := make([]byte, 0, l.size)
		return &b
	}
}

// Put gives a buffer back; it is dropped when the list is full, or when
// it is smaller than the list's size or has grown past four times it (a
// rare huge chunk must not stay pinned for the rest of the run).
func (l *List) Put(b *[]byte) {
	if cap(*b) < l.size || cap(*b) > 4*l.size {
		return
	}
	select {
	case l.free <- b:
	default:
	}
}
