package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	// Warn receives one-line notices: a copy found unreachable, an object
	// read from another copy than the first.
	Warn func(string)
}

// Failover reads one repository from several copies: the primary first,
// then its replicas in priority order.
//
// Load falls through to the next copy when an object is missing,
// unreadable, short, or (for whole objects, and for ranges through
// LoadChecked) damaged. Stat and List fall through when a copy cannot
// answer; "not found" from a reachable copy is an answer, so Stat and List
// see the primary whenever it is up, and listings are never merged. A copy
// that cannot be connected to, or that ran out of retries, is skipped for
// the rest of the run. Save and Remove go to the primary only.
type Failover struct {
	members []*member
	check   func(Handle, []byte) error
	warn    func(string)
	// noticed holds the handles already reported as read elsewhere, so a
	// damaged pack gives one line, not one per blob.
	noticed sync.Map
}

type member struct {
	be      Backend
	once    sync.Once
	dead    chan struct{} // closed when the copy is found unreachable
	deadErr error         // why; set before dead is closed
}

func (m *member) isDead() bool {
	select {
	case <-m.dead:
		return true
	default:
		return false
	}
}

// NewFailover reads from members in order; members[0] is the primary.
func NewFailover(members []Backend, opts FailoverOptions) *Failover {
	f := newFailover(opts)
	for _, be := range members {
		f.members = append(f.members, &member{be: be, dead: make(chan struct{})})
	}
	return f
}

func newFailover(opts FailoverOptions) *Failover {
	f := &Failover{check: opts.Check, warn: opts.Warn}
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
// made: a city whose storage is down must not wait minutes per request
// before the replica is asked.
func OpenFailover(ctx context.Context, urls []string, opts Options, fopts FailoverOptions) (*Failover, error) {
	f := newFailover(fopts)
	for _, u := range urls {
		m := &member{dead: make(chan struct{})}
		o := opts
		o.RetryPolicy = f.retryPolicy(m, opts.RetryPolicy)
		be, err := Open(ctx, u, o)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		m.be = be
		f.members = append(f.members, m)
	}
	return f, nil
}

// errCopyDown ends the retries of a copy found unreachable.
var errCopyDown = errors.New("copy is unreachable")

// retryPolicy makes p give up on m once m is known to be unreachable,
// including calls already waiting to retry.
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
		if onRetry != nil {
			onRetry(what, attempt, limit, err, wait)
		}
	}
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		if m.isDead() {
			return errCopyDown
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-m.dead:
				cancel()
			case <-sctx.Done():
			}
		}()
		err := sleep(sctx, d)
		if ctx.Err() == nil && m.isDead() {
			return errCopyDown
		}
		return err
	}
	return p
}

// markDead takes m out of the rotation for the rest of the run.
func (f *Failover) markDead(m *member, err error) {
	m.once.Do(func() {
		m.deadErr = err
		close(m.dead)
		// Describe says what is wrong without the SDK's preamble.
		f.warn(fmt.Sprintf("%s is unreachable (%s); reading from the next copy", m.be.Location(), Describe(err)))
	})
}

// failed records why a copy could not serve a call, and marks it dead when
// it could not be reached at all or its retries ran out.
func (f *Failover) failed(m *member, err error) {
	if isUnreachable(err) || IsTransient(err) {
		f.markDead(m, err)
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

func deadError(m *member) copyError {
	return copyError{location: m.be.Location(), kind: "unreachable", err: m.deadErr}
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
	var fails []copyError
	for _, m := range f.members {
		if m.isDead() {
			fails = append(fails, deadError(m))
			continue
		}
		data, err := ReadRange(ctx, m.be, h, offset, length)
		damaged := false
		if err == nil && check != nil {
			err = check(data)
			damaged = err != nil
		}
		if err == nil {
			f.noticeFallback(h, m, fails)
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if !damaged {
			f.failed(m, err)
		}
		fails = append(fails, classify(m.be.Location(), err, damaged || errors.Is(err, errShort)))
	}
	return nil, &failoverError{what: "load " + h.String(), copies: fails}
}

// noticeFallback says, once per object, that h was read from m because
// the copies before it failed (copies already known to be down were
// announced when found so, and are not repeated).
func (f *Failover) noticeFallback(h Handle, m *member, fails []copyError) {
	var parts []string
	for _, c := range fails {
		if c.kind != "unreachable" {
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
	for _, m := range f.members {
		if m.isDead() {
			fails = append(fails, deadError(m))
			continue
		}
		fi, err := m.be.Stat(ctx, h)
		if h.Type == Config && errors.Is(err, ErrNotFound) {
			empty = append(empty, m)
			notFound = err
			fails = append(fails, classify(m.be.Location(), err, false))
			continue
		}
		if err == nil && h.Type == Config {
			for _, e := range empty {
				e.once.Do(func() {
					e.deadErr = notFound
					close(e.dead)
					f.warn(fmt.Sprintf("%s holds no repository; reading from the next copy", e.be.Location()))
				})
			}
		}
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrNotFound) {
			return fi, err
		}
		f.failed(m, err)
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
	for _, m := range f.members {
		if m.isDead() {
			fails = append(fails, deadError(m))
			continue
		}
		err := m.be.List(ctx, t, func(fi ObjectInfo) error {
			if delivered[fi.Name] {
				return nil
			}
			delivered[fi.Name] = true
			fnErr = fn(fi)
			return fnErr
		})
		if err == nil || fnErr != nil || ctx.Err() != nil || errors.Is(err, ErrNotFound) {
			return err
		}
		f.failed(m, err)
		if !m.isDead() {
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
		if m.isDead() {
			fails = append(fails, deadError(m))
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
		switch {
		case fnErr != nil || ctx.Err() != nil:
			return err
		case err == nil || errors.Is(err, ErrNotFound):
			answered = true
		default:
			f.failed(m, err)
			fails = append(fails, classify(m.be.Location(), err, false))
		}
	}
	if !answered {
		return &failoverError{what: "list " + string(t), copies: fails}
	}
	return nil
}
