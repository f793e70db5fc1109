package directio

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sizes around the block and staging boundaries, where off-by-one errors
// would lose or duplicate the tail.
var sizes = []int{0, 1, Block - 1, Block, Block + 1, 4*Block - 1, 4 * Block, 4*Block + 1, 13*Block + 777, 1 << 20}

// roundTrip writes a new file with write, appends "end" at the file
// position write left, and checks the file holds want and then "end": the
// position must be the end of the content.
func roundTrip(t *testing.T, dir string, want []byte, write func(*os.File) error) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(want, "end"...)) {
		t.Fatalf("file differs: %d bytes, want %d", len(got), len(want)+3)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	stage := Buffer(4 * Block)
	for _, size := range sizes {
		for _, piece := range []int{1, 1000, Block, 3*Block + 5, 1 << 30} {
			want := pattern(size, uint64(size*7+piece))
			t.Logf("size %d, pieces of %d", size, piece)
			roundTrip(t, dir, want, func(f *os.File) error {
				w := NewWriter(f, stage)
				for p := want; len(p) > 0; {
					n := min(piece, len(p))
					if m, err := w.Write(p[:n]); err != nil || m != n {
						return fmt.Errorf("Write = %d, %v", m, err)
					}
					p = p[n:]
				}
				return w.Flush()
			})
		}
	}
}

// Holes between and after written blocks read back as zeros, staged or
// not, and leave the file positioned at the end of the content.
func TestWriterSkipLeavesHoles(t *testing.T) {
	dir := t.TempDir()
	for _, stage := range [][]byte{Buffer(4 * Block), nil} {
		for _, endHole := range []bool{false, true} {
			data := pattern(3*Block, 9)
			want := append(append(append([]byte{}, data[:Block]...), make([]byte, 5*Block)...), data[Block:]...)
			if endHole {
				want = append(want, make([]byte, 2*Block)...)
			}
			roundTrip(t, dir, want, func(f *os.File) error {
				w := NewWriter(f, stage)
				steps := []func() error{
					func() error { _, err := w.Write(data[:Block]); return err },
					func() error { return w.Skip(5 * Block) },
					func() error { _, err := w.Write(data[Block:]); return err },
				}
				if endHole {
					steps = append(steps, func() error { return w.Skip(2 * Block) })
				}
				for _, step := range steps {
					if err := step(); err != nil {
						return err
					}
				}
				if err := w.Flush(); err != nil {
					return err
				}
				return f.Truncate(int64(len(want)))
			})
		}
	}
}

func TestWriteFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, size := range sizes {
		for _, aligned := range []bool{true, false} {
			want := pattern(size, uint64(size))
			data := Buffer(size + 1)[:size]
			if !aligned && size > 0 {
				data = make([]byte, size+1)[1:] // never block-aligned
			}
			copy(data, want)
			t.Logf("size %d, aligned %v", size, aligned)
			roundTrip(t, dir, want, func(f *os.File) error { return WriteFile(f, data) })
		}
	}
}

func TestBufferAligned(t *testing.T) {
	for _, size := range []int{1, Block, 3*Block + 1, 1 << 20} {
		b := Buffer(size)
		if !Aligned(b) || len(b)%Block != 0 || len(b) < size {
			t.Fatalf("Buffer(%d): len %d, aligned %v", size, len(b), Aligned(b))
		}
	}
}

// On a file system with direct I/O the writer keeps writing directly; on
// one without (tmpfs) it never tries.
func TestDirectMatchesFileSystem(t *testing.T) {
	dirs := []string{t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "directio-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs = append(dirs, d)
		}
	}
	for _, dir := range dirs {
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		w := NewWriter(f, Buffer(4*Block))
		if _, err := w.Write(pattern(20*Block, 3)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if w.Direct() != supported(f) {
			t.Errorf("%s: Direct() = %v, file system supports it: %v", dir, w.Direct(), supported(f))
		}
		f.Close()
		t.Logf("%s: direct %v", dir, w.Direct())
	}
}

// A directory not yet created is judged by its nearest existing parent:
// a repository's pack directories appear as packs are written.
func TestSupportedDirOfMissingPath(t *testing.T) {
	dir := t.TempDir()
	if got, want := SupportedDir(filepath.Join(dir, "not", "yet")), SupportedDir(dir); got != want {
		t.Fatalf("SupportedDir of a missing path = %v, of its parent %v", got, want)
	}
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if SupportedDir(dir) != supported(f) {
		t.Fatalf("SupportedDir(%s) = %v, but a file there: %v", dir, SupportedDir(dir), supported(f))
	}
}
