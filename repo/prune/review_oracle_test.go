package prune

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// Random pack tables (packs listed or not, stored or not, sharing blobs,
// a used blob sometimes listed nowhere), sorted in runs of a few records,
// joined and classified, checked against the safety properties of
// design.md §20.2 step 3 computed directly: every used blob has exactly
// one owner entry, in a pack that is kept or repacked, stored whenever a
// copy is stored and indexed whenever a stored indexed copy exists; no
// pack that leaves the index owns anything; a pack's used bytes are its
// owned entries' lengths; the mark stops exactly when a used blob is
// listed nowhere or has no stored copy.
func TestJoinAndClassifyAgainstAnOracle(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		nBlobs := 1 + rng.IntN(30)
		blobs := make([]blob.ID, nBlobs)
		for i := range blobs {
			blobs[i] = blob.ID{byte(i), byte(i >> 8), 0xb1}
		}
		nPacks := 1 + rng.IntN(12)
		var listed []blob.ID
		stored := map[blob.ID]int64{}
		listings := map[blob.ID][]pack.Entry{}
		indexed := map[blob.ID]bool{}
		for p := range nPacks {
			pid := blob.ID{0xf0, byte(p), byte(rng.IntN(256))}
			var entries []pack.Entry
			off := uint32(0)
			for range rng.IntN(6) {
				b := blobs[rng.IntN(nBlobs)]
				l := uint32(1 + rng.IntN(100))
				entries = append(entries, entry(b, off, l))
				off += l
			}
			isIndexed := rng.IntN(4) != 0
			isStored := !isIndexed || rng.IntN(5) != 0
			if isIndexed {
				listed = append(listed, pid)
				indexed[pid] = true
			}
			if isStored {
				stored[pid] = int64(off) + 100
			}
			listings[pid] = entries
		}
		var used []blob.ID
		for _, b := range blobs {
			if rng.IntN(2) == 0 {
				used = append(used, b)
			}
		}
		pt := newPackTable(listed, stored)
		err := joinScenario(t, pt, listings, used)

		// The oracle.
		type copyOf struct {
			pack          blob.ID
			stored, index bool
		}
		copies := map[blob.ID][]copyOf{}
		for pid, entries := range listings {
			_, st := stored[pid]
			for _, e := range entries {
				copies[e.ID] = append(copies[e.ID], copyOf{pid, st, indexed[pid]})
			}
		}
		wantIncomplete := false
		for _, u := range used {
			if len(copies[u]) == 0 {
				wantIncomplete = true
			}
		}
		if wantIncomplete {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("seed %d: a used blob listed nowhere: %v, want ErrIncomplete", seed, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		_, cerr := classify(pt, 0.3)
		wantStop := false
		for _, u := range used {
			anyStored := false
			for _, c := range copies[u] {
				anyStored = anyStored || c.stored
			}
			wantStop = wantStop || !anyStored
		}
		if wantStop != (cerr != nil) {
			t.Fatalf("seed %d: classify %v, want a stop: %v", seed, cerr, wantStop)
		}
		if cerr != nil {
			continue
		}
		owners := map[blob.ID]int{}
		for n := range pt.packs {
			p := &pt.packs[n]
			entries := listings[p.id]
			var usedBytes int64
			for pos, e := range entries {
				if !pt.owns(uint32(n), pos) {
					continue
				}
				owners[e.ID]++
				usedBytes += int64(e.Length)
				if p.fate != fateKeep && p.fate != fateRepack {
					t.Fatalf("seed %d: pack %x owns blob %x but has fate %d", seed, p.id[:3], e.ID[:2], p.fate)
				}
				anyStored, anyStoredIndexed := false, false
				for _, c := range copies[e.ID] {
					anyStored = anyStored || c.stored
					anyStoredIndexed = anyStoredIndexed || (c.stored && c.index)
				}
				if (anyStored && !p.stored()) || (anyStoredIndexed && (!p.stored() || p.listings == 0)) {
					t.Fatalf("seed %d: blob %x owned by pack %x (stored %v, listings %d) although a better copy exists", seed, e.ID[:2], p.id[:3], p.stored(), p.listings)
				}
			}
			if usedBytes != p.used {
				t.Fatalf("seed %d: pack %x counts %d used bytes, owns %d", seed, p.id[:3], p.used, usedBytes)
			}
		}
		for _, u := range used {
			if owners[u] != 1 {
				t.Fatalf("seed %d: used blob %x has %d owners", seed, u[:2], owners[u])
			}
		}
		if len(owners) > len(used) {
			t.Fatalf("seed %d: %d blobs owned, %d used", seed, len(owners), len(used))
		}
	}
}

// The sort's run files live in the cache directory, which design.md §24
// does not trust. A run rewritten as a consistent shorter run (records
// dropped, its trailer recomputed), or replaced by a copy of another run
// of the same sort, would silently drop used blobs from the mark (their
// packs then look unused and are deleted): both make the merge fail.
func TestSorterRefusesAForgedRun(t *testing.T) {
	fill := func(t *testing.T) *sorter {
		s := newSorter(t.TempDir(), 8, 8*10)
		for i := range 25 {
			if err := s.add(binary.BigEndian.AppendUint64(nil, uint64(i*7%25+1))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.spill(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// forge rewrites run 1 as the given records with a trailer computed
	// the way a checksum-only trailer is.
	forge := func(t *testing.T, s *sorter, recs []byte) {
		out := slices.Clone(recs)
		out = binary.BigEndian.AppendUint64(out, uint64(len(recs)/8))
		out = binary.BigEndian.AppendUint32(out, crc32.Checksum(recs, crc32.MakeTable(crc32.Castagnoli)))
		if err := os.WriteFile(s.runs[1], out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func(s *sorter) (int, error) {
		m, err := s.sorted()
		if err != nil {
			return 0, err
		}
		defer m.close()
		n := 0
		for {
			_, ok, err := m.next()
			if err != nil || !ok {
				return n, err
			}
			n++
		}
	}
	t.Run("shortened with its trailer recomputed", func(t *testing.T) {
		s := fill(t)
		b, err := os.ReadFile(s.runs[1])
		if err != nil {
			t.Fatal(err)
		}
		forge(t, s, b[:3*8]) // 3 of its 10 records
		if n, err := readAll(s); !errors.Is(err, errSortRun) {
			t.Errorf("a forged run was merged (%d records, error %v), want errSortRun", n, err)
		}
	})
	t.Run("replaced by another run", func(t *testing.T) {
		s := fill(t)
		b, err := os.ReadFile(s.runs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.runs[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		if n, err := readAll(s); !errors.Is(err, errSortRun) {
			t.Errorf("a run replaced by another was merged (%d records, error %v), want errSortRun", n, err)
		}
	})
}
