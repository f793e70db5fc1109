package buffers

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoolBoundsBuffersOut(t *testing.T) {
	p := NewPool(2, 64)
	ctx := context.Background()
	a, _ := p.Get(ctx)
	b, _ := p.Get(ctx)
	if cap(*a) < 64 || cap(*b) < 64 || a == b {
		t.Fatal("Get did not make two distinct buffers")
	}
	got := make(chan *[]byte)
	go func() {
		c, _ := p.Get(ctx)
		got <- c
	}()
	select {
	case <-got:
		t.Fatal("a third buffer was handed out while two were out")
	case <-time.After(50 * time.Millisecond):
	}
	*a = append((*a)[:0], make([]byte, 200)...) // grown: kept at its new size
	p.Put(a)
	c := <-got
	if c != a || len(*c) != 0 || cap(*c) < 200 {
		t.Fatalf("waiting Get got %p len %d cap %d, want the returned buffer, empty, grown", c, len(*c), cap(*c))
	}
	if b, ok := p.TryGet(); ok {
		t.Fatalf("TryGet handed out a third buffer (%p)", b)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with nothing free and ctx done: %v", err)
	}
	*b = (*b)[:0:10] // lost its storage: replaced at full size
	p.Put(b)
	if d, _ := p.Get(ctx); cap(*d) < 64 {
		t.Fatalf("a buffer put back too small came out with cap %d", cap(*d))
	}
}
