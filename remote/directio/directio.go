// Package directio writes new files around the page cache (O_DIRECT) on
// file systems known to support it, and through the page cache elsewhere.
//
// courtbak writes data that nobody reads back soon: packs, which are synced
// as soon as they are written, and restored recordings. Caching them costs
// a kernel copy into freshly allocated cache pages (on virtual machines the
// largest CPU cost of a backup or restore) and evicts what the machine was
// caching for its users.
package directio

import (
	"fmt"
	"io"
	"os"
)

// Block is the alignment of O_DIRECT buffers, offsets and lengths.
const Block = 4096

// Writer writes a new file from its start. Whole blocks are staged in an
// aligned buffer and written directly; the last partial block goes through
// the page cache on Flush. If the file system refuses a direct write, the
// staged blocks go through the cache from then on, at the same offsets.
// Not safe for concurrent use.
type Writer struct {
	f      *os.File
	direct bool
	stage  []byte // aligned, a multiple of Block; nil when never direct
	n      int    // bytes staged
	off    int64  // file offset of stage[0]
	err    error
}

// NewWriter returns a writer for f, which must be empty and positioned at
// its start. Direct writes are used if the file system supports them and
// stage is aligned and a non-zero multiple of Block (see Buffer); stage is
// the caller's and may be recycled after Flush.
func NewWriter(f *os.File, stage []byte) *Writer {
	w := &Writer{f: f}
	if len(stage) >= Block && len(stage)%Block == 0 && Aligned(stage) && supported(f) {
		w.direct, w.stage = true, stage
	}
	return w
}

// Buffer returns an aligned staging buffer of size bytes, rounded up to a
// whole number of blocks.
func Buffer(size int) []byte {
	size = (size + Block - 1) &^ (Block - 1)
	b := make([]byte, size+Block)
	skip := int((Block - addr(b)%Block) % Block)
	return b[skip : skip+size : skip+size]
}

// Aligned reports whether b starts on a block boundary.
func Aligned(b []byte) bool { return len(b) > 0 && addr(b)%Block == 0 }

// Direct reports whether the writer is still writing around the page cache.
func (w *Writer) Direct() bool { return w.direct }

// Write stages or writes p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.stage == nil {
		n, err := w.f.Write(p)
		if err != nil {
			w.err = err
		}
		return n, err
	}
	written := 0
	for len(p) > 0 {
		c := copy(w.stage[w.n:], p)
		w.n += c
		p = p[c:]
		written += c
		if w.n == len(w.stage) {
			if err := w.writeStage(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// writeStage writes the full staging buffer.
func (w *Writer) writeStage() error {
	if err := w.writeBlocks(w.stage[:w.n], w.off); err != nil {
		w.err = err
		return err
	}
	w.off += int64(w.n)
	w.n = 0
	return nil
}

// writeBlocks writes whole aligned blocks at off, directly where it can.
func (w *Writer) writeBlocks(b []byte, off int64) error {
	if w.direct {
		err := writeDirect(w.f, b, off)
		if err == nil {
			return nil
		}
		if err != errRefused {
			return fmt.Errorf("direct write at %d: %w", off, err)
		}
		w.direct = false
	}
	_, err := w.f.WriteAt(b, off)
	return err
}

// Skip leaves a hole of n bytes: the file offset moves on without writing.
// Holes start and end on block boundaries: the bytes written so far and n
// must be whole blocks. A file that ends in a hole gets its size from the
// caller (Truncate).
func (w *Writer) Skip(n int64) error {
	if w.err != nil {
		return w.err
	}
	if w.stage == nil {
		if _, err := w.f.Seek(n, io.SeekCurrent); err != nil {
			w.err = err
			return err
		}
		return nil
	}
	if w.n%Block != 0 || n%Block != 0 {
		return fmt.Errorf("hole of %d bytes after %d staged: not whole blocks", n, w.n)
	}
	if w.n > 0 {
		if err := w.writeBlocks(w.stage[:w.n], w.off); err != nil {
			w.err = err
			return err
		}
	}
	w.off += int64(w.n) + n
	w.n = 0
	return nil
}

// Flush writes what is staged, through the page cache, and leaves the file
// positioned at its end. Call it once, after the last Write; then Sync.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.n > 0 {
		if _, err := w.f.WriteAt(w.stage[:w.n], w.off); err != nil {
			w.err = err
			return err
		}
		w.off += int64(w.n)
		w.n = 0
	}
	if w.stage != nil {
		if _, err := w.f.Seek(w.off, 0); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// WriteFile writes data, the whole content of the new empty file f. When
// data itself is aligned its blocks are written directly without staging.
func WriteFile(f *os.File, data []byte) error {
	whole := len(data) &^ (Block - 1)
	if whole > 0 && Aligned(data) && supported(f) {
		err := writeDirect(f, data[:whole], 0)
		switch {
		case err == nil:
			if _, err := f.WriteAt(data[whole:], int64(whole)); err != nil {
				return err
			}
			_, err := f.Seek(int64(len(data)), 0)
			return err
		case err != errRefused:
			return fmt.Errorf("direct write: %w", err)
		}
	}
	_, err := f.Write(data)
	return err
}
