package remote

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// AdaptivePolicy configures an AdaptiveLimit. Zero fields take the
// defaults noted.
//
// The rule (docs/design.md, "Adaptive concurrency") is additive increase,
// multiplicative decrease, with the server's time to first byte as the
// early signal, as TCP Vegas and gradient limiters do:
//
//   - a request that succeeds while the limit was in full use raises the
//     limit by one, if its latency (when measured) was at most twice the
//     recent minimum plus Slack: the server answers as fast as when idle,
//     so it has room;
//   - a latency above that means requests queue at the server: the limit
//     falls to 3/4;
//   - throttling (503 SlowDown, 429), another 5xx, a reset connection or a
//     stalled request halves it.
//
// The answers to requests sent before the last decrease can neither
// decrease the limit again nor raise it: they tell of the load that
// decrease answered, so one burst of 503s counts once (as TCP halves its
// window once per round trip), and the successes of the requests in
// flight at a 503 do not undo its decrease. The limit never leaves [Floor, Ceiling].
type AdaptivePolicy struct {
	// Floor and Ceiling bound the requests in flight (defaults 2 and 32).
	Floor, Ceiling int
	// Initial is the limit to start from (default 10, aws-cli's number of
	// requests at once).
	Initial int
	// Slack is added to twice the minimum latency before a latency counts
	// as high (default 5ms): on a local server the latencies are a few
	// milliseconds and their jitter alone often doubles them.
	Slack time.Duration
	// Window is how long a minimum latency is remembered (default 30s):
	// past it, the minimum of the last window replaces it, so the limiter
	// follows a server whose idle latency has changed.
	Window time.Duration
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
}

const (
	defaultAdaptiveFloor   = 2
	defaultAdaptiveCeiling = 32
	defaultAdaptiveInitial = 10
	defaultAdaptiveSlack   = 5 * time.Millisecond
	defaultAdaptiveWindow  = 30 * time.Second
)

func (p AdaptivePolicy) withDefaults() AdaptivePolicy {
	if p.Floor <= 0 {
		p.Floor = defaultAdaptiveFloor
	}
	if p.Ceiling <= 0 {
		p.Ceiling = max(defaultAdaptiveCeiling, p.Floor)
	}
	p.Ceiling = max(p.Ceiling, p.Floor)
	if p.Initial <= 0 {
		p.Initial = defaultAdaptiveInitial
	}
	p.Initial = min(max(p.Initial, p.Floor), p.Ceiling)
	if p.Slack <= 0 {
		p.Slack = defaultAdaptiveSlack
	}
	if p.Window <= 0 {
		p.Window = defaultAdaptiveWindow
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// Outcome is how a request limited by an AdaptiveLimit ended.
type Outcome int

const (
	// Neutral says nothing about the server: a request that was cancelled
	// by its caller, or failed for a reason of its own (not found, access
	// denied, a damaged object).
	Neutral Outcome = iota
	// Succeeded is an answer that came.
	Succeeded
	// Overloaded is throttling, a 5xx answer, a reset connection or a
	// request that stalled.
	Overloaded
)

// AdaptiveLimit bounds the requests in flight to one server by a limit
// that follows the server's answers (see AdaptivePolicy). It is safe for
// concurrent use.
type AdaptiveLimit struct {
	p AdaptivePolicy

	mu       sync.Mutex
	limit    float64
	inflight int
	wake     chan struct{} // closed when a slot may have freed
	seq      uint64        // requests admitted so far
	dropSeq  uint64        // seq at the last decrease
	prevMin  time.Duration // minimum latency of the last window; 0: none
	curMin   time.Duration // minimum latency since winStart; 0: none
	winStart time.Time
	peak     int
	drops    int
}

// NewAdaptiveLimit returns a limit starting at p.Initial.
func NewAdaptiveLimit(p AdaptivePolicy) *AdaptiveLimit {
	p = p.withDefaults()
	return &AdaptiveLimit{p: p, limit: float64(p.Initial), peak: p.Initial, wake: make(chan struct{}), winStart: p.Now()}
}

// Acquire waits for a slot, or for ctx to end (then it returns ctx's
// error and holds nothing). release must be called exactly once when the
// request ended, with its outcome and its latency (time to first byte;
// 0 when not measured); further calls do nothing.
func (l *AdaptiveLimit) Acquire(ctx context.Context) (release func(Outcome, time.Duration), err error) {
	return l.acquire(ctx, nil)
}

// acquire is Acquire that also gives up, with errCopyDown, once giveUp
// is closed (nil: never).
func (l *AdaptiveLimit) acquire(ctx context.Context, giveUp <-chan struct{}) (release func(Outcome, time.Duration), err error) {
	for {
		select {
		case <-giveUp:
			return nil, errCopyDown
		default:
		}
		l.mu.Lock()
		if l.inflight < int(l.limit) {
			l.inflight++
			l.seq++
			t := ticket{seq: l.seq, full: l.inflight >= int(l.limit)}
			l.mu.Unlock()
			var once sync.Once
			return func(o Outcome, latency time.Duration) {
				once.Do(func() { l.release(t, o, latency) })
			}, nil
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-giveUp:
			return nil, errCopyDown
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ticket is what a release needs to know of its request: when it was
// admitted, and whether it took the last slot (only a limit in use
// grows).
type ticket struct {
	seq  uint64
	full bool
}

// release gives back a slot and applies the rule.
func (l *AdaptiveLimit) release(t ticket, o Outcome, latency time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if latency > 0 && o == Succeeded {
		l.sample(l.p.Now(), latency)
	}
	switch {
	case o == Overloaded:
		l.drop(t, 0.5)
	case o != Succeeded:
	case latency > 0 && latency > 2*l.minLatency()+l.p.Slack:
		l.drop(t, 0.75)
	case t.full && t.seq > l.dropSeq:
		// A request admitted before the last decrease took the last slot
		// of the limit that decrease cut: its success must not undo it.
		l.limit = min(l.limit+1, float64(l.p.Ceiling))
		l.peak = max(l.peak, int(l.limit))
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

// sample records a latency in the windowed minimum: the minimum over
// the current window and the one before, so that a minimum is forgotten
// between one and two windows after it was seen.
func (l *AdaptiveLimit) sample(now time.Time, latency time.Duration) {
	switch elapsed := now.Sub(l.winStart); {
	case elapsed >= 2*l.p.Window:
		l.prevMin, l.curMin, l.winStart = 0, 0, now
	case elapsed >= l.p.Window:
		l.prevMin, l.curMin, l.winStart = l.curMin, 0, now
	}
	if l.curMin == 0 || latency < l.curMin {
		l.curMin = latency
	}
}

// minLatency is the recent minimum latency (sample has set curMin).
func (l *AdaptiveLimit) minLatency() time.Duration {
	if l.prevMin > 0 {
		return min(l.prevMin, l.curMin)
	}
	return l.curMin
}

// drop multiplies the limit by factor, unless t was admitted before the
// last decrease.
func (l *AdaptiveLimit) drop(t ticket, factor float64) {
	if t.seq <= l.dropSeq {
		return
	}
	l.dropSeq = l.seq
	l.limit = max(l.limit*factor, float64(l.p.Floor))
	l.drops++
}

// AdaptiveStats describe an AdaptiveLimit at one moment.
type AdaptiveStats struct {
	Limit, InFlight int
	// Peak is the highest limit reached, Drops how often it fell.
	Peak, Drops int
}

// Stats returns the limit's current state.
func (l *AdaptiveLimit) Stats() AdaptiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return AdaptiveStats{Limit: int(l.limit), InFlight: l.inflight, Peak: l.peak, Drops: l.drops}
}

// Adaptive bounds the Loads and Saves in flight to a backend by an
// AdaptiveLimit. It goes above the retries: a request keeps its slot
// while it waits to retry, so a throttling server gets fewer requests,
// not the same number later; and the wait for a slot does not count
// against an attempt's timeout. The retries tell it about every failed
// attempt (noteAttempt), so a 503 that a retry got past still lowers the
// limit. Stat, List and Remove pass through: they are small, and a List's
// callback may start Loads, which must not wait for a slot the List holds.
//
// A Load's latency is its time to first byte, when the server has
// answered: that is the server's queueing, whatever the object's size. A
// Save's time is mostly its upload, so Saves give no latency, only
// success and overload.
type Adaptive struct {
	be    Backend
	limit *AdaptiveLimit
	now   func() time.Time
}

// NewAdaptive wraps be.
func NewAdaptive(be Backend, p AdaptivePolicy) *Adaptive {
	l := NewAdaptiveLimit(p)
	return &Adaptive{be: be, limit: l, now: l.p.Now}
}

// Unwrap returns the wrapped backend.
func (a *Adaptive) Unwrap() Backend { return a.be }

// Location returns the wrapped backend's location.
func (a *Adaptive) Location() string { return a.be.Location() }

// Close closes the wrapped backend.
func (a *Adaptive) Close() error { return a.be.Close() }

// Stats returns the state of the limit.
func (a *Adaptive) Stats() AdaptiveStats { return a.limit.Stats() }

// attemptKey carries, in a request's context, the function Retry calls
// on each failed attempt.
type attemptKey struct{}

// noteAttempt tells the Adaptive above a Retry, if any, that an attempt
// failed with the transient err.
func noteAttempt(ctx context.Context, err error) {
	if f, ok := ctx.Value(attemptKey{}).(func(error)); ok {
		f(err)
	}
}

// request is one limited request: it takes a slot and learns of failed
// attempts below it.
type request struct {
	release func(Outcome, time.Duration)
	ctx     context.Context
	failed  atomic.Bool
}

// start takes a slot. Through a Failover, a request gives up waiting
// for one once the copy is out (giveUpKey).
func (a *Adaptive) start(ctx context.Context) (*request, error) {
	giveUp, _ := ctx.Value(giveUpKey{}).(<-chan struct{})
	release, err := a.limit.acquire(ctx, giveUp)
	if err != nil {
		return nil, err
	}
	r := &request{release: release}
	r.ctx = context.WithValue(ctx, attemptKey{}, func(error) { r.failed.Store(true) })
	return r, nil
}

// end gives back the slot. A request that failed an attempt on the way
// counts as overload, and its latency (which includes the backoff) is
// not used.
func (r *request) end(ctx context.Context, err error, latency time.Duration) {
	o := Neutral
	switch {
	case r.failed.Load():
		o, latency = Overloaded, 0
	case err == nil:
		o = Succeeded
	case ctx.Err() != nil:
	case IsTransient(err):
		o = Overloaded
	}
	r.release(o, latency)
}

// Save saves data once a slot is free.
func (a *Adaptive) Save(ctx context.Context, h Handle, data []byte) error {
	r, err := a.start(ctx)
	if err != nil {
		return err
	}
	err = a.be.Save(r.ctx, h, data)
	r.end(ctx, err, 0)
	return err
}

// Load loads once a slot is free, and holds the slot while fn reads.
func (a *Adaptive) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	r, err := a.start(ctx)
	if err != nil {
		return err
	}
	begin := a.now()
	var ttfb time.Duration
	err = a.be.Load(r.ctx, h, offset, length, func(rd io.Reader) error {
		if ttfb == 0 {
			ttfb = max(a.now().Sub(begin), time.Nanosecond)
		}
		return fn(rd)
	})
	r.end(ctx, err, ttfb)
	return err
}

// Stat passes through.
func (a *Adaptive) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	return a.be.Stat(ctx, h)
}

// List passes through.
func (a *Adaptive) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	return a.be.List(ctx, t, fn)
}

// Remove passes through.
func (a *Adaptive) Remove(ctx context.Context, h Handle) error {
	return a.be.Remove(ctx, h)
}
