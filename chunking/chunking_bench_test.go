package chunking

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkChunker measures content-defined chunking of incompressible
// data on one core: the ceiling for backing up new recordings, since every
// byte passes through the rolling hash once. Run with -cpu 1.
func BenchmarkChunker(b *testing.B) {
	p, err := NewParams()
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<20)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)
	buf := make([]byte, p.MaxSize)
	c := New(bytes.NewReader(data), p)
	b.SetBytes(int64(len(data)))
	chunks := 0
	for b.Loop() {
		c.Reset(bytes.NewReader(data), p)
		for {
			_, err := c.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks)/(1<<20), "MiB/chunk")
}
