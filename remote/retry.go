package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/smithy-go"
)

// RetryPolicy configures Retry. Zero fields take the defaults noted.
type RetryPolicy struct {
	// MaxAttempts bounds the tries per call (default 8). With the default
	// backoff the waits add up to at most about two minutes.
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the wait before a retry, which is
	// drawn uniformly from [0, min(MaxBackoff, InitialBackoff·2^(n-1)))
	// ("full jitter", so that many agents hitting a recovering server
	// spread out). Defaults 1s and 60s.
	InitialBackoff, MaxBackoff time.Duration
	// Timeout cancels an attempt that makes no progress for this long
	// (default 60s): Load and List count each read and each listed object
	// as progress; Save gets Timeout plus its size at MinRate.
	Timeout time.Duration
	// MinRate is the slowest upload, in bytes/s, a Save attempt may take
	// before it is considered stuck (default 100 KiB/s).
	MinRate int64
	// Sleep waits between attempts; tests inject a fake. It must return
	// ctx's error when ctx ends first. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, if set, is told about each failed attempt that will be
	// retried, e.g. to warn on stderr: attempt of limit failed with err,
	// and the next one starts after wait. limit is below MaxAttempts while
	// the storage has never answered.
	OnRetry func(what string, attempt, limit int, err error, wait time.Duration)
}

const (
	defaultMaxAttempts    = 8
	defaultInitialBackoff = time.Second
	defaultMaxBackoff     = 60 * time.Second
	defaultTimeout        = 60 * time.Second
	defaultMinRate        = 100 << 10
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = defaultInitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = defaultMaxBackoff
	}
	if p.Timeout <= 0 {
		p.Timeout = defaultTimeout
	}
	if p.MinRate <= 0 {
		p.MinRate = defaultMinRate
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retry retries the calls of a backend that fail with a transient error
// (see IsTransient), and cancels attempts that hang.
type Retry struct {
	be     Backend
	policy RetryPolicy
	// answered is set once the storage has answered any request (even
	// with an error): from then on a refused connection is a passing
	// outage, worth the full retries; before, it most likely is a wrong
	// endpoint or a server that is down, and the command fails fast.
	answered atomic.Bool
}

// unreachedAttempts bounds the attempts of a call while the storage has
// never answered: a few seconds of waiting, not minutes.
const unreachedAttempts = 3

// NewRetry wraps be with policy.
func NewRetry(be Backend, policy RetryPolicy) *Retry {
	return &Retry{be: be, policy: policy.withDefaults()}
}

// Unwrap returns the wrapped backend.
func (r *Retry) Unwrap() Backend { return r.be }

// Location returns the wrapped backend's location.
func (r *Retry) Location() string { return r.be.Location() }

// Close closes the wrapped backend.
func (r *Retry) Close() error { return r.be.Close() }

// errStalled is the cause given to an attempt's context when its watchdog
// fires, so a hung request can be told apart from the caller cancelling.
var errStalled = errors.New("no progress")

// classified fixes an error's transience where the error itself cannot
// tell, e.g. an error returned by Load's callback or a stalled attempt.
type classified struct {
	err       error
	transient bool
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// do runs op until it succeeds, fails permanently or runs out of attempts.
// op gets the attempt's context and a function to call on progress, which
// restarts the watchdog that cancels a silent attempt after timeout.
func (r *Retry) do(ctx context.Context, what string, timeout time.Duration, op func(ctx context.Context, progress func()) error) error {
	for attempt := 1; ; attempt++ {
		err := r.attempt(ctx, timeout, op)
		unreachable := isUnreachable(err)
		if !unreachable {
			r.answered.Store(true)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !IsTransient(err) {
			return err
		}
		noteAttempt(ctx, err)
		limit := r.policy.MaxAttempts
		if unreachable && !r.answered.Load() {
			limit = min(unreachedAttempts, limit)
			if attempt >= limit {
				return fmt.Errorf("%s: %w; giving up after %d attempts: the storage has not answered since the start, check the endpoint and that the server runs", what, err, attempt)
			}
		}
		if attempt >= limit {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		wait := r.backoff(attempt)
		if r.policy.OnRetry != nil {
			r.policy.OnRetry(what, attempt, limit, err, wait)
		}
		if serr := r.policy.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w (while waiting to retry after: %w)", what, serr, err)
		}
	}
}

func (r *Retry) attempt(ctx context.Context, timeout time.Duration, op func(context.Context, func()) error) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(timeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	err := op(actx, func() { watchdog.Reset(timeout) })
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
		return &classified{err: fmt.Errorf("%w for %v: %w", errStalled, timeout, err), transient: true}
	}
	return err
}

func (r *Retry) backoff(attempt int) time.Duration {
	ceiling := r.policy.MaxBackoff
	if shift := attempt - 1; shift < 32 {
		ceiling = min(ceiling, r.policy.InitialBackoff<<shift)
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// Save retries saving h. Names are content hashes, so repeating a Save
// that may have succeeded is harmless.
func (r *Retry) Save(ctx context.Context, h Handle, data []byte) error {
	timeout := r.policy.Timeout + time.Duration(int64(len(data))*int64(time.Second)/r.policy.MinRate)
	return r.do(ctx, "save "+h.String(), timeout, func(ctx context.Context, _ func()) error {
		return r.be.Save(ctx, h, data)
	})
}

// Load retries loading h. fn runs again on each attempt; its own errors
// are not retried, only failures reading from the backend.
func (r *Retry) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	return r.do(ctx, "load "+h.String(), r.policy.Timeout, func(ctx context.Context, progress func()) error {
		return r.be.Load(ctx, h, offset, length, func(rd io.Reader) error {
			pr := &progressReader{rd: rd, progress: progress}
			err := fn(pr)
			if err != nil {
				// Whether to retry depends on what went wrong underneath,
				// which fn's error may not wrap.
				return &classified{err: err, transient: pr.err != nil && IsTransient(pr.err)}
			}
			return nil
		})
	})
}

// progressReader reports progress on every read and remembers the first
// error of the underlying reader.
type progressReader struct {
	rd       io.Reader
	progress func()
	err      error
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.rd.Read(b)
	if n > 0 {
		p.progress()
	}
	if err != nil && err != io.EOF && p.err == nil {
		p.err = err
	}
	return n, err
}

// Stat retries stat of h.
func (r *Retry) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	var fi ObjectInfo
	err := r.do(ctx, "stat "+h.String(), r.policy.Timeout, func(ctx context.Context, _ func()) error {
		var err error
		fi, err = r.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List retries listing t. A retry resumes after the last name delivered:
// both S3 and Local list in ascending name order. Should a backend list
// out of order, a failure after the first object is not retried, so fn
// never sees an object twice.
func (r *Retry) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	var (
		last      string
		delivered bool
		sorted    = true
	)
	return r.do(ctx, "list "+string(t), r.policy.Timeout, func(ctx context.Context, progress func()) error {
		resumeAfter, resuming := last, delivered
		err := r.be.List(ctx, t, func(fi ObjectInfo) error {
			progress()
			if resuming && fi.Name <= resumeAfter {
				return nil
			}
			if delivered && fi.Name <= last {
				sorted = false
			}
			last, delivered = fi.Name, true
			if err := fn(fi); err != nil {
				return &classified{err: err, transient: false}
			}
			return nil
		})
		if err != nil && !sorted {
			return &classified{err: err, transient: false}
		}
		return err
	})
}

// Remove retries removing h; removing a missing object succeeds, so a
// repeat is harmless.
func (r *Retry) Remove(ctx context.Context, h Handle) error {
	return r.do(ctx, "remove "+h.String(), r.policy.Timeout, func(ctx context.Context, _ func()) error {
		return r.be.Remove(ctx, h)
	})
}

// s3TransientCodes are S3 error codes worth retrying: throttling, server
// trouble, and bodies damaged in transit.
var s3TransientCodes = map[string]bool{
	"SlowDown":                  true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"RequestLimitExceeded":      true,
	"RequestThrottled":          true,
	"TooManyRequests":           true,
	"ServiceUnavailable":        true,
	"InternalError":             true,
	"RequestTimeout":            true,
	"BadDigest":                 true,
	"IncompleteBody":            true,
	"XAmzContentSHA256Mismatch": true,
}

// IsTransient reports whether err may go away when the call is repeated:
// throttling, 5xx answers (except 501), timeouts, refused or reset
// connections, bodies cut short, and faults injected by Faulty. A missing
// object, a cancelled context and 4xx answers such as bad credentials are
// permanent.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) {
		return false
	}
	var c *classified
	if errors.As(err, &c) {
		return c.transient
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var tr interface{ Transient() bool }
	if errors.As(err, &tr) {
		return tr.Transient()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && s3TransientCodes[apiErr.ErrorCode()] {
		return true
	}
	// Status 0 means no answer came; the network checks below decide.
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) && st.HTTPStatusCode() != 0 {
		code := st.HTTPStatusCode()
		return (code >= 500 && code != 501) || code == 429 || code == 408
	}
	for _, e := range []error{io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	// The server closed the connection before answering.
	var urlErr *url.Error
	return errors.As(err, &urlErr) && errors.Is(urlErr.Err, io.EOF)
}
