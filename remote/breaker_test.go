package remote_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// twoCopies is a faulty primary and an intact replica holding the same n
// objects.
func twoCopies(t *testing.T, n int) (*remote.Faulty, remote.Backend, []remote.Handle) {
	t.Helper()
	base, replica := newLocal(t), newLocal(t)
	var hs []remote.Handle
	for i := range n {
		data := []byte{byte(i), 7}
		h := named(remote.Index, data)
		mustSave(t, base, h, data)
		mustSave(t, replica, h, data)
		hs = append(hs, h)
	}
	return remote.NewFaulty(base, remote.FaultConfig{}), replica, hs
}

func readAll(t *testing.T, f remote.Backend, hs []remote.Handle) {
	t.Helper()
	for _, h := range hs {
		if _, err := remote.ReadAll(context.Background(), f, h); err != nil {
			t.Fatalf("read %s: %v", h, err)
		}
	}
}

// A failing copy is skipped for the cooldown, then probed by one request;
// a failed probe keeps it out twice as long, a successful one brings it
// back. The summary names the copy and counts the requests that skipped it.
func TestFailoverBreakerSkipsAFailingCopyAndProbesItLater(t *testing.T) {
	primary, replica, hs := twoCopies(t, 10)
	clock := newFakeClock()
	var n notices
	f := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{
		Warn:    n.warn,
		Breaker: remote.BreakerPolicy{Cooldown: 10 * time.Second, Now: clock.Now},
	})
	primary.SetOutage(true)

	readAll(t, f, hs)
	if got := primary.Injected(); got != 1 {
		t.Fatalf("the failing primary was asked %d times, want once", got)
	}
	if lines := n.all(); len(lines) != 1 || !strings.Contains(lines[0], primary.Location()+" failed") || !strings.Contains(lines[0], "trying it again in 10s") {
		t.Fatalf("notices %q", lines)
	}

	// Within the cooldown, nobody asks it.
	clock.Advance(9 * time.Second)
	readAll(t, f, hs)
	if got := primary.Injected(); got != 1 {
		t.Fatalf("the primary was asked %d times within the cooldown", got)
	}

	// After it, one request probes; it fails, and the cooldown doubles.
	clock.Advance(2 * time.Second)
	readAll(t, f, hs)
	if got := primary.Injected(); got != 2 {
		t.Fatalf("after the cooldown the primary was asked %d times, want one probe", got)
	}
	clock.Advance(11 * time.Second)
	readAll(t, f, hs)
	if got := primary.Injected(); got != 2 {
		t.Fatalf("a failed probe did not double the cooldown: %d requests", got)
	}

	// The copy recovers: the next probe brings it back.
	primary.SetOutage(false)
	clock.Advance(10 * time.Second)
	readAll(t, f, hs)
	if lines := n.all(); len(lines) != 2 || !strings.Contains(lines[1], primary.Location()+" answers again") {
		t.Fatalf("notices %q", lines)
	}
	// From now on the primary serves: an outage there shows up at once.
	primary.SetOutage(true)
	readAll(t, f, hs[:1])
	if got := primary.Injected(); got != 3 {
		t.Fatalf("the recovered primary was not asked again: %d requests", got)
	}

	sk := f.Skipped()
	if len(sk) != 1 || sk[0].Location != primary.Location() || !sk[0].Out || sk[0].Requests < 3*len(hs)-2 {
		t.Errorf("Skipped() = %+v", sk)
	}
}

// A copy that answers "not found" or damaged bytes is available: the
// breaker stays closed, and each request asks it first.
func TestFailoverBreakerIgnoresMissingObjects(t *testing.T) {
	primary, replica, hs := twoCopies(t, 5)
	for _, h := range hs {
		primary.FailHandle(h, remote.ErrNotFound)
	}
	f := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{})
	readAll(t, f, hs)
	readAll(t, f, hs)
	if got := primary.Injected(); got != 2*len(hs) {
		t.Errorf("the primary was asked %d times, want %d: missing objects opened its breaker", got, 2*len(hs))
	}
	if sk := f.Skipped(); len(sk) != 0 {
		t.Errorf("Skipped() = %+v", sk)
	}
}
