// Package chunking splits streams into content-defined chunks with a
// Rabin fingerprint over a secret, per-repository polynomial
// (github.com/restic/chunker). The same bytes always give the same chunk
// boundaries in one repository, so a recording that is copied, moved or
// appended to deduplicates against what is already stored.
package chunking

import (
	"fmt"
	"io"
	"math/bits"

	"github.com/restic/chunker"
)

// Params are a repository's chunking parameters, stored in its encrypted config.
type Params struct {
	Polynomial  uint64 `json:"polynomial"`
	MinSize     uint   `json:"min_size"`
	MaxSize     uint   `json:"max_size"`
	AverageBits int    `json:"average_bits"`
}

// Default sizes: 512 KiB minimum, 1 MiB average, 8 MiB maximum. A large
// average keeps the index small (petabytes of video); the minimum keeps
// per-blob overhead negligible.
const (
	DefaultMinSize     = 512 << 10
	DefaultMaxSize     = 8 << 20
	DefaultAverageBits = 20
)

// NewParams draws a random irreducible polynomial and uses the default sizes.
func NewParams() (Params, error) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Params{}, fmt.Errorf("draw chunker polynomial: %w", err)
	}
	return Params{Polynomial: uint64(pol), MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: DefaultAverageBits}, nil
}

// Validate checks parameters read from a repository config.
func (p Params) Validate() error {
	pol := chunker.Pol(p.Polynomial)
	if pol.Deg() != 53 || !pol.Irreducible() {
		return fmt.Errorf("chunker polynomial %#x is not an irreducible polynomial of degree 53", p.Polynomial)
	}
	if p.MinSize < 64 || p.MaxSize <= p.MinSize || p.MaxSize > 64<<20 {
		return fmt.Errorf("chunk sizes out of range (min %d, max %d)", p.MinSize, p.MaxSize)
	}
	if p.AverageBits < 10 || p.AverageBits > 24 {
		return fmt.Errorf("chunk average bits %d out of range", p.AverageBits)
	}
	return nil
}

// Chunker yields the chunks of one stream.
type Chunker struct {
	c *chunker.Chunker
}

// New returns a chunker over rd. Reuse it with Reset to avoid reallocating
// its tables and buffer.
func New(rd io.Reader, p Params) *Chunker {
	c := chunker.NewWithBoundaries(rd, chunker.Pol(p.Polynomial), p.MinSize, p.MaxSize)
	c.SetAverageBits(p.AverageBits)
	return &Chunker{c: c}
}

// Reset starts over on a new stream with the same parameters.
func (c *Chunker) Reset(rd io.Reader, p Params) {
	c.c.ResetWithBoundaries(rd, chunker.Pol(p.Polynomial), p.MinSize, p.MaxSize)
	c.c.SetAverageBits(p.AverageBits)
}

// Next returns the next chunk, stored in buf when it is large enough
// (MaxSize). It returns io.EOF after the last chunk.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	ch, err := c.c.Next(buf)
	if err != nil {
		return nil, err
	}
	return ch.Data, nil
}

// Bounds of an average chunk size chosen at init: the format's average_bits
// range is 10–24, and the maximum (8 times the average, at most 64 MiB)
// must stay within the format's 64 MiB.
const (
	MinAverageSize = 1 << 10
	MaxAverageSize = 16 << 20
)

// WithAverage returns p with chunk sizes scaled to an average of avg bytes,
// a power of two between MinAverageSize and MaxAverageSize: minimum half
// the average, maximum eight times it (at most 64 MiB), as the defaults.
func (p Params) WithAverage(avg uint64) (Params, error) {
	if avg < MinAverageSize || avg > MaxAverageSize || avg&(avg-1) != 0 {
		return p, fmt.Errorf("average chunk size %d is not a power of two between 1 KiB and 16 MiB (for example 1MiB, the default, or 4MiB)", avg)
	}
	p.AverageBits = bits.Len64(avg) - 1
	p.MinSize = uint(avg / 2)
	p.MaxSize = uint(min(avg*8, 64<<20))
	return p, nil
}
