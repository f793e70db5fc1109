// Package index maps blob ids to their place in packs. The in-memory Index
// answers "is this blob stored already?" during backup and "where is it?"
// during restore; index files persist it.
package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
	"sort"
	"sync"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// Location is where a blob is stored.
type Location struct {
	Pack blob.ID
	pack.Entry
}

// The in-memory layout, built to stay under 40 bytes per blob at 10 million
// blobs (docs/performance.md has the numbers and the alternatives):
//
//   - keys: every id once, sorted, in an immutable keyTable (29 or 30 bytes
//     of id plus a record number of log2(records) bits).
//   - records: one per blob in pack order, appended as packs arrive: the
//     blob's end offset in its pack and its type bit. Blobs of a pack tile
//     it, so a record's offset is the previous record's end (0 for a pack's
//     first record) and the length is the difference: offset and length
//     cost one field instead of two, and the pack needs no field at all,
//     since a bit vector marks each pack's first record and its rank is the
//     pack number. A gap between blobs (a duplicate kept elsewhere) becomes
//     a record no key points to.
//   - an uncompressed blob's raw length is its sealed length minus the AEAD
//     overhead, so only compressed blobs (text, trees: few of the blobs of
//     court recordings) store a raw length, found by rank in a bit vector.
//   - pack ids in arrival order, and their positions sorted by id to find a
//     pack again.
//
// Blobs added since the last merge wait in a map from id to record and are
// merged into a new keyTable in batches (amortised O(1) per blob). Entries
// the compact form cannot express exactly (an unknown type or compression,
// overlapping offsets, a raw length that does not follow from the length)
// go to a map of full entries, so nothing is ever approximated.
type Index struct {
	mu sync.RWMutex

	// base holds what was indexed before this process started, on disk
	// (package repo/index/table); the fields below hold what was added
	// since. Nil for a purely in-memory index.
	base Base

	keys    *keyTable
	pending map[blob.ID]uint64 // id → record, not yet in keys
	odd     map[blob.ID]oddEntry

	endBits uint
	recs    *pagedBits // end<<1 | type, endBits+1 bits each
	first   rankBits   // record starts a pack
	comp    rankBits   // record is zstd-compressed
	raws    paged[uint32]

	packs        paged[blob.ID] // by position
	packOrder    []uint32       // positions of merged packs, sorted by id
	pendingPacks map[blob.ID]uint32
}

// Base is a read-only index consulted after the in-memory part: the
// on-disk tables of the cache directory.
type Base interface {
	Has(id blob.ID) bool
	Lookup(id blob.ID) (Location, bool)
	HasPack(id blob.ID) bool
	Len() int
	// Missing returns the ids the base does not hold, and LookupMany
	// fills in locs[i] and found[i] where found[i] is false and the base
	// holds ids[i]: batches, which the base answers in sorted order.
	Missing(ids []blob.ID) []blob.ID
	LookupMany(ids []blob.ID, locs []Location, found []bool)
}

// SetBase makes b the read-only part of the index. Blobs and packs added
// later are kept in memory in front of it.
func (x *Index) SetBase(b Base) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.base = b
}

// oddEntry is a blob the compact form cannot hold.
type oddEntry struct {
	pack uint32
	e    pack.Entry
}

// sealOverhead is what sealing adds to a payload: an uncompressed blob's
// raw length is its sealed length minus this.
const sealOverhead = crypto.Overhead

// Merge thresholds, in pending keys and packs. Adds merge at half the
// table, so a load copies each key about three times in all (writing fresh
// memory is most of a merge; peak memory while merging is the old and new
// tables side by side either way). Queries merge earlier, so that the map,
// which costs about 60 bytes a key, stays under half a byte per blob once
// backups start asking. Variables so that tests reach every state with
// little data.
var (
	mergeMin      = 4096
	addMergeDiv   = 2
	queryMergeDiv = 128
)

// noRecord marks a pending key whose record is not yet written.
const noRecord = ^uint64(0)

// New returns an empty index.
func New() *Index {
	return &Index{
		keys:         &keyTable{},
		pending:      map[blob.ID]uint64{},
		odd:          map[blob.ID]oddEntry{},
		endBits:      25, // 32 MiB packs; widened when a pack is larger
		recs:         &pagedBits{width: 26},
		pendingPacks: map[blob.ID]uint32{},
	}
}

// AddPack records the blobs of one pack. A blob already known keeps its
// first location: any intact copy will do.
func (x *Index) AddPack(packID blob.ID, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addPack(packID, entries)
	if n := len(x.pending) + len(x.pendingPacks); n >= max(mergeMin, x.keys.n/addMergeDiv) {
		x.merge()
	}
}

// AddFile adds every pack of f.
func (x *Index) AddFile(f *File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range f.Packs {
		x.addPack(p.ID, p.Blobs)
	}
	if n := len(x.pending) + len(x.pendingPacks); n >= max(mergeMin, x.keys.n/addMergeDiv) {
		x.merge()
	}
}

func (x *Index) addPack(packID blob.ID, entries []pack.Entry) {
	if pos, ok := x.findPack(&packID); ok {
		// The pack's records are closed; a pack indexed twice (overlapping
		// index files, a replayed journal) normally brings nothing new.
		for _, e := range entries {
			if !x.has(&e.ID) {
				x.odd[e.ID] = oddEntry{pack: pos, e: e}
			}
		}
		return
	}
	if x.packs.n > 1<<32-1 {
		panic("index: more than 2^32 packs")
	}
	pos := uint32(x.packs.n)
	x.packs.append(packID)
	x.pendingPacks[packID] = pos

	// Decide in the given order which entries are new (the first of equal
	// ids wins), then lay them out in offset order.
	keep := make([]int, 0, len(entries))
	for i := range entries {
		id := &entries[i].ID
		// Only the cheap checks: an id the key table holds already is
		// dropped when the pending keys are merged (the older record wins).
		// That spares a random read of a big table per blob while an index
		// loads, which is most of the load time at millions of blobs.
		if _, ok := x.pending[*id]; ok {
			continue
		}
		if len(x.odd) > 0 {
			if _, ok := x.odd[*id]; ok {
				continue
			}
		}
		x.pending[*id] = noRecord
		keep = append(keep, i)
	}
	slices.SortStableFunc(keep, func(a, b int) int {
		return cmp.Compare(entries[a].Offset, entries[b].Offset)
	})
	var cursor uint64
	firstRec := true
	for _, i := range keep {
		e := &entries[i]
		off := uint64(e.Offset)
		if !compact(e) || off < cursor {
			delete(x.pending, e.ID)
			if _, known := x.keys.search(&e.ID); !known {
				x.odd[e.ID] = oddEntry{pack: pos, e: *e}
			}
			continue
		}
		if off > cursor {
			x.appendRecord(off, blob.Data, false, 0, firstRec) // a gap no key points to
			firstRec = false
		}
		cursor = off + uint64(e.Length)
		x.pending[e.ID] = x.appendRecord(cursor, e.Type, e.Compression == pack.CompressionZstd, e.RawLength, firstRec)
		firstRec = false
	}
	if firstRec {
		// Every pack owns a record, so that rank maps records to packs.
		x.appendRecord(0, blob.Data, false, 0, true)
	}
}

// compact reports whether e fits the record form exactly.
func compact(e *pack.Entry) bool {
	if e.Type > blob.Tree {
		return false
	}
	switch e.Compression {
	case pack.CompressionZstd:
		return true
	case pack.CompressionNone:
		return e.Length >= sealOverhead && e.RawLength == e.Length-sealOverhead
	}
	return false
}

func (x *Index) appendRecord(end uint64, t blob.Type, compressed bool, raw uint32, first bool) uint64 {
	if end >= 1<<x.endBits {
		x.endBits = uint(bits.Len64(end))
		x.recs = x.recs.widen(x.endBits + 1)
	}
	r := uint64(x.recs.n)
	x.recs.append(end<<1 | uint64(t&1))
	x.first.append(first)
	x.comp.append(compressed)
	if compressed {
		x.raws.append(raw)
	}
	return r
}

// findPack returns the position of a known pack.
func (x *Index) findPack(id *blob.ID) (uint32, bool) {
	if pos, ok := x.pendingPacks[*id]; ok {
		return pos, true
	}
	i, ok := x.searchPackOrder(id)
	if !ok {
		return 0, false
	}
	return x.packOrder[i], true
}

// searchPackOrder finds a pack id in packOrder. Pack ids are uniform
// hashes, so the first guess lands within a few places of the answer; a
// binary search over the whole order would read ~20 random pack ids.
func (x *Index) searchPackOrder(id *blob.ID) (int, bool) {
	n := len(x.packOrder)
	if n == 0 {
		return 0, false
	}
	cmpAt := func(i int) int {
		p := x.packs.get(int(x.packOrder[i]))
		return bytes.Compare(p[:], id[:])
	}
	guess, _ := bits.Mul64(binary.BigEndian.Uint64(id[:8]), uint64(n))
	lo, hi := int(guess), int(guess)+1 // the answer's place is in [lo, hi]
	for step := 1; lo > 0 && cmpAt(lo) > 0; step *= 2 {
		hi, lo = lo, max(0, lo-step)
	}
	for step := 1; hi < n && cmpAt(hi) < 0; step *= 2 {
		lo, hi = hi, min(n, hi+step)
	}
	i := lo + sort.Search(hi-lo, func(k int) bool { return cmpAt(lo+k) >= 0 })
	return i, i < n && cmpAt(i) == 0
}

// merge moves the pending keys and packs into new sorted tables.
func (x *Index) merge() {
	add := make([]keyRef, 0, len(x.pending))
	for id, r := range x.pending {
		add = append(add, keyRef{id: id, ref: r})
	}
	sortKeys(add)
	x.keys = mergeKeys(x.keys, add, x.recs.n)
	x.pending = map[blob.ID]uint64{} // a cleared map would keep its buckets

	newPacks := make([]uint32, 0, len(x.pendingPacks))
	for _, pos := range x.pendingPacks {
		newPacks = append(newPacks, pos)
	}
	byID := func(a, b uint32) int {
		pa, pb := x.packs.get(int(a)), x.packs.get(int(b))
		return bytes.Compare(pa[:], pb[:])
	}
	slices.SortFunc(newPacks, byID)
	order := make([]uint32, 0, len(x.packOrder)+len(newPacks))
	i := 0
	for _, p := range newPacks {
		for i < len(x.packOrder) && byID(x.packOrder[i], p) < 0 {
			order = append(order, x.packOrder[i])
			i++
		}
		order = append(order, p)
	}
	x.packOrder = append(order, x.packOrder[i:]...)
	x.pendingPacks = map[blob.ID]uint32{}
}

// queryMergeDue reports whether a reader should merge first. Holds a read lock.
func (x *Index) queryMergeDue() bool {
	return len(x.pending)+len(x.pendingPacks) >= max(mergeMin, x.keys.n/queryMergeDiv)
}

// rlock takes the read lock, merging first when enough keys wait.
func (x *Index) rlock() {
	x.mu.RLock()
	if !x.queryMergeDue() {
		return
	}
	x.mu.RUnlock()
	x.mu.Lock()
	if x.queryMergeDue() {
		x.merge()
	}
	x.mu.Unlock()
	x.mu.RLock()
}

// has reports whether id is known. Needs a lock.
func (x *Index) has(id *blob.ID) bool {
	if _, ok := x.keys.search(id); ok {
		return true
	}
	if _, ok := x.pending[*id]; ok {
		return true
	}
	if len(x.odd) > 0 {
		_, ok := x.odd[*id]
		return ok
	}
	return false
}

// Has reports whether a blob is stored.
func (x *Index) Has(id blob.ID) bool {
	x.rlock()
	ok := x.has(&id)
	base := x.base
	x.mu.RUnlock()
	return ok || (base != nil && base.Has(id))
}

// Lookup returns where a blob is stored.
func (x *Index) Lookup(id blob.ID) (Location, bool) {
	x.rlock()
	loc, ok := x.lookup(id)
	base := x.base
	x.mu.RUnlock()
	if !ok && base != nil {
		return base.Lookup(id) // without the lock: it may read from disk
	}
	return loc, ok
}

// Missing returns the ids of ids that are not stored (in no particular
// order). With a base on disk it asks the base once for all the ids the
// memory does not hold, which it answers reading each block once.
func (x *Index) Missing(ids []blob.ID) []blob.ID {
	x.rlock()
	var rest []blob.ID
	for i := range ids {
		if !x.has(&ids[i]) {
			rest = append(rest, ids[i])
		}
	}
	base := x.base
	x.mu.RUnlock()
	if len(rest) == 0 || base == nil {
		return rest
	}
	return base.Missing(rest) // without the lock: it may read from disk
}

// LookupAll returns the location of every id, in the order of ids, and
// the position of an id that is not stored, or -1 if every one is. With a
// base on disk it asks the base once for all the ids the memory does not
// hold.
func (x *Index) LookupAll(ids []blob.ID) ([]Location, int) {
	locs := make([]Location, len(ids))
	found := make([]bool, len(ids))
	x.LookupMany(ids, locs, found)
	for i, ok := range found {
		if !ok {
			return locs, i
		}
	}
	return locs, -1
}

// LookupMany sets locs[i] and found[i] for every i with found[i] false
// whose id is stored, as LookupAll does; with it an Index can be the Base
// of another.
func (x *Index) LookupMany(ids []blob.ID, locs []Location, found []bool) {
	x.rlock()
	rest := false
	for i, id := range ids {
		if found[i] {
			continue
		}
		locs[i], found[i] = x.lookup(id)
		rest = rest || !found[i]
	}
	base := x.base
	x.mu.RUnlock()
	if rest && base != nil {
		base.LookupMany(ids, locs, found) // without the lock: it may read from disk
	}
}

// lookup searches the in-memory part. Needs a lock.
func (x *Index) lookup(id blob.ID) (Location, bool) {
	if i, ok := x.keys.search(&id); ok {
		return x.location(id, x.keys.ref(i)), true
	}
	if r, ok := x.pending[id]; ok {
		return x.location(id, r), true
	}
	if o, ok := x.odd[id]; ok {
		return Location{Pack: x.packs.get(int(o.pack)), Entry: o.e}, true
	}
	return Location{}, false
}

// location decodes record r. Needs a lock.
func (x *Index) location(id blob.ID, r uint64) Location {
	p, e := x.record(int(r))
	e.ID = id
	return Location{Pack: x.packs.get(p), Entry: e}
}

// record decodes record r into its pack position and entry (without id).
func (x *Index) record(r int) (int, pack.Entry) {
	v := x.recs.get(r)
	end := v >> 1
	var off uint64
	if !x.first.get(r) {
		off = x.recs.get(r-1) >> 1
	}
	e := pack.Entry{Type: blob.Type(v & 1), Offset: uint32(off), Length: uint32(end - off)}
	if x.comp.get(r) {
		e.Compression = pack.CompressionZstd
		e.RawLength = x.raws.get(x.comp.rank(r))
	} else {
		e.RawLength = e.Length - sealOverhead
	}
	return x.first.rank(r+1) - 1, e
}

// Len is the number of blobs (with a base, a blob indexed twice, in the
// base and in memory or in two tables of the base, counts twice).
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.settle()
	n := x.keys.n + len(x.odd)
	if x.base != nil {
		n += x.base.Len()
	}
	return n
}

// settle merges pending keys, which may repeat ids of the key table until
// they are merged. Needs the write lock.
func (x *Index) settle() {
	if len(x.pending)+len(x.pendingPacks) > 0 {
		x.merge()
	}
}

// PackIDs returns the ids of the packs held in memory (not those of the
// base).
func (x *Index) PackIDs() []blob.ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]blob.ID, 0, x.packs.n)
	for _, pg := range x.packs.pages {
		out = append(out, pg...)
	}
	return out
}

// HasPack reports whether a pack is indexed.
func (x *Index) HasPack(id blob.ID) bool {
	x.mu.RLock()
	_, ok := x.findPack(&id)
	base := x.base
	x.mu.RUnlock()
	return ok || (base != nil && base.HasPack(id))
}

// byOffset orders a pack's blobs; ids break ties, which only odd entries have.
func byOffset(a, b pack.Entry) int {
	if c := cmp.Compare(a.Offset, b.Offset); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// Packs returns, for every pack held in memory, its blobs sorted by
// offset. prune and verify, its users, build an index without a base.
func (x *Index) Packs() map[blob.ID][]pack.Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.base != nil {
		panic("index: Packs of an index with an on-disk base")
	}
	x.settle()
	out := make(map[blob.ID][]pack.Entry, x.packs.n)
	for i := 0; i < x.packs.n; i++ {
		out[x.packs.get(i)] = nil
	}
	add := func(id blob.ID, r uint64) {
		p, e := x.record(int(r))
		e.ID = id
		pid := x.packs.get(p)
		out[pid] = append(out[pid], e)
	}
	it := x.keys.iter()
	var id blob.ID
	for r, ok := it.next(&id); ok; r, ok = it.next(&id) {
		add(id, r)
	}
	for _, o := range x.odd {
		pid := x.packs.get(int(o.pack))
		out[pid] = append(out[pid], o.e)
	}
	for _, es := range out {
		slices.SortFunc(es, byOffset)
	}
	return out
}
