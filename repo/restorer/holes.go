package restorer

import (
	"bytes"
	"io"
)

// holeBlock is the unit of holes: a run of zeros that fills whole blocks
// of this size, at offsets that are multiples of it, is not written.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// holeWriter writes a new file's content, leaving whole blocks of zeros
// as holes, so that a sparse file (a disk image, a preallocated recording)
// does not come back fully allocated. Its content reads back the same: a
// hole reads as zeros. Only blocks within one Write are looked at.
type holeWriter struct {
	w     io.Writer
	skip  func(n int64) error // moves the file offset on without writing
	off   int64
	holes bool // some bytes were skipped: the file's size must be set
}

func (h *holeWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := h.nextRun(p)
		if k < 0 {
			if err := h.skip(int64(-k)); err != nil {
				return n - len(p), err
			}
			h.holes = true
			k = -k
		} else if _, err := h.w.Write(p[:k]); err != nil {
			return n - len(p), err
		}
		h.off += int64(k)
		p = p[k:]
	}
	return n, nil
}

// nextRun returns the length of p's next run to write, or minus the length
// of its next run of zero blocks to skip.
func (h *holeWriter) nextRun(p []byte) int {
	if r := int(h.off % holeBlock); r != 0 {
		return min(len(p), holeBlock-r) // up to the next block boundary
	}
	if len(p) < holeBlock {
		return len(p) // a partial block is written
	}
	zero := bytes.Equal(p[:holeBlock], zeroBlock[:])
	k := holeBlock
	for k+holeBlock <= len(p) && bytes.Equal(p[k:k+holeBlock], zeroBlock[:]) == zero {
		k += holeBlock
	}
	if zero {
		return -k
	}
	return k
}
