package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/courtbak/courtbak/crypto"
)

// FailoverOptions configure a Failover.
type FailoverOptions struct {
	// Check verifies a whole object read from a copy; a copy whose bytes
	// fail it counts as damaged. Nil checks that an object's bytes hash to
	// its name and accepts the config as it is; callers that know the
	// config's format pass repo.CheckName.
	Check func(h Handle, data []byte) error
	// Warn receives one-line notices: a copy found unreachable or
	// skipped for a while, an object read from another copy than the first.
	Warn func(string)
	// Breaker says when a failing copy is skipped, and for how long.
	Breaker BreakerPolicy
}

// Failover reads one repository from several copies: the primary first,
// then its replicas in priority order.
//
// Load falls through to the next copy when an object is missing,
// unreadable, short, or (for whole objects, and for ranges through
// LoadChecked) damaged. Stat and List fall through when a copy cannot
// answer; "not found" from a reachable copy is an answer, so Stat and List
// see the primary whenever it is up, and listings are never merged. A copy
// that cannot be connected to is skipped for the rest of the run; one that
// keeps failing (5xx answers, timeouts) or ran out of retries is skipped
// for a while by its circuit breaker (BreakerPolicy). Save and Remove go to
// the primary only.
type Failover struct {
	members []*member
	check   func(Handle, []byte) error
	warn    func(string)
	breaker BreakerPolicy
	// noticed holds the handles already reported as read elsewhere, so a
	// damaged pack gives one line, not one per blob.
	noticed sync.Map
}

type member struct {
	be Backend
	br *breaker
}

// NewFailover reads from members in order; members[0] is the primary.
// Their own retries know nothing of the failover: a failing copy is
// skipped once a call to it has failed (OpenFailover does better).
func NewFailover(members []Backend, opts FailoverOptions) *Failover {
	f := newFailover(opts)
	for _, be := range members {
		f.members = append(f.members, &member{be: be, br: newBreaker(f.breaker)})
	}
	return f
}

func newFailover(opts FailoverOptions) *Failover {
	f := &Failover{check: opts.Check, warn: opts.Warn, breaker: opts.Breaker.withDefaults()}
	if f.check == nil {
		f.check = checkHashName
	}
	if f.warn == nil {
		f.warn = func(string) {}
	}
	return f
}

// OpenFailover opens urls (the primary first, then the replicas) as one
// Failover. A copy's retries stop as soon as a connection to it cannot be
// made, or its breaker opens: a city whose storage is down or answers 5xx
// must not wait minutes per request before the replica is asked.
func OpenFailover(ctx context.Context, urls []string, opts Options, fopts FailoverOptions) (*Failover, error) {
	return openFailover(len(urls), func(i int, p RetryPolicy) (Backend, error) {
		o := opts
		o.RetryPolicy = p
		return Open(ctx, urls[i], o)
	}, opts.RetryPolicy, fopts)
}

// openFailover builds a Failover of n copies, opening copy i with open
// and a retry policy that reports to the copy's breaker.
func openFailover(n int, open func(i int, p RetryPolicy) (Backend, error), p RetryPolicy, fopts FailoverOptions) (*Failover, error) {
	f := newFailover(fopts)
	for i := range n {
		m := &member{br: newBreaker(f.breaker)}
		be, err := open(i, f.retryPolicy(m, p))
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		m.be = be
		f.members = append(f.members, m)
	}
	return f, nil
}

// errCopyDown ends the retries of a copy that is out: unreachable, or its
// breaker open.
var errCopyDown = errors.New("copy is out of the rotation")

// retryPolicy makes p report each failed attempt at m to m's breaker, and
// give up on m as soon as m is out, including calls already waiting to
// retry.
func (f *Failover) retryPolicy(m *member, p RetryPolicy) RetryPolicy {
	onRetry, sleep := p.OnRetry, p.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	p.OnRetry = func(what string, attempt, limit int, err error, wait time.Duration) {
		if isUnreachable(err) {
			f.markDead(m, err)
			return
		}
		f.attemptFailed(m, err, false)
		if in, _ := m.br.closed(); in && onRetry != nil {
			onRetry(what, attempt, limit, err, wait)
		}
	}
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		if lastResort(ctx) {
			return sleep(ctx, d)
		}
		in, tripped := m.br.closed()
		if !in {
			return errCopyDown
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-tripped:
				cancel()
			case <-sctx.Done():
			}
		}()
		err := sleep(sctx, d)
		if in, _ := m.br.closed(); ctx.Err() == nil && !in {
			return errCopyDown
		}
		return err
	}
	return p
}

// markDead takes m out of the rotation for the rest of the run: a copy
// that cannot be connected to is not probed again, since a silently
// dropped connection costs a connect timeout each time.
func (f *Failover) markDead(m *member, err error) {
	if !m.br.remove(err) {
		return
	}
	// Describe says what is wrong without the SDK's preamble.
	f.warn(fmt.Sprintf("%s is unreachable (%s); reading from the next copy", m.be.Location(), Describe(err)))
}

// attemptFailed tells m's breaker about a failed attempt, and says so when
// that takes m out for a while.
func (f *Failover) attemptFailed(m *member, err error, force bool) {
	opened, cooldown := m.br.failed(err, force)
	if !opened {
		return
	}
	what := "failed after its retries"
	if !force {
		what = fmt.Sprintf("failed %d times in a row", f.breaker.Failures)
	}
	f.warn(fmt.Sprintf("%s %s (%v); reading from the next copy, trying it again in %s",
		m.be.Location(), what, Describe(err), cooldown.Round(time.Second)))
}

// admit says whether a call may go to m now.
func (f *Failover) admit(m *member) bool { return m.br.admit() }

// lastResortKey marks the context of a call to a copy whose breaker is
// open, made because no other copy could serve: its retries run in full.
type lastResortKey struct{}

func lastResort(ctx context.Context) bool { return ctx.Value(lastResortKey{}) != nil }

// copies yields the copies to ask, in order, with the context to ask each
// under: first those in the rotation; then, should none of them have
// served (the caller did not stop), the copies whose breaker is open by
// now, as a last resort with their full retries, so that a blip at every
// copy at once costs waiting, not the restore. skip is told about each
// copy passed over in the first round.
func (f *Failover) copies(ctx context.Context, skip func(*member)) iter.Seq2[context.Context, *member] {
	return func(yield func(context.Context, *member) bool) {
		for _, m := range f.members {
			if !m.br.admit() {
				skip(m)
				continue
			}
			if !yield(whileIn(ctx, m), m) {
				return
			}
		}
		rctx := context.WithValue(ctx, lastResortKey{}, true)
		for _, m := range f.members {
			if ctx.Err() != nil {
				return
			}
			if m.br.resting() && !yield(rctx, m) {
				return
			}
		}
	}
}

// giveUpKey carries, in the context of a call to a copy admitted while
// its breaker was closed, the channel closed once the breaker leaves the
// closed state. A call still waiting then for a slot of the copy's
// adaptive limit gives up (errCopyDown) and goes on to the next copy:
// otherwise each call queued behind a stalled copy's few slots would
// cost a stalled attempt of its own, a few at a time.
type giveUpKey struct{}

// whileIn is ctx for a call to m, which gives up waiting for a slot of
// m once m is out. A probe or a last resort (m already out) waits.
func whileIn(ctx context.Context, m *member) context.Context {
	if in, tripped := m.br.closed(); in {
		return context.WithValue(ctx, giveUpKey{}, tripped)
	}
	return ctx
}

// settle records the outcome of a call to m: a copy that answered (even
// "not found" or damaged bytes) is available; one that could not be
// reached is out for the rest of the run; one whose call failed with a
// transient error (after its retries, where it has them) is skipped for a
// while.
func (f *Failover) settle(ctx context.Context, m *member, err error) {
	switch {
	case err == nil:
	case ctx.Err() != nil:
		m.br.abandon()
		return
	case isUnreachable(err):
		f.markDead(m, err)
		return
	case errors.Is(err, errCopyDown):
		// Its breaker opened while the call waited to retry.
		return
	case IsTransient(err):
		f.attemptFailed(m, err, true)
		return
	}
	if m.br.answered(lastResort(ctx)) {
		f.warn(fmt.Sprintf("%s answers again; reading from it", m.be.Location()))
	}
}

// checkHashName is the default Check.
func checkHashName(h Handle, data []byte) error {
	if h.Type == Config {
		return nil
	}
	sum := crypto.Hash(data)
	if got := hex.EncodeToString(sum[:]); got != h.Name {
		return fmt.Errorf("%s: content hashes to %s", h, got[:16])
	}
	return nil
}

// copyError is why one copy could not serve a call.
type copyError struct {
	location string
	kind     string // "missing", "damaged", "unreadable", "unreachable"
	err      error
}

func classify(location string, err error, damaged bool) copyError {
	kind := "unreadable"
	switch {
	case damaged:
		kind = "damaged"
	case errors.Is(err, ErrNotFound):
		kind = "missing"
	case isUnreachable(err):
		kind = "unreachable"
	}
	return copyError{location: location, kind: kind, err: err}
}

// failoverError is returned when no copy could serve a call. It wraps the
// error of every copy, so errors.Is finds ErrNotFound when a copy answered
// that.
type failoverError struct {
	what   string // "load data/ab12…"
	copies []copyError
}

func (e *failoverError) Error() string {
	parts := make([]string, len(e.copies))
	for i, c := range e.copies {
		parts[i] = fmt.Sprintf("%s at %s: %v", c.kind, c.location, c.err)
	}
	return fmt.Sprintf("%s: no copy could serve it: %s", e.what, strings.Join(parts, "; "))
}

func (e *failoverError) Unwrap() []error {
	errs := make([]error, len(e.copies))
	for i, c := range e.copies {
		errs[i] = c.err
	}
	return errs
}

// outError is why m was skipped.
func outError(m *member) copyError {
	why := m.br.status().why
	if why == nil {
		why = errCopyDown
	}
	return copyError{location: m.be.Location(), kind: "unavailable", err: why}
}

// Skipped describes a copy that was out of the rotation during the run.
type Skipped struct {
	Location string
	// Why is the failure that took it out (last).
	Why error
	// Requests is how many requests went to the next copy instead.
	Requests int
	// Out says whether it is still out.
	Out bool
}

// Skipped lists the copies that were taken out of the rotation at some
// point of the run, in priority order, for a command's summary.
func (f *Failover) Skipped() []Skipped {
	var out []Skipped
	for _, m := range f.members {
		st := m.br.status()
		if st.opened == 0 {
			continue
		}
		out = append(out, Skipped{Location: m.be.Location(), Why: st.why, Requests: st.skipped, Out: st.out})
	}
	return out
}

// Location is the primary's.
func (f *Failover) Location() string { return f.members[0].be.Location() }

// Save stores at the primary only: replicas are written by replicate.
func (f *Failover) Save(ctx context.Context, h Handle, data []byte) error {
	return f.members[0].be.Save(ctx, h, data)
}

// Remove removes at the primary only.
func (f *Failover) Remove(ctx context.Context, h Handle) error {
	return f.members[0].be.Remove(ctx, h)
}

// Close closes every copy.
func (f *Failover) Close() error {
	var errs []error
	for _, m := range f.members {
		if m.be != nil {
			errs = append(errs, m.be.Close())
		}
	}
	return errors.Join(errs...)
}

// Load reads h from the first copy that serves it. Whole objects (offset
// and length 0) are checked before fn sees them; fn is called once, with
// the bytes in memory.
func (f *Failover) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	var check func([]byte) error
	if offset == 0 && length == 0 {
		check = func(b []byte) error { return f.check(h, b) }
	}
	data, err := f.LoadChecked(ctx, h, offset, length, check)
	if err != nil {
		return err
	}
	return fn(bytes.NewReader(data))
}

// LoadChecked reads length bytes of h at offset (0: to the end) from the
// first copy whose bytes arrive whole and pass check (nil: any). The
// repository uses it for blobs inside packs, whose integrity only their
// authentication can tell.
func (f *Failover) LoadChecked(ctx context.Context, h Handle, offset, length int64, check func([]byte) error) ([]byte, error) {
	var data []byte
	err := f.read(ctx, h, func(cctx context.Context, m *member) (damaged bool, err error) {
		if data, err = ReadRange(cctx, m.be, h, offset, length); err != nil {
			return false, err
		}
		if check != nil {
			err = check(data)
		}
		return err != nil, err
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// readInto reads into buf from the first copy that delivers the bytes
// whole (ReadRangeInto, ReadObjectInto), straight from its response: a
// copy that fails part way leaves buf to be overwritten by the next.
func (f *Failover) readInto(ctx context.Context, h Handle, offset int64, buf []byte, whole bool) ([]byte, error) {
	var got []byte
	err := f.read(ctx, h, func(cctx context.Context, m *member) (bool, error) {
		var err error
		got, err = loadInto(cctx, m.be, h, offset, buf, whole)
		return false, err
	})
	return got, err
}

// read calls load with each copy in turn until one succeeds; load reports
// whether a failure was damage (the bytes arrived but failed a check)
// rather than the copy's.
func (f *Failover) read(ctx context.Context, h Handle, load func(context.Context, *member) (damaged bool, err error)) error {
	var fails []copyError
	for cctx, m := range f.copies(ctx, func(m *member) { fails = append(fails, outError(m)) }) {
		damaged, err := load(cctx, m)
		if damaged {
			// The copy answered; its bytes failed the check.
			f.settle(cctx, m, nil)
		} else {
			f.settle(cctx, m, err)
		}
		if err == nil {
			f.noticeFallback(h, m, fails)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		c := classify(m.be.Location(), err, damaged || errors.Is(err, errShort))
		if in, _ := m.br.closed(); !in && !damaged {
			// Taken out by this failure: its notice named the copy.
			c.kind = "unavailable"
		}
		fails = append(fails, c)
	}
	return &failoverError{what: "load " + h.String(), copies: fails}
}

// ReadSize is the largest read size any copy prefers (remote.ReadSize):
// reads go to whichever copy serves them.
func (f *Failover) ReadSize() int64 {
	var n int64
	for _, m := range f.members {
		n = max(n, ReadSize(m.be))
	}
	return n
}

// noticeFallback says, once per object, that h was read from m because
// the copies before it failed (copies already known to be down were
// announced when found so, and are not repeated).
func (f *Failover) noticeFallback(h Handle, m *member, fails []copyError) {
	var parts []string
	for _, c := range fails {
		if c.kind != "unreachable" && c.kind != "unavailable" {
			parts = append(parts, c.kind+" at "+c.location)
		}
	}
	if len(parts) == 0 {
		return
	}
	if _, seen := f.noticed.LoadOrStore(h, struct{}{}); seen {
		return
	}
	f.warn(fmt.Sprintf("%s %s, read from %s", h, strings.Join(parts, ", "), m.be.Location()))
}

// Stat asks the first copy that can answer. A copy without a config, when
// a later copy has one, holds no repository (a replaced disk, an emptied
// bucket): it is taken out of the rotation like an unreachable one, since
// its empty listings would otherwise hide the snapshots.
func (f *Failover) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	var (
		fails    []copyError
		empty    []*member
		notFound error
	)
	for cctx, m := range f.copies(ctx, func(m *member) { fails = append(fails, outError(m)) }) {
		fi, err := m.be.Stat(cctx, h)
		f.settle(cctx, m, err)
		if h.Type == Config && errors.Is(err, ErrNotFound) {
			empty = append(empty, m)
			notFound = err
			fails = append(fails, classify(m.be.Location(), err, false))
			continue
		}
		if err == nil && h.Type == Config {
			for _, e := range empty {
				if e.br.remove(notFound) {
					f.warn(fmt.Sprintf("%s holds no repository; reading from the next copy", e.be.Location()))
				}
			}
		}
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrNotFound) {
			return fi, err
		}
		fails = append(fails, classify(m.be.Location(), err, false))
	}
	if notFound != nil && len(empty) == len(f.members) {
		return ObjectInfo{}, notFound
	}
	return ObjectInfo{}, &failoverError{what: "stat " + h.String(), copies: fails}
}

// List lists t at the first copy that can answer. Should a copy fail
// part-way, the next one continues, skipping the names already delivered.
func (f *Failover) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	var (
		fails     []copyError
		delivered = map[string]bool{}
		fnErr     error
	)
	for cctx, m := range f.copies(ctx, func(m *member) { fails = append(fails, outError(m)) }) {
		err := m.be.List(cctx, t, func(fi ObjectInfo) error {
			if delivered[fi.Name] {
				return nil
			}
			delivered[fi.Name] = true
			fnErr = fn(fi)
			return fnErr
		})
		if fnErr != nil {
			// The caller stopped the listing: no verdict on the copy,
			// but a probe must not stay open.
			f.settle(cctx, m, nil)
			return err
		}
		f.settle(cctx, m, err)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrNotFound) {
			return err
		}
		if in, _ := m.br.closed(); in {
			f.warn(fmt.Sprintf("list %s failed at %s, listing the next copy: %v", t, m.be.Location(), err))
		}
		fails = append(fails, classify(m.be.Location(), err, false))
	}
	return &failoverError{what: "list " + string(t), copies: fails}
}

// ListAllCopies lists t at every reachable copy, delivering each name
// once, the first copy's first. Unlike List it merges: the repository
// uses it only where a copy lacking an object must not hide it (a
// primary whose key files were all lost). A copy that cannot answer is
// skipped; the call fails only when none answers.
func (f *Failover) ListAllCopies(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	var (
		fails     []copyError
		answered  bool
		delivered = map[string]bool{}
	)
	for _, m := range f.members {
		if !f.admit(m) {
			fails = append(fails, outError(m))
			continue
		}
		var fnErr error
		err := m.be.List(ctx, t, func(fi ObjectInfo) error {
			if delivered[fi.Name] {
				return nil
			}
			delivered[fi.Name] = true
			fnErr = fn(fi)
			return fnErr
		})
		if fnErr != nil || ctx.Err() != nil {
			// No verdict on the copy, but a probe must not stay open.
			f.settle(ctx, m, nil)
			return err
		}
		f.settle(ctx, m, err)
		if err == nil || errors.Is(err, ErrNotFound) {
			answered = true
			continue
		}
		fails = append(fails, classify(m.be.Location(), err, false))
	}
	if !answered {
		return &failoverError{what: "list " + string(t), copies: fails}
	}
	return nil
}
