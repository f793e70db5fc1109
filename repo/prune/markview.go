package prune

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// The mark in bounded memory (docs/design.md §20.5). It keeps per pack a
// packState, and per listed blob one bit (whether that entry owns a used
// blob); the blobs themselves pass through two external sorts on disk,
// one of every listing entry and one of every used blob, which are then
// merge-joined. After the heads of all index files, the files in effect
// are read one at a time, four times (their pack ids, numbering the
// entries, repacking, writing the new index); their names are hashes of
// their content, so each read returns the same listings, and the cache
// directory serves the reads after the first.

// packState is what the mark keeps per pack: 80 bytes.
type packState struct {
	id       blob.ID
	size     int64  // stored size, or -1: listed but not stored
	first    uint64 // number of its first listing entry in the owner bits
	entries  uint32 // entries of its listing (the union, for a held pack)
	listings uint32 // listings of it in the files in effect; 0: unindexed
	used     int64  // bytes of the entries that own a used blob
	all      int64  // bytes of all its entries
	numbered bool   // first and entries are set
	// unreadable: unindexed, and its header cannot be read.
	unreadable bool
	fate       fate
}

// fate is what the mark does with a pack.
type fate uint8

const (
	fateGone    fate = iota // indexed, not stored, owns nothing: left out
	fateKeep                // indexed anew as it is
	fateRepack              // its owned blobs move; then dead
	fateDead                // indexed, owns nothing
	fateUnused              // unindexed or unreadable, owns nothing
	fateUnknown             // not classified yet
)

func (p *packState) stored() bool { return p.size >= 0 }

// packTable holds every pack the mark decides about, sorted by id.
type packTable struct {
	packs []packState
	// held are the listings kept in memory: those of packs listed more
	// than once in the files in effect (their union), and those of
	// unindexed packs (from their headers). Both are rare.
	held map[uint32]index.PackBlobs
	// merged is set once held has every listing of the packs listed more
	// than once.
	merged bool
	// alike are the packs listed more than once whose listings are all
	// the same (findAlike): streamed once, from their first listing,
	// instead of held. nil when no pack is listed more than once.
	alike   bitset
	entries uint64 // entries numbered so far
	owned   bitset // by entry number: the entry owns a used blob
}

// listedPacks returns the pack ids that the files in effect (names) list,
// once per listing, reading one file at a time.
func listedPacks(ctx context.Context, r *repo.Repository, names []string) ([]blob.ID, error) {
	var ids []blob.ID
	for _, name := range names {
		f, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, p := range f.Packs {
			ids = append(ids, p.ID)
		}
	}
	return ids, nil
}

// loadPackLists gives each file in effect its pack list (ids and sizes, no
// blobs), reading one file at a time: the files superseded, and the blob
// listings, are never held.
func loadPackLists(ctx context.Context, r *repo.Repository, inEffect map[string]*index.File) error {
	for name, f := range inEffect {
		full, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			return err
		}
		f.Packs = make([]index.PackBlobs, len(full.Packs))
		for i, p := range full.Packs {
			f.Packs[i] = index.PackBlobs{ID: p.ID, Size: p.Size}
		}
	}
	return nil
}

func compareIDs(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }

// newPackTable lists every pack that is listed (listed: once per listing
// in the files in effect; it is sorted in place) or stored. Its peak
// memory is the table (80 bytes a pack) next to listed and stored.
func newPackTable(listed []blob.ID, stored map[blob.ID]int64) *packTable {
	slices.SortFunc(listed, compareIDs)
	unstored := 0
	for i, id := range listed {
		if _, ok := stored[id]; !ok && (i == 0 || listed[i-1] != id) {
			unstored++
		}
	}
	packs := make([]packState, 0, len(stored)+unstored)
	for id, size := range stored {
		packs = append(packs, packState{id: id, size: size, fate: fateUnknown})
	}
	for i, id := range listed {
		if _, ok := stored[id]; !ok && (i == 0 || listed[i-1] != id) {
			packs = append(packs, packState{id: id, size: -1, fate: fateUnknown})
		}
	}
	slices.SortFunc(packs, func(a, b packState) int { return compareIDs(a.id, b.id) })
	n := 0
	for _, id := range listed {
		for packs[n].id != id {
			n++
		}
		packs[n].listings++
	}
	return &packTable{packs: packs, held: map[uint32]index.PackBlobs{}}
}

// find returns the number of pack id.
func (pt *packTable) find(id blob.ID) (uint32, bool) {
	n, ok := slices.BinarySearchFunc(pt.packs, id, func(p packState, id blob.ID) int { return compareIDs(p.id, id) })
	return uint32(n), ok
}

// readUnindexed reads the headers of the stored packs no file in effect
// lists, and holds their listings. Safety: a snapshot may need such a pack
// (its index file was lost after a crash); with its listing joined and its
// trees in the walk's index, the walk finds its blobs, and the mark
// indexes it again instead of deleting it. A pack whose header cannot be
// read adds nothing: a snapshot that needs it then fails the join with
// ErrIncomplete and nothing is deleted; no other can reach it.
func readUnindexed(ctx context.Context, r *repo.Repository, pt *packTable) error {
	for n := range pt.packs {
		p := &pt.packs[n]
		if p.listings > 0 {
			continue
		}
		entries, err := r.ReadPackHeader(ctx, p.id, p.size)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Warn("pack %s is in no index and its header cannot be read (%v): it is garbage and will be deleted", p.id.Short(), err)
			p.unreadable = true
			continue
		}
		pt.held[uint32(n)] = index.PackBlobs{ID: p.id, Size: p.size, Blobs: entries}
	}
	return nil
}

// loadWalkIndex gives r the index the tree walk reads trees through: the
// repository's own (on-disk tables in the cache directory, design.md §24)
// with the unindexed packs' listings in memory in front. Safety: the walk
// only needs some intact copy of each tree; which blobs are stored, and
// where, the mark decides from the listings of the files in effect alone
// (joinUsed).
func loadWalkIndex(ctx context.Context, r *repo.Repository, pt *packTable) error {
	r.ResetIndex()
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	for n, p := range pt.held {
		if pt.packs[n].listings == 0 {
			r.Index().AddPack(p.ID, p.Blobs)
		}
	}
	return nil
}

// findAlike finds the packs listed more than once whose listings are all
// the same, so that streamListings need not hold them. Safety: such a
// pack's union is any one of its listings, so streaming its first listing
// gives every pass the same entries a held union would. This is the case
// after a mark stopped between writing its index files and the file that
// supersedes the old ones: then nearly every kept pack is listed twice,
// and holding them all would need tens of bytes per blob (design.md
// §20.5). It reads the files in effect once more, only when some pack is
// listed more than once, and keeps 32 bytes per such pack meanwhile.
func (pt *packTable) findAlike(ctx context.Context, r *repo.Repository, names []string) error {
	if !slices.ContainsFunc(pt.packs, func(p packState) bool { return p.listings > 1 }) {
		return nil
	}
	first := map[uint32][32]byte{}
	differ := map[uint32]bool{}
	for _, name := range names {
		f, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			n, ok := pt.find(p.ID)
			if !ok || pt.packs[n].listings < 2 {
				continue
			}
			d := listingDigest(p)
			if seen, ok := first[n]; !ok {
				first[n] = d
			} else if seen != d {
				differ[n] = true
			}
		}
	}
	pt.alike = newBitset(uint64(len(pt.packs)))
	for n := range first {
		if !differ[n] {
			pt.alike.set(uint64(n))
		}
	}
	return nil
}

// listingDigest is a hash of a pack listing's size and entries in offset
// order: equal for listings with the same entries in any order.
func listingDigest(p index.PackBlobs) [32]byte {
	entries := slices.SortedFunc(slices.Values(p.Blobs), func(a, b pack.Entry) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), compareIDs(a.ID, b.ID))
	})
	h := blake3.New()
	var b [8 + 32 + 4*3 + 2]byte
	binary.BigEndian.PutUint64(b[:8], uint64(p.Size))
	_, _ = h.Write(b[:8])
	for _, e := range entries {
		copy(b[8:], e.ID[:])
		binary.BigEndian.PutUint32(b[40:], e.Offset)
		binary.BigEndian.PutUint32(b[44:], e.Length)
		binary.BigEndian.PutUint32(b[48:], e.RawLength)
		b[52], b[53] = byte(e.Type), e.Compression
		_, _ = h.Write(b[8:])
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// streamListings calls fn with every pack listing of the files in effect
// (names, read one at a time), then with the held listings in pack order.
// Each pack comes once: a pack listed more than once is held, its
// listings merged on the first stream. A listing that differs from the
// first stream's (an index file changed under the mark) is an error.
func (pt *packTable) streamListings(ctx context.Context, r *repo.Repository, names []string, fn func(n uint32, p index.PackBlobs) error) error {
	var streamed bitset // alike packs already given to fn in this stream
	if pt.alike != nil {
		streamed = newBitset(uint64(len(pt.packs)))
	}
	for _, name := range names {
		f, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			n, ok := pt.find(p.ID)
			if !ok {
				return fmt.Errorf("index file %s lists pack %s, which it did not list before: run prune again", name, p.ID.Short())
			}
			if pt.alike != nil && pt.alike.has(uint64(n)) {
				if streamed.has(uint64(n)) {
					continue
				}
				streamed.set(uint64(n))
			} else if pt.packs[n].listings > 1 {
				if !pt.merged {
					pt.held[n] = mergeListings(pt.held[n], p)
				}
				continue
			}
			if st := &pt.packs[n]; st.numbered && int(st.entries) != len(p.Blobs) {
				return fmt.Errorf("index file %s lists pack %s differently from before: run prune again", name, p.ID.Short())
			}
			if err := fn(n, p); err != nil {
				return err
			}
		}
	}
	pt.merged = true
	for _, n := range slices.Sorted(maps.Keys(pt.held)) {
		if err := fn(n, pt.held[n]); err != nil {
			return err
		}
	}
	return nil
}

// A listing record is one entry of a pack's listing: blob id, pack number,
// offset, length, and position in the listing, big-endian, so that the
// records of one blob sort by pack number.
const listingSize = 32 + 4 + 4 + 4 + 4

type listingRec struct {
	id     blob.ID
	pack   uint32
	offset uint32
	length uint32
	pos    uint32
}

func putListing(b []byte, e pack.Entry, n uint32, pos int) {
	copy(b, e.ID[:])
	binary.BigEndian.PutUint32(b[32:], n)
	binary.BigEndian.PutUint32(b[36:], e.Offset)
	binary.BigEndian.PutUint32(b[40:], e.Length)
	binary.BigEndian.PutUint32(b[44:], uint32(pos))
}

func getListing(b []byte) listingRec {
	var l listingRec
	copy(l.id[:], b)
	l.pack = binary.BigEndian.Uint32(b[32:])
	l.offset = binary.BigEndian.Uint32(b[36:])
	l.length = binary.BigEndian.Uint32(b[40:])
	l.pos = binary.BigEndian.Uint32(b[44:])
	return l
}

// numberListings numbers every listing entry (a pack's entries get
// consecutive numbers from its first), counts each pack's bytes, and adds
// one listing record per entry to s.
func (pt *packTable) numberListings(ctx context.Context, r *repo.Repository, names []string, s *sorter) error {
	return pt.streamListings(ctx, r, names, func(n uint32, p index.PackBlobs) error { return pt.number(n, p.Blobs, s) })
}

// number numbers the entries of pack n's listing and adds their records
// to s.
func (pt *packTable) number(n uint32, entries []pack.Entry, s *sorter) error {
	st := &pt.packs[n]
	if st.numbered {
		return fmt.Errorf("pack %s is listed twice in one pass over the index: run prune again", st.id.Short())
	}
	st.numbered, st.first, st.entries = true, pt.entries, uint32(len(entries))
	pt.entries += uint64(len(entries))
	rec := make([]byte, listingSize)
	for pos, e := range entries {
		st.all += int64(e.Length)
		putListing(rec, e, n, pos)
		if err := s.add(rec); err != nil {
			return err
		}
	}
	return nil
}

// collectUsed walks the snapshots' trees and adds every blob they reach to
// s. A walk that cannot finish (a tree missing or damaged) is
// ErrIncomplete: whatever the mark would then call unused might not be.
func collectUsed(ctx context.Context, r *repo.Repository, roots []blob.ID, s *sorter) error {
	var addErr error
	err := snapshot.Reachable(ctx, r, roots, func(id blob.ID) {
		if addErr == nil {
			addErr = s.add(id[:])
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrIncomplete, err)
	}
	return addErr
}

// ownerRank orders the copies of a used blob: one in a stored pack that a
// file in effect lists, then one in a stored unindexed pack, then one in
// a pack that is not stored (which fails the mark, in classify).
func (pt *packTable) ownerRank(n uint32) int {
	switch p := &pt.packs[n]; {
	case p.stored() && p.listings > 0:
		return 0
	case p.stored():
		return 1
	default:
		return 2
	}
}

// joinUsed merge-joins the sorted listing records with the sorted used
// blob ids. Each used blob gets exactly one owner among its listed copies
// (the first of the best ownerRank, by pack number, then offset): its
// bytes count as used in that pack, and the owner's entry bit is set so
// that a repack copies it. Safety: a used blob that no listing names
// fails the mark with ErrIncomplete, so nothing is deleted; an owner is a
// stored pack whenever any copy is stored, and a blob counts in one pack
// only, which the new index then locates it in. Both streams are read to
// their ends, so that a damaged run is always noticed (errSortRun).
func joinUsed(listings, used *merged, pt *packTable) error {
	var missing *blob.ID
	err := mergeJoin(listings, used, listingSize, func(id blob.ID, group []byte) error {
		var best listingRec
		bestRank := -1
		for rec := range slices.Chunk(group, listingSize) {
			l := getListing(rec)
			if int(l.pack) >= len(pt.packs) {
				return fmt.Errorf("%w: pack number %d of %d", errSortRun, l.pack, len(pt.packs))
			}
			if rank := pt.ownerRank(l.pack); bestRank < 0 || rank < bestRank {
				best, bestRank = l, rank
			}
		}
		if bestRank < 0 {
			if missing == nil {
				missing = &id
			}
			return nil
		}
		p := &pt.packs[best.pack]
		if best.pos >= p.entries {
			return fmt.Errorf("prune: entry %d of pack %s is past its %d entries", best.pos, p.id.Short(), p.entries)
		}
		p.used += int64(best.length)
		pt.owned.set(p.first + uint64(best.pos))
		return nil
	})
	if err != nil {
		return err
	}
	if missing != nil {
		return fmt.Errorf("%w (blob %s: %w)", ErrIncomplete, missing.Short(), repo.ErrBlobNotIndexed)
	}
	return nil
}

// mergeJoin walks the sorted used blob ids, each once, beside the sorted
// records of size size (each starting with a blob id), and calls fn with
// each used id and its records, concatenated in sort order (empty when no
// record names it; valid only during the call). Records of ids no one
// uses are skipped. Both streams are read to their ends, so that a
// damaged run is always noticed (errSortRun).
func mergeJoin(recs, used *merged, size int, fn func(id blob.ID, group []byte) error) error {
	rec, ok, err := recs.next()
	if err != nil {
		return err
	}
	var (
		last  []byte
		group []byte
	)
	for {
		u, uok, err := used.next()
		if err != nil {
			return err
		}
		if !uok {
			break
		}
		if last != nil && bytes.Equal(last, u) {
			continue
		}
		last = append(last[:0], u...)
		for ok && bytes.Compare(rec[:32], u) < 0 {
			if rec, ok, err = recs.next(); err != nil {
				return err
			}
		}
		group = group[:0]
		for ok && bytes.Equal(rec[:32], u) {
			if len(rec) != size {
				return fmt.Errorf("%w: a record of %d bytes, want %d", errSortRun, len(rec), size)
			}
			group = append(group, rec...)
			if rec, ok, err = recs.next(); err != nil {
				return err
			}
		}
		var id blob.ID
		copy(id[:], u)
		if err := fn(id, group); err != nil {
			return err
		}
	}
	for ok {
		if _, ok, err = recs.next(); err != nil {
			return err
		}
	}
	return nil
}

// findOwners sorts the listings of the files in effect (and the held
// ones) and the blobs the snapshots use, in a temporary directory under
// dir, and joins them: afterwards each pack knows its used and unused
// bytes, and each entry whether it owns a used blob.
func findOwners(ctx context.Context, r *repo.Repository, names []string, roots []blob.ID, pt *packTable, dir string) error {
	tmp, err := os.MkdirTemp(dir, "sort-")
	if err != nil {
		return fmt.Errorf("prune: temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	ls := newSorter(tmp, listingSize, defaultRunBytes)
	if err := pt.numberListings(ctx, r, names, ls); err != nil {
		return err
	}
	pt.owned = newBitset(pt.entries)
	lm, err := ls.sorted() // writes the last run and frees the buffer before the walk fills another
	if err != nil {
		return err
	}
	defer lm.close()
	us := newSorter(tmp, len(blob.ID{}), defaultRunBytes)
	if err := collectUsed(ctx, r, roots, us); err != nil {
		return err
	}
	um, err := us.sorted()
	if err != nil {
		return err
	}
	defer um.close()
	return joinUsed(lm, um, pt)
}

// removeStaleSorts removes the temporary directories of marks and sweeps
// that did not finish (the caller holds the prune lock of dir).
func removeStaleSorts(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "sort-*"))
	for _, d := range old {
		_ = os.RemoveAll(d)
	}
}

// bitset is one bit per listing entry.
type bitset []uint64

func newBitset(n uint64) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i uint64)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (pt *packTable) owns(n uint32, pos int) bool {
	return pt.owned.has(pt.packs[n].first + uint64(pos))
}

// markDecision counts what a mark does with the packs; each pack's fate
// is in the packTable.
type markDecision struct {
	dead      []Pack // indexed, owning nothing
	unused    []Pack // unindexed or unreadable, owning nothing
	repack    []Pack // partly unused: their owned blobs move
	moved     int64  // bytes of the blobs the repacked packs own
	reindexed int    // of the packs kept, those that were in no index
	usedPacks int    // packs kept
	usedBytes int64  // their stored size
}

// classify decides each pack's fate from its counters. Safety: a pack
// leaves the index only when it owns no blob a snapshot uses; a blob
// counts in one pack only (joinUsed), so every used blob stays locatable
// through the new index, in its owner. A used pack that is indexed but
// not stored stops the prune (ErrIncomplete): the repository is already
// damaged, and verify must look first.
func classify(pt *packTable, repackUnused float64) (*markDecision, error) {
	d := &markDecision{}
	for n := range pt.packs {
		p := &pt.packs[n]
		unused := p.all - p.used
		switch {
		case p.listings == 0 && p.used > 0:
			p.fate = fateKeep
			d.reindexed++
			d.usedPacks++
			d.usedBytes += p.size
		case p.listings == 0:
			p.fate = fateUnused
			d.unused = append(d.unused, Pack{ID: p.id, Size: p.size})
		case p.used > 0 && !p.stored():
			return nil, fmt.Errorf("%w (pack %s is indexed and needed, but not stored)", ErrIncomplete, p.id.Short())
		case !p.stored():
			// Indexed, unused and already gone: leaving it out of the new
			// index is all there is to do.
			p.fate = fateGone
		case p.used == 0:
			p.fate = fateDead
			d.dead = append(d.dead, Pack{ID: p.id, Size: p.size})
		case float64(unused) >= repackUnused*float64(p.all):
			p.fate = fateRepack
			d.repack = append(d.repack, Pack{ID: p.id, Size: p.size})
			d.moved += p.used
		default:
			p.fate = fateKeep
			d.usedPacks++
			d.usedBytes += p.size
		}
	}
	return d, nil
}

// keptEntries is the number of listing entries of the packs kept.
func (pt *packTable) keptEntries() uint64 {
	var n uint64
	for i := range pt.packs {
		if pt.packs[i].fate == fateKeep {
			n += uint64(pt.packs[i].entries)
		}
	}
	return n
}

// nothingToDo reports whether the decision leaves the index as it is.
func (d *markDecision) nothingToDo() bool {
	return len(d.dead) == 0 && len(d.unused) == 0 && len(d.repack) == 0 && d.reindexed == 0
}

// summary is the Mark report of the decision.
func (d *markDecision) summary(snapshots int) *Mark {
	return &Mark{Snapshots: snapshots, PacksUsed: d.usedPacks, BytesUsed: d.usedBytes, PacksReindexed: d.reindexed,
		PacksUnused: len(d.dead), BytesUnused: Bytes(d.dead), PacksUnindexed: len(d.unused), BytesUnindexed: Bytes(d.unused),
		PacksRepacked: len(d.repack), BytesRepacked: Bytes(d.repack), BytesMoved: d.moved}
}

// repackOwned copies the blobs each pack to repack owns into new packs,
// which the saver uploads and indexes, one pack read at a time. The saver
// deduplicates against nothing but what it writes: each used blob has one
// owner, so it is copied once, and no blob is skipped because the pack it
// is being moved out of still holds it.
func repackOwned(ctx context.Context, r *repo.Repository, names []string, pt *packTable) error {
	r.ResetIndex()
	s := r.NewSaver(ctx, 0)
	err := pt.streamListings(ctx, r, names, func(n uint32, p index.PackBlobs) error {
		if pt.packs[n].fate != fateRepack {
			return nil
		}
		return repackPack(ctx, r, s, pt.packs[n].id, p.Blobs, func(pos int) bool { return pt.owns(n, pos) })
	})
	if err != nil {
		_ = s.Flush(ctx)
		return err
	}
	if err := s.Flush(ctx); err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	return nil
}

// saver is what repackPack stores blobs through (a *repo.Saver).
type saver interface {
	SaveBlob(t blob.Type, id blob.ID, plaintext []byte) (bool, error)
}

// repackPack reads one pack and saves the entries it owns.
func repackPack(ctx context.Context, r *repo.Repository, s saver, id blob.ID, entries []pack.Entry, owns func(pos int) bool) error {
	h := remote.Handle{Type: remote.Data, Name: id.String()}
	data, err := remote.ReadAll(ctx, r.Backend(), h)
	if err == nil {
		err = repo.CheckName(h, data)
	}
	if err != nil {
		return fmt.Errorf("repack %s: %w; nothing was deleted: run courtbak verify", h, err)
	}
	for pos, e := range entries {
		if !owns(pos) {
			continue
		}
		end := int64(e.Offset) + int64(e.Length)
		if end > int64(len(data)) {
			return fmt.Errorf("repack %s: blob %s lies past the end of the pack: %w; nothing was deleted: run courtbak verify", h, e.ID.Short(), repo.ErrDamaged)
		}
		plain, err := r.OpenBlob(index.Location{Pack: id, Entry: e}, data[e.Offset:end])
		if err != nil {
			return fmt.Errorf("repack %s: blob %s: %w; nothing was deleted: run courtbak verify", h, e.ID.Short(), err)
		}
		if _, err := s.SaveBlob(e.Type, e.ID, plain); err != nil {
			return fmt.Errorf("repack %s: %w", h, err)
		}
	}
	return nil
}

// writeKept stores the listings of the packs kept in bounded index files,
// streaming the files in effect once more, and returns the files' names
// and when the last was stored. Safety: as writeNewIndex.
func writeKept(ctx context.Context, r *repo.Repository, names []string, pt *packTable) ([]blob.ID, time.Time, error) {
	w := &indexWriter{r: r}
	err := pt.streamListings(ctx, r, names, func(n uint32, p index.PackBlobs) error {
		if pt.packs[n].fate != fateKeep {
			return nil
		}
		return w.add(ctx, p)
	})
	if err == nil {
		err = w.flush(ctx)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return w.written, w.last, nil
}

// indexWriter batches pack listings into index files of at most
// packsPerIndexFile packs and, once a file has a pack, blobsPerIndexFile
// blobs.
type indexWriter struct {
	r       *repo.Repository
	packs   []index.PackBlobs
	blobs   int
	written []blob.ID
	last    time.Time
}

func (w *indexWriter) add(ctx context.Context, p index.PackBlobs) error {
	if len(w.packs) > 0 && (len(w.packs) >= packsPerIndexFile || w.blobs+len(p.Blobs) > blobsPerIndexFile) {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	w.packs = append(w.packs, p)
	w.blobs += len(p.Blobs)
	return nil
}

func (w *indexWriter) flush(ctx context.Context) error {
	if len(w.packs) == 0 {
		return nil
	}
	id, err := w.r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: w.packs}))
	if err != nil {
		return fmt.Errorf("write the new index: %w", err)
	}
	crashpoint.Hit(crashpoint.PruneMarkIndex)
	w.written = append(w.written, id)
	w.last = time.Now()
	w.packs, w.blobs = nil, 0
	return nil
}
