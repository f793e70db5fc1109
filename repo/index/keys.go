package index

import (
	"bytes"
	"math/bits"
	"slices"

	"github.com/courtbak/courtbak/repo/blob"
)

// keyTable is an immutable, sorted set of blob ids, each with the number
// of its location record. Blob ids are keyed BLAKE3 hashes, so they are
// uniform: a directory on the first two bytes cuts every search to a
// bucket of about n/65536 keys, and those two bytes need not be stored.
// From subKeysMin keys on, the third byte is implied too, by a unary-coded
// count per (first three bytes): n + 2^24 bits, so 0.33 bytes per key at
// 10 million keys buy back one byte per key.
//
// The full remaining bytes of every id are kept: Has must be exact, since a
// false "already stored" during a backup would drop data.
type keyTable struct {
	n        int
	skip     int      // leading id bytes implied by dir (2) or dir and sub (3)
	dir      []uint64 // dir[b]: keys whose first two bytes are below b; 65537 entries
	sub      []uint64 // skip 3: per key a one, per three-byte prefix a closing zero
	ids      []byte   // id[skip:] per key
	refWidth uint
	refs     []uint64 // record number per key, refWidth bits each
}

// subKeysMin is where the unary third-byte level starts to pay for its
// fixed 2 MiB. A variable so tests can exercise both layouts.
var subKeysMin = 1 << 22

const dirLen = 1<<16 + 1

// search returns the position of id.
func (t *keyTable) search(id *blob.ID) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	b := int(id[0])<<8 | int(id[1])
	lo, hi := int(t.dir[b]), int(t.dir[b+1])
	if lo == hi {
		return 0, false
	}
	if t.skip == 3 {
		lo, hi = t.subRange(b, lo, int(id[2]))
	}
	stride := 32 - t.skip
	key := id[t.skip:]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(t.ids[m*stride:(m+1)*stride], key); {
		case c == 0:
			return m, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// subRange narrows the keys [lo0, …) of two-byte bucket b to those whose
// third byte is c. Bucket b's unary segment starts at bit lo0 + 256*b:
// lo0 ones and 256 zeros (one per three-byte prefix) precede it.
func (t *keyTable) subRange(b, lo0, c int) (int, int) {
	pos := lo0 + 256*b
	lo := lo0
	start := pos
	if c > 0 {
		z := selectZero(t.sub, pos, c-1) // closes prefix c-1
		lo = lo0 + (z + 1 - pos) - c
		start = z + 1
	}
	z := selectZero(t.sub, start, 0)
	return lo, lo + (z - start)
}

// selectZero returns the position of the k-th zero bit (from 0) at or
// after pos.
func selectZero(words []uint64, pos, k int) int {
	w := pos >> 6
	x := ^words[w] >> uint(pos&63)
	base := pos
	for {
		if c := bits.OnesCount64(x); k >= c {
			k -= c
			w++
			base = w << 6
			x = ^words[w]
			continue
		}
		for ; k > 0; k-- {
			x &= x - 1
		}
		return base + bits.TrailingZeros64(x)
	}
}

func (t *keyTable) ref(i int) uint64 {
	return getBits(t.refs, uint64(i)*uint64(t.refWidth), t.refWidth)
}

// keyIter walks a table in order, rebuilding the full ids.
type keyIter struct {
	t   *keyTable
	i   int
	b   int // skip 2: current two-byte bucket
	pos int // skip 3: bit position of the last key's one
}

func (t *keyTable) iter() *keyIter { return &keyIter{t: t, pos: -1} }

func (it *keyIter) next(id *blob.ID) (uint64, bool) {
	t := it.t
	if it.i >= t.n {
		return 0, false
	}
	if t.skip == 3 {
		// The key's one sits at i + prefix: each zero before it closed a prefix.
		p := it.pos + 1
		w := p >> 6
		x := t.sub[w] >> uint(p&63)
		for x == 0 {
			w++
			p = w << 6
			x = t.sub[w]
		}
		p += bits.TrailingZeros64(x)
		it.pos = p
		prefix := p - it.i
		id[0], id[1], id[2] = byte(prefix>>16), byte(prefix>>8), byte(prefix)
	} else {
		for int(t.dir[it.b+1]) <= it.i {
			it.b++
		}
		id[0], id[1] = byte(it.b>>8), byte(it.b)
	}
	stride := 32 - t.skip
	copy(id[t.skip:], t.ids[it.i*stride:(it.i+1)*stride])
	r := t.ref(it.i)
	it.i++
	return r, true
}

// keyBuilder writes a table from keys given in increasing order.
type keyBuilder struct {
	t *keyTable
	i int
}

// newKeyBuilder prepares a table of at most n keys whose record numbers
// are below records.
func newKeyBuilder(n, records int) *keyBuilder {
	t := &keyTable{n: n, skip: 2}
	if n == 0 {
		return &keyBuilder{t: t}
	}
	if n >= subKeysMin {
		t.skip = 3
		t.sub = make([]uint64, packedLen(n+1<<24, 1))
	}
	t.dir = make([]uint64, dirLen)
	t.ids = make([]byte, n*(32-t.skip))
	t.refWidth = uint(max(1, bits.Len64(uint64(records-1))))
	t.refs = make([]uint64, packedLen(n, t.refWidth))
	return &keyBuilder{t: t}
}

func (kb *keyBuilder) add(id *blob.ID, ref uint64) {
	t, i := kb.t, kb.i
	t.dir[(int(id[0])<<8|int(id[1]))+1]++
	if t.skip == 3 {
		p := i + (int(id[0])<<16 | int(id[1])<<8 | int(id[2]))
		t.sub[p>>6] |= 1 << uint(p&63)
	}
	stride := 32 - t.skip
	copy(t.ids[i*stride:], id[t.skip:])
	setBits(t.refs, uint64(i)*uint64(t.refWidth), t.refWidth, ref)
	kb.i++
}

func (kb *keyBuilder) finish() *keyTable {
	t := kb.t
	if kb.i < t.n {
		// Fewer keys than planned (pending ids the table had): trim, and
		// copy when the spare room would be noticeable.
		t.n = kb.i
		t.ids = t.ids[:t.n*(32-t.skip)]
		t.refs = t.refs[:packedLen(t.n, t.refWidth)]
		if cap(t.ids)-len(t.ids) > len(t.ids)/64 {
			t.ids = slices.Clone(t.ids)
			t.refs = slices.Clone(t.refs)
		}
	}
	for b := 1; b < len(t.dir); b++ {
		t.dir[b] += t.dir[b-1]
	}
	return t
}

// keyRef is a key waiting to be merged into the table.
type keyRef struct {
	id  blob.ID
	ref uint64
}

// sortKeys sorts by id: a counting pass on the first two bytes (ids are
// uniform, so buckets are tiny), then each bucket on its own.
func sortKeys(ks []keyRef) {
	if len(ks) < 1<<12 {
		slices.SortFunc(ks, cmpKeyRef)
		return
	}
	var start [dirLen]int
	for i := range ks {
		start[(int(ks[i].id[0])<<8|int(ks[i].id[1]))+1]++
	}
	for b := 1; b < dirLen; b++ {
		start[b] += start[b-1]
	}
	out := make([]keyRef, len(ks))
	next := start
	for _, k := range ks {
		b := int(k.id[0])<<8 | int(k.id[1])
		out[next[b]] = k
		next[b]++
	}
	for b := 0; b < dirLen-1; b++ {
		slices.SortFunc(out[start[b]:start[b+1]], cmpKeyRef)
	}
	copy(ks, out)
}

func cmpKeyRef(a, b keyRef) int { return bytes.Compare(a.id[:], b.id[:]) }

// mergeKeys returns a table holding the keys of t and the sorted, distinct
// keys add. An id in both keeps t's record: t's records are older.
func mergeKeys(t *keyTable, add []keyRef, records int) *keyTable {
	kb := newKeyBuilder(t.n+len(add), records)
	it := t.iter()
	var cur blob.ID
	ref, ok := it.next(&cur)
	for _, k := range add {
		c := -1
		for ok {
			if c = bytes.Compare(cur[:], k.id[:]); c > 0 {
				break
			}
			kb.add(&cur, ref)
			ref, ok = it.next(&cur)
			if c == 0 {
				break
			}
		}
		if c != 0 {
			kb.add(&k.id, k.ref)
		}
	}
	for ok {
		kb.add(&cur, ref)
		ref, ok = it.next(&cur)
	}
	return kb.finish()
}
