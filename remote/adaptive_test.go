package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
)

// tryAcquire takes a slot if one is free, without waiting.
func tryAcquire(l *remote.AdaptiveLimit) (func(remote.Outcome, time.Duration), bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release, err := l.Acquire(ctx)
	return release, err == nil
}

// fill takes every free slot.
func fill(l *remote.AdaptiveLimit) []func(remote.Outcome, time.Duration) {
	var held []func(remote.Outcome, time.Duration)
	for {
		release, ok := tryAcquire(l)
		if !ok {
			return held
		}
		held = append(held, release)
	}
}

func TestAdaptiveLimitRisesOnSteadyFastAnswersUpToTheCeiling(t *testing.T) {
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 2, Initial: 4, Ceiling: 12, Now: clock.Now})
	held := fill(l)
	if len(held) != 4 {
		t.Fatalf("took %d slots at a limit of 4", len(held))
	}
	// A saturated caller: every answer, as fast as the first, frees a
	// slot that is taken again at once.
	for i := range 100 {
		clock.Advance(10 * time.Millisecond)
		held[0](remote.Succeeded, 20*time.Millisecond)
		held = append(held[1:], fill(l)...)
		if st := l.Stats(); st.Limit > 12 || st.InFlight != len(held) {
			t.Fatalf("answer %d: %+v, %d held", i, st, len(held))
		}
	}
	if st := l.Stats(); st.Limit != 12 || st.Peak != 12 || st.Drops != 0 {
		t.Fatalf("after 100 fast answers: %+v, want the ceiling of 12", st)
	}
	for _, release := range held {
		release(remote.Succeeded, 20*time.Millisecond)
	}
	if st := l.Stats(); st.InFlight != 0 {
		t.Fatalf("in flight after all released: %d", st.InFlight)
	}
}

func TestAdaptiveLimitDoesNotGrowWhileUnused(t *testing.T) {
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Initial: 4, Now: newFakeClock().Now})
	for range 50 {
		release, ok := tryAcquire(l)
		if !ok {
			t.Fatal("no slot for a single request")
		}
		release(remote.Succeeded, time.Millisecond)
	}
	if st := l.Stats(); st.Limit != 4 {
		t.Fatalf("limit %d after requests one at a time, want 4", st.Limit)
	}
}

func TestAdaptiveLimitHalvesOnOverloadDownToTheFloor(t *testing.T) {
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 3, Initial: 32, Ceiling: 32, Now: clock.Now})
	held := fill(l)
	// A burst of 503s answering one burst of requests is one signal.
	for _, release := range held[:10] {
		release(remote.Overloaded, 0)
	}
	if st := l.Stats(); st.Limit != 16 || st.Drops != 1 {
		t.Fatalf("after a burst of 503s: %+v, want 16 after one drop", st)
	}
	// The slots held above the new limit are given back as they end, and
	// no new one is handed out until in flight is below the limit.
	if _, ok := tryAcquire(l); ok {
		t.Fatal("a slot was handed out above the limit")
	}
	for _, release := range held[10:] {
		release(remote.Neutral, 0)
		release(remote.Neutral, 0) // a second call does nothing
	}
	// Each 503 to a request sent after the last decrease halves it again.
	for i, want := range []int{8, 4, 3, 3} {
		release, ok := tryAcquire(l)
		if !ok {
			t.Fatal("no slot free with nothing in flight")
		}
		release(remote.Overloaded, 0)
		if st := l.Stats(); st.Limit != want {
			t.Fatalf("503 %d: limit %d, want %d", i+2, st.Limit, want)
		}
	}
	if st := l.Stats(); st.InFlight != 0 || st.Limit != 3 {
		t.Fatalf("after all released: %+v", st)
	}
}

func TestAdaptiveLimitFallsWhenLatencyClimbsAboveTheMinimum(t *testing.T) {
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 2, Initial: 16, Slack: 5 * time.Millisecond, Now: clock.Now})
	answer := func(o remote.Outcome, latency time.Duration) {
		t.Helper()
		release, ok := tryAcquire(l)
		if !ok {
			t.Fatal("no slot")
		}
		clock.Advance(latency)
		release(o, latency)
	}
	answer(remote.Succeeded, 20*time.Millisecond)
	answer(remote.Succeeded, 45*time.Millisecond) // at most 2×20+5: fine
	if st := l.Stats(); st.Limit != 16 || st.Drops != 0 {
		t.Fatalf("after latencies within 2x the minimum: %+v", st)
	}
	answer(remote.Succeeded, 46*time.Millisecond)
	if st := l.Stats(); st.Limit != 12 || st.Drops != 1 {
		t.Fatalf("after a latency over 2x the minimum: %+v, want 12", st)
	}
	// Neutral outcomes (a 404, a cancelled request) change nothing.
	answer(remote.Neutral, time.Hour)
	if st := l.Stats(); st.Limit != 12 || st.InFlight != 0 {
		t.Fatalf("a neutral outcome moved the limit: %+v", st)
	}
}

func TestAdaptiveLimitForgetsAnOldMinimumLatency(t *testing.T) {
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Initial: 8, Window: 10 * time.Second, Now: clock.Now})
	answer := func(latency time.Duration) {
		release, ok := tryAcquire(l)
		if !ok {
			t.Fatal("no slot")
		}
		release(remote.Succeeded, latency)
	}
	answer(10 * time.Millisecond)
	// The server's idle latency has moved to 100ms (a new route, say):
	// once a window of such answers has passed, 100ms is no longer high.
	for range 3 {
		clock.Advance(6 * time.Second)
		answer(100 * time.Millisecond)
	}
	drops := l.Stats().Drops
	clock.Advance(10 * time.Second)
	answer(100 * time.Millisecond)
	if st := l.Stats(); st.Drops != drops {
		t.Fatalf("a latency at the new minimum dropped the limit: %+v", st)
	}
	if drops == 0 {
		t.Fatal("the first answers at 10x the old minimum did not count as high")
	}
}

// A server that keeps up with capacity requests at once and queues the
// rest: starting below that, the limit climbs and then settles near
// where the latency doubles, far from the ceiling, and not at the floor.
func TestAdaptiveLimitSettlesNearWhatTheServerKeepsUpWith(t *testing.T) {
	const capacity = 4
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 2, Initial: 2, Ceiling: 64, Slack: 5 * time.Millisecond, Now: clock.Now})
	for range 300 {
		held := fill(l)
		n := len(held)
		latency := 20 * time.Millisecond * time.Duration(max(n, capacity)) / capacity
		clock.Advance(latency)
		for _, release := range held {
			release(remote.Succeeded, latency)
		}
	}
	st := l.Stats()
	if st.Limit < capacity || st.Limit > 3*capacity || st.Peak > 3*capacity || st.InFlight != 0 {
		t.Fatalf("against a server keeping up with %d at once: %+v", capacity, st)
	}
}

func TestAdaptiveLimitAcquireWaitsAndGivesUpWithItsContext(t *testing.T) {
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 2, Initial: 2, Ceiling: 2, Now: newFakeClock().Now})
	held := fill(l)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		release, err := l.Acquire(ctx)
		if err == nil {
			release(remote.Neutral, 0)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Acquire returned %v with no slot free", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire after cancel: %v", err)
	}
	// A waiter gets the slot a release frees.
	go func() {
		release, err := l.Acquire(context.Background())
		if err == nil {
			release(remote.Neutral, 0)
		}
		got <- err
	}()
	held[0](remote.Succeeded, 0)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	held[1](remote.Succeeded, 0)
	if st := l.Stats(); st.InFlight != 0 {
		t.Fatalf("in flight after cancellation and releases: %d", st.InFlight)
	}
}

// status503 is an S3 SlowDown answer as the SDK reports its status.
type status503 struct{}

func (status503) Error() string       { return "api error SlowDown: Please reduce your request rate" }
func (status503) HTTPStatusCode() int { return 503 }

// throttling answers 503 to every third request, as a busy server does.
type throttling struct {
	remote.Backend
	mu    sync.Mutex
	calls int
}

func (b *throttling) fail() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	return b.calls%3 == 0
}

func (b *throttling) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if b.fail() {
		return status503{}
	}
	return b.Backend.Load(ctx, h, offset, length, fn)
}

func (b *throttling) Save(ctx context.Context, h remote.Handle, data []byte) error {
	if b.fail() {
		return status503{}
	}
	return b.Backend.Save(ctx, h, data)
}

// Through the retries, 503s a retry gets past still lower the limit, and
// every request ends with its slot given back.
func TestAdaptiveShrinksUnder503sThroughRetries(t *testing.T) {
	store := mem.New(nil)
	retry := remote.NewRetry(&throttling{Backend: store}, remote.RetryPolicy{
		MaxAttempts: 10,
		Sleep:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	a := remote.NewAdaptive(retry, remote.AdaptivePolicy{Floor: 2, Initial: 16, Ceiling: 16})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			data := []byte(fmt.Sprintf("object %d", i))
			h := remote.Handle{Type: remote.Data, Name: fmt.Sprintf("%064x", i)}
			if err := a.Save(ctx, h, data); err != nil {
				errs <- err
				return
			}
			got, err := remote.ReadAll(ctx, a, h)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("%s: read back %q", h, got)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := a.Stats()
	if st.Drops == 0 || st.InFlight != 0 {
		t.Fatalf("after 128 requests, every third answered 503: %+v, want drops and nothing in flight", st)
	}
}

// A caller that gives up while waiting for a slot, or while its request
// is under way, leaves nothing held.
func TestAdaptiveCancelledRequestsLeaveNoSlotHeld(t *testing.T) {
	store := mem.New(nil)
	h := remote.Handle{Type: remote.Data, Name: fmt.Sprintf("%064x", 1)}
	if err := store.Save(context.Background(), h, []byte("data")); err != nil {
		t.Fatal(err)
	}
	a := remote.NewAdaptive(store, remote.AdaptivePolicy{Floor: 2, Initial: 2, Ceiling: 2})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_ = a.Load(ctx, h, 0, 0, func(io.Reader) error {
				select {
				case started <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return ctx.Err()
			})
		})
	}
	<-started
	<-started
	if st := a.Stats(); st.InFlight != 2 {
		t.Fatalf("in flight with 10 callers at a limit of 2: %d", st.InFlight)
	}
	cancel()
	wg.Wait()
	if st := a.Stats(); st.InFlight != 0 || st.Limit != 2 || st.Drops != 0 {
		t.Fatalf("after cancellation: %+v, want nothing in flight and no drop", st)
	}
}

// The answers to requests sent before a decrease tell of the load that
// decrease answered: under a saturated caller (every request took the
// last slot), the requests in flight when a 503 came must not raise the
// limit back as they succeed, or one throttled request leaves the limit
// higher than before it.
func TestAdaptiveLimitDecreaseIsNotUndoneByRequestsSentBeforeIt(t *testing.T) {
	clock := newFakeClock()
	l := remote.NewAdaptiveLimit(remote.AdaptivePolicy{Floor: 2, Initial: 8, Ceiling: 32, Now: clock.Now})
	held := fill(l)
	// Saturate: each freed slot is taken again at once, so every request
	// in flight took the last slot.
	for range 8 {
		held[0](remote.Neutral, 0)
		held = append(held[1:], fill(l)...)
	}
	if st := l.Stats(); st.Limit != 8 || st.InFlight != 8 {
		t.Fatalf("saturated: %+v", st)
	}
	held[0](remote.Overloaded, 0)
	if st := l.Stats(); st.Limit != 4 {
		t.Fatalf("after a 503: %+v, want 4", st)
	}
	for _, release := range held[1:] {
		clock.Advance(10 * time.Millisecond)
		release(remote.Succeeded, 20*time.Millisecond)
	}
	if st := l.Stats(); st.Limit != 4 || st.Drops != 1 {
		t.Fatalf("after the requests sent before the 503 succeeded: %+v, want the limit still 4", st)
	}
}
