package remote

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
)

// retriedCopies is a Failover, built as OpenFailover builds one, over a
// primary in an outage and an intact replica, each behind Retry with
// sleep as the wait between attempts.
func retriedCopies(t *testing.T, n int, sleep func(context.Context, time.Duration) error, warn func(string)) (*Failover, *Faulty, []Handle) {
	t.Helper()
	var hs []Handle
	var locals []Backend
	for range 2 {
		l, err := OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		locals = append(locals, l)
	}
	for i := range n {
		data := []byte{byte(i), 9}
		sum := crypto.Hash(data)
		h := Handle{Type: Data, Name: hex.EncodeToString(sum[:])}
		for _, l := range locals {
			if err := l.Save(context.Background(), h, data); err != nil {
				t.Fatal(err)
			}
		}
		hs = append(hs, h)
	}
	primary := NewFaulty(locals[0], FaultConfig{})
	primary.SetOutage(true)
	copies := []Backend{primary, locals[1]}
	f, err := openFailover(2, func(i int, p RetryPolicy) (Backend, error) {
		return NewRetry(copies[i], p), nil
	}, RetryPolicy{MaxAttempts: 8, Sleep: sleep}, FailoverOptions{Warn: warn})
	if err != nil {
		t.Fatal(err)
	}
	return f, primary, hs
}

// A copy that fails every attempt costs one request its first few
// attempts (BreakerPolicy.Failures), not its eight: the breaker opens and
// the request goes on to the next copy; later requests skip the copy.
func TestBreakerCutsARequestsRetriesShort(t *testing.T) {
	instant := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	var mu sync.Mutex
	var lines []string
	f, primary, hs := retriedCopies(t, 20, instant, func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() })
	for _, h := range hs {
		if _, err := ReadAll(context.Background(), f, h); err != nil {
			t.Fatal(err)
		}
	}
	if got := primary.Injected(); got != defaultBreakerFailures {
		t.Errorf("the failing primary was tried %d times, want %d", got, defaultBreakerFailures)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "failed 3 times in a row") {
		t.Errorf("notices %q", lines)
	}
}

// Requests waiting to retry a copy give up as soon as its breaker opens:
// with a backoff that would never end, every request still completes from
// the replica, each having tried the failing copy at most once.
func TestBreakerEndsRetriesWaitingOnTheCopy(t *testing.T) {
	forever := func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }
	f, primary, hs := retriedCopies(t, 8, forever, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(hs))
	for _, h := range hs {
		wg.Go(func() {
			_, err := ReadAll(ctx, f, h)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request did not fail over: %v", err)
		}
	}
	if got := primary.Injected(); got > len(hs) {
		t.Errorf("the failing primary was tried %d times by %d requests", got, len(hs))
	}
}

// When every copy fails at once (a blip of the network they share), the
// breakers open, but a request is not failed for that: it asks the copies
// again with their full retries, and succeeds once they answer.
func TestBreakerLastResortWhenEveryCopyIsOut(t *testing.T) {
	ctx := context.Background()
	var copies []*Faulty
	data := []byte("an index file")
	sum := crypto.Hash(data)
	h := Handle{Type: Index, Name: hex.EncodeToString(sum[:])}
	for range 2 {
		l, err := OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Save(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		fl := NewFaulty(l, FaultConfig{})
		fl.SetOutage(true)
		copies = append(copies, fl)
	}
	var sleeps atomic.Int64
	sleep := func(ctx context.Context, _ time.Duration) error {
		// The blip ends after a while of retrying.
		if sleeps.Add(1) == 10 {
			for _, c := range copies {
				c.SetOutage(false)
			}
		}
		return ctx.Err()
	}
	var mu sync.Mutex
	var lines []string
	f, err := openFailover(2, func(i int, p RetryPolicy) (Backend, error) {
		return NewRetry(copies[i], p), nil
	}, RetryPolicy{MaxAttempts: 8, Sleep: sleep}, FailoverOptions{Warn: func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(ctx, f, h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("read during a blip at every copy: %q %v", got, err)
	}
	// The copy that served is back in the rotation.
	copies[1].SetOutage(true)
	before := copies[0].Injected()
	if _, err := ReadAll(ctx, f, h); err != nil {
		t.Fatal(err)
	}
	if copies[0].Injected() != before || !strings.Contains(strings.Join(lines, "\n"), "answers again") {
		t.Errorf("the primary was not back in the rotation after serving: notices %q", lines)
	}
}
