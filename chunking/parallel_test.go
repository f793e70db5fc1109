package chunking

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/restic/chunker"
)

func testParams(t *testing.T) Params {
	t.Helper()
	p, err := NewParams()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sequentialCuts(data []byte, p Params) []int {
	ch := New(bytes.NewReader(data), p)
	var cuts []int
	pos := 0
	for {
		c, err := ch.Next(nil)
		if err == io.EOF {
			return cuts
		}
		pos += len(c)
		cuts = append(cuts, pos)
	}
}

func parallelCuts(t *testing.T, data []byte, p Params, workers, segment int) []int {
	t.Helper()
	pc := NewParallel(bytes.NewReader(data), p, workers, segment)
	defer pc.Close()
	var cuts []int
	pos := 0
	buf := make([]byte, 0, p.MaxSize)
	for {
		c, err := pc.Next(buf)
		if err == io.EOF {
			return cuts
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, data[pos:pos+len(c)]) {
			t.Fatalf("chunk at %d does not hold the stream's bytes", pos)
		}
		pos += len(c)
		cuts = append(cuts, pos)
	}
}

func equalCuts(t *testing.T, what string, got, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d chunks, sequential pass has %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: chunk %d ends at %d, sequential pass at %d", what, i, got[i], want[i])
		}
	}
}

func TestParallelMatchesSequential(t *testing.T) {
	p := testParams(t)
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 60<<20+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sequentialCuts(data, p)
	for _, tc := range []struct{ workers, segment int }{{2, 17 << 20}, {3, 16 << 20}, {4, 20 << 20}, {2, 64 << 20}, {1, 8 << 20}} {
		equalCuts(t, "random data", parallelCuts(t, data, p, tc.workers, tc.segment), want)
	}
}

// Long zero runs (a cut at every minimum size) and incompressible stretches
// too short to cut (forced maximum-size cuts) stress the stitching.
func TestParallelMatchesSequentialOnAdversarialData(t *testing.T) {
	p := testParams(t)
	p.MinSize, p.MaxSize, p.AverageBits = 256, 1024, 14 // most cuts forced by MaxSize
	if !chunker.Pol(p.Polynomial).Irreducible() {
		t.Fatal("bad polynomial")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3<<20)
	for i := range data {
		if (i/100000)%3 != 0 {
			data[i] = byte(rng.Uint32())
		}
	}
	want := sequentialCuts(data, p)
	for _, tc := range []struct{ workers, segment int }{{2, 4096}, {3, 5000}, {4, 1 << 20}, {8, 3000}} {
		equalCuts(t, "adversarial data", parallelCuts(t, data, p, tc.workers, tc.segment), want)
	}
}

func TestParallelSmallAndEmptyStreams(t *testing.T) {
	p := testParams(t)
	for _, n := range []int{0, 1, 1000, int(p.MinSize), int(p.MaxSize) + 1} {
		data := bytes.Repeat([]byte{7}, n)
		equalCuts(t, "small stream", parallelCuts(t, data, p, 2, 1<<20), sequentialCuts(data, p))
	}
}

func TestParallelCloseEarly(t *testing.T) {
	p := testParams(t)
	pc := NewParallel(bytes.NewReader(make([]byte, 40<<20)), p, 2, 8<<20)
	if _, err := pc.Next(nil); err != nil {
		t.Fatal(err)
	}
	pc.Close() // must not hang or leak the producer
	pc.Close()
}
