package index

import "math/bits"

// Storage primitives for the compact index. Everything here holds plain
// integers and no pointers per blob, so the garbage collector never scans
// the bulk of the index, and the growing arrays are paged so that growth
// neither copies the whole array nor leaves more than one page unused (the
// heap per blob is the number the index is judged by).

const (
	pageShift = 14 // values per page
	pageLen   = 1 << pageShift
)

// getBits reads the width-bit value that starts at bit of words. Values may
// straddle two words; callers keep one spare word at the end.
func getBits(words []uint64, bit uint64, width uint) uint64 {
	w, s := bit>>6, bit&63
	v := words[w] >> s
	if s+uint64(width) > 64 {
		v |= words[w+1] << (64 - s)
	}
	if width == 64 {
		return v
	}
	return v & (1<<width - 1)
}

// setBits ORs v into the zeroed width-bit slot at bit.
func setBits(words []uint64, bit uint64, width uint, v uint64) {
	w, s := bit>>6, bit&63
	words[w] |= v << s
	if s+uint64(width) > 64 {
		words[w+1] |= v >> (64 - s)
	}
}

// packedLen is the number of words for n width-bit values plus the spare
// word getBits may touch.
func packedLen(n int, width uint) int {
	return (n*int(width)+63)/64 + 1
}

// pagedBits is an append-only array of width-bit values, bit-packed in pages
// of pageLen values.
type pagedBits struct {
	width uint
	n     int
	pages [][]uint64
}

func (p *pagedBits) append(v uint64) {
	i := p.n & (pageLen - 1)
	if i == 0 {
		p.pages = append(p.pages, make([]uint64, packedLen(pageLen, p.width)))
	}
	setBits(p.pages[len(p.pages)-1], uint64(i)*uint64(p.width), p.width, v)
	p.n++
}

func (p *pagedBits) get(i int) uint64 {
	return getBits(p.pages[i>>pageShift], uint64(i&(pageLen-1))*uint64(p.width), p.width)
}

// widen returns a copy of p with wider values.
func (p *pagedBits) widen(width uint) *pagedBits {
	q := &pagedBits{width: width}
	for i := 0; i < p.n; i++ {
		q.append(p.get(i))
	}
	return q
}

// rankBlock bits share one precomputed count: rank then sums at most 8 words.
const rankBlockShift = 9

// rankBits is an append-only bit vector that counts the ones before any
// position in constant time.
type rankBits struct {
	bits    pagedBits // width 1
	ones    int
	samples []uint64 // ones before each block of 1<<rankBlockShift bits
}

func (r *rankBits) append(b bool) {
	if r.bits.width == 0 {
		r.bits.width = 1
	}
	if r.bits.n&(1<<rankBlockShift-1) == 0 {
		r.samples = append(r.samples, uint64(r.ones))
	}
	var v uint64
	if b {
		v = 1
		r.ones++
	}
	r.bits.append(v)
}

func (r *rankBits) get(i int) bool { return r.bits.get(i) != 0 }

// rank returns the number of ones before position i (0 ≤ i ≤ length).
func (r *rankBits) rank(i int) int {
	if i >= r.bits.n {
		return r.ones
	}
	c := int(r.samples[i>>rankBlockShift])
	page := r.bits.pages[i>>pageShift]
	in := i & (pageLen - 1)
	// A block never straddles pages: pageLen is a multiple of the block.
	w := (in >> rankBlockShift) << (rankBlockShift - 6)
	for end := in >> 6; w < end; w++ {
		c += bits.OnesCount64(page[w])
	}
	if rem := in & 63; rem != 0 {
		c += bits.OnesCount64(page[w] & (1<<uint(rem) - 1))
	}
	return c
}

// paged is an append-only array in pages. The first page grows like a
// slice so that small indexes stay small.
type paged[T any] struct {
	n     int
	pages [][]T
}

func (p *paged[T]) append(v T) {
	if len(p.pages) == 0 || len(p.pages[len(p.pages)-1]) == pageLen {
		c := pageLen
		if len(p.pages) == 0 {
			c = 16
		}
		p.pages = append(p.pages, make([]T, 0, c))
	}
	last := &p.pages[len(p.pages)-1]
	*last = append(*last, v)
	p.n++
}

func (p *paged[T]) get(i int) T { return p.pages[i>>pageShift][i&(pageLen-1)] }
