package remote

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
)

// throttled is a transient error, as an S3 server's 503 is.
type throttled struct{}

func (throttled) Error() string       { return "503 SlowDown" }
func (throttled) HTTPStatusCode() int { return 503 }

// stallingCopy is a copy in an outage: its first Load hangs until
// release is closed, then every Load fails with a 503.
type stallingCopy struct {
	Backend
	calls   atomic.Int32
	release chan struct{}
}

func (s *stallingCopy) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	if s.calls.Add(1) == 1 {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return throttled{}
}

// Requests queued for a slot of a copy's adaptive limit when its breaker
// opens go to the next copy, without a request to the copy each: with a
// copy that stalls, each such request would cost a stalled attempt, a few
// slots at a time, and a DR restore would hang for minutes.
func TestFailoverRequestsWaitingForASlotGiveUpWhenTheCopyIsOut(t *testing.T) {
	ctx := context.Background()
	replica, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("recording")
	sum := crypto.Hash(data)
	h := Handle{Type: Data, Name: hex.EncodeToString(sum[:])}
	if err := replica.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	primary := &stallingCopy{Backend: replica, release: make(chan struct{})}
	var limited *Adaptive
	// As OpenFailover builds it: the adaptive limit above the retries,
	// which tell the copy's breaker of each failed attempt. The first
	// failed attempt opens it.
	instant := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	f, err := openFailover(2, func(i int, p RetryPolicy) (Backend, error) {
		if i == 1 {
			return replica, nil
		}
		limited = NewAdaptive(NewRetry(primary, p), AdaptivePolicy{Floor: 1, Initial: 1, Ceiling: 1})
		return limited, nil
	}, RetryPolicy{MaxAttempts: 8, Sleep: instant}, FailoverOptions{Breaker: BreakerPolicy{Failures: 1, Cooldown: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}

	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	load := func(i int) {
		defer wg.Done()
		_, errs[i] = ReadAll(ctx, f, h)
	}
	wg.Add(1)
	go load(0)
	for primary.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The others pass the closed breaker and wait for the only slot.
	wg.Add(n - 1)
	for i := 1; i < n; i++ {
		go load(i)
	}
	time.Sleep(100 * time.Millisecond)
	close(primary.release) // the first attempt fails: the breaker opens
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("reads through the failover: %v", err)
	}
	if got := primary.calls.Load(); got != 1 {
		t.Errorf("the copy whose breaker opened got %d requests, want 1: the requests queued for its slots went to it one after another", got)
	}
	if st := limited.Stats(); st.InFlight != 0 {
		t.Errorf("slots still held: %+v", st)
	}
}
