package remote

import (
	"sync"
	"time"
)

// BreakerPolicy says when a Failover stops asking a failing copy and when
// it tries that copy again. Zero fields take the defaults noted.
//
// A copy whose server answers 5xx while it shuts down, or times out, would
// otherwise cost every request its full retries (up to about two minutes
// with the default RetryPolicy) before the next copy is asked. The breaker
// opens after a few failures in a row, counted over all the requests to the
// copy; while it is open, requests go straight to the next copy and the
// retries already waiting on it give up. After the cooldown, one request
// probes the copy (half-open): if it succeeds, the copy is used again; if
// it fails, the breaker opens again for twice as long.
type BreakerPolicy struct {
	// Failures is how many failed attempts in a row (transient errors:
	// 5xx answers, throttling, timeouts, broken connections) open the
	// breaker (default 3). A request that fails after all its retries
	// opens it at once.
	Failures int
	// Cooldown is how long an open breaker keeps the copy out before one
	// request probes it (default 15s). Each failed probe doubles it, up to
	// MaxCooldown (default 5 minutes).
	Cooldown, MaxCooldown time.Duration
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
}

const (
	defaultBreakerFailures    = 3
	defaultBreakerCooldown    = 15 * time.Second
	defaultBreakerMaxCooldown = 5 * time.Minute
)

func (p BreakerPolicy) withDefaults() BreakerPolicy {
	if p.Failures <= 0 {
		p.Failures = defaultBreakerFailures
	}
	if p.Cooldown <= 0 {
		p.Cooldown = defaultBreakerCooldown
	}
	if p.MaxCooldown < p.Cooldown {
		p.MaxCooldown = max(defaultBreakerMaxCooldown, p.Cooldown)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

type breakerState int

const (
	breakerClosed  breakerState = iota // requests go to the copy
	breakerOpen                        // requests skip the copy until the cooldown ends
	breakerProbing                     // one request is probing the copy; the others skip it
	breakerGone                        // out for the rest of the run (unreachable, no repository)
)

// breaker is one copy's circuit breaker; safe for concurrent use.
type breaker struct {
	p BreakerPolicy

	mu       sync.Mutex
	state    breakerState
	fails    int       // failed attempts in a row while closed
	until    time.Time // end of the cooldown while open
	cooldown time.Duration
	// tripped is closed when the breaker leaves the closed state, so that
	// retries waiting on the copy give up; a fresh one while closed.
	tripped chan struct{}
	why     error // the failure that opened it last
	skipped int   // requests sent past the copy
	opened  int   // times it opened
}

func newBreaker(p BreakerPolicy) *breaker {
	p = p.withDefaults()
	return &breaker{p: p, cooldown: p.Cooldown, tripped: make(chan struct{})}
}

// admit says whether a request may go to the copy: always while closed;
// while open, not until the cooldown has passed, and then only this one
// request, as a probe, until its outcome is known. A request kept out is
// counted as skipped.
func (b *breaker) admit() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		return true
	case breakerOpen:
		if !b.p.Now().Before(b.until) {
			b.state = breakerProbing
			return true
		}
	}
	b.skipped++
	return false
}

// resting reports whether the copy is out for a while (not for good).
func (b *breaker) resting() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == breakerOpen || b.state == breakerProbing
}

// closed reports whether requests go to the copy, and returns the channel
// that is closed once they stop doing so.
func (b *breaker) closed() (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == breakerClosed, b.tripped
}

// answered records a request the copy answered: it worked, or failed for a
// reason that is no fault of the copy's availability (a missing or damaged
// object). It ends a probe and resets the count of failures; it reports
// whether the copy was out until now. A request made as a last resort
// (every copy out) closes an open breaker too.
func (b *breaker) answered(lastResort bool) (recovered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == breakerClosed:
		b.fails = 0
	case b.state == breakerProbing, b.state == breakerOpen && lastResort:
		b.state, b.fails, b.cooldown = breakerClosed, 0, b.p.Cooldown
		b.tripped = make(chan struct{})
		return true
	}
	// Open: a request started before the breaker opened says little about
	// the copy now; the probe decides.
	return false
}

// failed records a failed attempt; force opens the breaker even below the
// threshold (a request that ran out of retries). It reports whether this
// opened a closed breaker, and for how long.
func (b *breaker) failed(err error, force bool) (opened bool, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		b.fails++
		if b.fails < b.p.Failures && !force {
			return false, 0
		}
	case breakerProbing:
		b.cooldown = min(2*b.cooldown, b.p.MaxCooldown)
	default:
		// Already out: failures of requests started earlier.
		return false, 0
	}
	wasClosed := b.state == breakerClosed
	b.state, b.fails, b.why = breakerOpen, 0, err
	b.until = b.p.Now().Add(b.cooldown)
	if wasClosed {
		b.opened++
		close(b.tripped)
	}
	return wasClosed, b.cooldown
}

// abandon ends a probe whose request was cancelled before the copy
// answered: the next request probes again.
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == breakerProbing {
		b.state = breakerOpen
	}
}

// remove takes the copy out for the rest of the run; it reports whether it
// was in until now (false if already removed).
func (b *breaker) remove(err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == breakerGone {
		return false
	}
	if b.state == breakerClosed {
		close(b.tripped)
	}
	b.state, b.why = breakerGone, err
	b.opened++
	return true
}

// breakerStatus is what a breaker tells a summary.
type breakerStatus struct {
	out     bool  // out now
	why     error // the failure that took it out last
	skipped int   // requests sent past it
	opened  int   // times it was taken out
}

func (b *breaker) status() breakerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return breakerStatus{out: b.state != breakerClosed, why: b.why, skipped: b.skipped, opened: b.opened}
}
