package restorer

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// holeWriter writes what is not zeros and skips whole zero blocks, at any
// alignment of the writes.
func TestHoleWriterSkipsOnlyWholeZeroBlocks(t *testing.T) {
	data := make([]byte, 64*holeBlock+100)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		if (i/holeBlock)%3 == 0 || i%holeBlock == 7 && i/holeBlock == 10 {
			data[i] = byte(rnd.Uint32() | 1)
		}
	}
	for _, piece := range []int{1, 1000, holeBlock, 3*holeBlock + 5, len(data)} {
		out := make([]byte, len(data))
		var off int64
		skipped := int64(0)
		hw := &holeWriter{
			w: writerFunc(func(p []byte) (int, error) {
				copy(out[off:], p)
				off += int64(len(p))
				return len(p), nil
			}),
			skip: func(n int64) error { off += n; skipped += n; return nil },
		}
		for p := data; len(p) > 0; {
			n := min(piece, len(p))
			if m, err := hw.Write(p[:n]); err != nil || m != n {
				t.Fatalf("Write = %d, %v", m, err)
			}
			p = p[n:]
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("pieces of %d: content differs", piece)
		}
		if piece >= holeBlock && (skipped == 0 || skipped%holeBlock != 0) {
			t.Errorf("pieces of %d: %d bytes skipped", piece, skipped)
		}
		if skipped > 0 != hw.holes {
			t.Errorf("holes %v after skipping %d", hw.holes, skipped)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The cost of looking for zeros in a recording: random data in 4 MiB
// writes, where the first bytes of each block already differ from zero.
func BenchmarkHoleWriterRandom(b *testing.B) {
	data := make([]byte, 4<<20)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	b.SetBytes(int64(len(data)))
	hw := &holeWriter{w: io.Discard, skip: func(int64) error { return nil }}
	for b.Loop() {
		_, _ = hw.Write(data)
	}
}
