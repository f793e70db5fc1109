package remote

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/time/rate"
)

// Limiter caps the bandwidth of a backend in bytes per second, separately
// for uploads and downloads.
//
// Downloads are paced as the caller reads. Save hands over a whole object,
// so an upload waits until the budget covers it and then goes at link
// speed: the average rate holds, single packs still burst.
type Limiter struct {
	be       Backend
	up, down *rate.Limiter // nil: unlimited
}

// NewLimiter wraps be; a limit of 0 (or less) leaves that direction free.
func NewLimiter(be Backend, uploadKiB, downloadKiB int) *Limiter {
	return &Limiter{be: be, up: newRateLimiter(uploadKiB), down: newRateLimiter(downloadKiB)}
}

// newRateLimiter allows a burst of a quarter second, so waits stay short
// and pacing smooth.
func newRateLimiter(kib int) *rate.Limiter {
	if kib <= 0 {
		return nil
	}
	perSec := kib << 10
	return rate.NewLimiter(rate.Limit(perSec), max(perSec/4, 1024))
}

// wait takes n bytes from l, in pieces no larger than its burst.
func wait(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		piece := min(n, l.Burst())
		if err := l.WaitN(ctx, piece); err != nil {
			return err
		}
		n -= piece
	}
	return nil
}

// Unwrap returns the wrapped backend.
func (l *Limiter) Unwrap() Backend { return l.be }

// Location returns the wrapped backend's location.
func (l *Limiter) Location() string { return l.be.Location() }

// Close closes the wrapped backend.
func (l *Limiter) Close() error { return l.be.Close() }

// Save waits for upload budget for data, then saves it.
func (l *Limiter) Save(ctx context.Context, h Handle, data []byte) error {
	if l.up != nil {
		if err := wait(ctx, l.up, len(data)); err != nil {
			return fmt.Errorf("save %s: waiting for upload bandwidth: %w", h, err)
		}
	}
	return l.be.Save(ctx, h, data)
}

// Load paces the reads of fn to the download limit.
func (l *Limiter) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	if l.down == nil {
		return l.be.Load(ctx, h, offset, length, fn)
	}
	return l.be.Load(ctx, h, offset, length, func(rd io.Reader) error {
		return fn(&limitedReader{ctx: ctx, rd: rd, l: l.down})
	})
}

type limitedReader struct {
	ctx context.Context
	rd  io.Reader
	l   *rate.Limiter
}

func (r *limitedReader) Read(b []byte) (int, error) {
	if len(b) > r.l.Burst() {
		b = b[:r.l.Burst()]
	}
	n, err := r.rd.Read(b)
	if n > 0 {
		if werr := r.l.WaitN(r.ctx, n); werr != nil {
			return n, fmt.Errorf("waiting for download bandwidth: %w", werr)
		}
	}
	return n, err
}

// Stat passes through; it moves no data worth counting.
func (l *Limiter) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	return l.be.Stat(ctx, h)
}

// List passes through; it moves no data worth counting.
func (l *Limiter) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	return l.be.List(ctx, t, fn)
}

// Remove passes through.
func (l *Limiter) Remove(ctx context.Context, h Handle) error {
	return l.be.Remove(ctx, h)
}
