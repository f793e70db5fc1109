package buffers

import (
	"testing"
	"time"
)

func TestBudgetBlocksUntilReleasedAndClamps(t *testing.T) {
	b := NewBudget(100)
	if got := b.Acquire(60); got != 60 {
		t.Fatalf("Acquire(60) took %d", got)
	}
	if _, ok := b.TryAcquire(50); ok {
		t.Fatal("TryAcquire(50) succeeded with 40 free")
	}
	if got := b.Acquire(-5); got != 0 {
		t.Fatalf("Acquire(-5) took %d", got)
	}
	done := make(chan int64)
	go func() { done <- b.Acquire(1000) }() // more than the budget: waits for all of it
	select {
	case n := <-done:
		t.Fatalf("Acquire(1000) took %d while 60 bytes were held", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release(60)
	if n := <-done; n != 100 {
		t.Fatalf("Acquire(1000) took %d, want the whole budget, 100", n)
	}
	if f := b.Free(); f != 0 {
		t.Fatalf("free %d with everything held", f)
	}
	b.Release(100)
	if f := b.Free(); f != 100 {
		t.Fatalf("free %d after release, want 100", f)
	}
}
