package prune

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/repotest"
)

// Unit tests of the named steps of mark and sweep; prune_test.go tests
// the whole runs against the safety properties of docs/design.md §20.

func id(n byte) blob.ID { return blob.ID{n, 0x5a} }

func entry(blobID blob.ID, offset, length uint32) pack.Entry {
	return pack.Entry{Type: blob.Data, ID: blobID, Offset: offset, Length: length, RawLength: length}
}

func listing(packID blob.ID, size int64, entries ...pack.Entry) index.PackBlobs {
	return index.PackBlobs{ID: packID, Size: size, Blobs: entries}
}

func TestRefuseForeignMark(t *testing.T) {
	if err := refuseForeignMark(nil, false); err != nil {
		t.Errorf("no superseded files: %v", err)
	}
	err := refuseForeignMark([]string{"ab"}, false)
	if !errors.Is(err, ErrForeignMark) || !errors.Is(err, repo.ErrLocked) {
		t.Errorf("superseded files without a plan: %v, want ErrForeignMark and ErrLocked", err)
	}
	if err := refuseForeignMark([]string{"ab"}, true); err != nil {
		t.Errorf("--adopt: %v", err)
	}
}

// joinScenario numbers the listings of pt's packs (by pack id), sorts
// them and the used blobs in runs of a few records, and joins them.
func joinScenario(t *testing.T, pt *packTable, listings map[blob.ID][]pack.Entry, used []blob.ID) error {
	t.Helper()
	dir := t.TempDir()
	ls := newSorter(dir, listingSize, 3*listingSize)
	for n := range pt.packs {
		if l, ok := listings[pt.packs[n].id]; ok {
			if err := pt.number(uint32(n), l, ls); err != nil {
				t.Fatal(err)
			}
		}
	}
	pt.owned = newBitset(pt.entries)
	us := newSorter(dir, 32, 2*32)
	for _, u := range append(slices.Clone(used), used...) { // each twice: the walk repeats blobs
		if err := us.add(u[:]); err != nil {
			t.Fatal(err)
		}
	}
	lm, err := ls.sorted()
	if err != nil {
		t.Fatal(err)
	}
	defer lm.close()
	um, err := us.sorted()
	if err != nil {
		t.Fatal(err)
	}
	defer um.close()
	return joinUsed(lm, um, pt)
}

// ownedEntries returns the listing positions of pack id that own a blob.
func ownedEntries(pt *packTable, id blob.ID) []int {
	n, _ := pt.find(id)
	var out []int
	for pos := range int(pt.packs[n].entries) {
		if pt.owns(n, pos) {
			out = append(out, pos)
		}
	}
	return out
}

// classify keeps every pack that owns a used blob, counts a used blob
// only in its one owner, repacks above the threshold, and stops when a
// needed pack is not stored; joinUsed gives each used blob exactly one
// owner, never a pack that is not stored while a stored copy exists.
func TestClassifyPacks(t *testing.T) {
	used1, used2, dup, free, dupGone := id(1), id(2), id(3), id(4), id(6)
	packs := map[string]index.PackBlobs{
		"kept":      listing(id(10), 1000, entry(used1, 0, 100), entry(free, 100, 5)),
		"dead":      listing(id(11), 2000, entry(free, 0, 100)),
		"repack":    listing(id(12), 3000, entry(used2, 0, 10), entry(free, 10, 90)),
		"gone":      listing(id(13), 0, entry(free, 0, 10), entry(dupGone, 10, 10)),
		"dupOwner":  listing(id(14), 4000, entry(dup, 0, 50)),
		"dupOther":  listing(id(15), 5000, entry(dup, 0, 50), entry(dupGone, 50, 100)),
		"reindex":   listing(id(16), 6000, entry(id(5), 0, 10)),
		"unindexed": listing(id(17), 7000, entry(free, 0, 10)),
	}
	owner, other := packs["dupOwner"], packs["dupOther"]
	var listed []blob.ID
	stored := map[blob.ID]int64{id(18): 8000}
	listings := map[blob.ID][]pack.Entry{}
	for _, name := range []string{"kept", "dead", "repack", "gone", "dupOwner", "dupOther"} {
		p := packs[name]
		listed = append(listed, p.ID)
		if name != "gone" {
			stored[p.ID] = p.Size
		}
		listings[p.ID] = p.Blobs
	}
	for _, name := range []string{"reindex", "unindexed"} {
		stored[packs[name].ID] = packs[name].Size
		listings[packs[name].ID] = packs[name].Blobs
	}
	pt := newPackTable(listed, stored)
	n, _ := pt.find(id(18))
	pt.packs[n].unreadable = true
	if err := joinScenario(t, pt, listings, []blob.ID{used1, used2, dup, id(5), dupGone}); err != nil {
		t.Fatal(err)
	}
	if got := ownedEntries(pt, owner.ID); !slices.Equal(got, []int{0}) {
		t.Errorf("first copy of a duplicated blob owns entries %v, want [0]", got)
	}
	if got := ownedEntries(pt, other.ID); !slices.Equal(got, []int{1}) {
		t.Errorf("second copy owns entries %v, want only [1] (the stored copy of a blob whose other copy is not stored)", got)
	}
	if got := ownedEntries(pt, packs["gone"].ID); len(got) != 0 {
		t.Errorf("a pack that is not stored owns entries %v", got)
	}
	d, err := classify(pt, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	fates := map[blob.ID]fate{}
	for _, p := range pt.packs {
		fates[p.id] = p.fate
	}
	want := map[string]fate{"kept": fateKeep, "dead": fateDead, "repack": fateRepack, "gone": fateGone,
		"dupOwner": fateKeep, "dupOther": fateKeep, "reindex": fateKeep, "unindexed": fateUnused}
	for name, f := range want {
		if fates[packs[name].ID] != f {
			t.Errorf("%s: fate %d, want %d", name, fates[packs[name].ID], f)
		}
	}
	packIDs := func(ps []Pack) []blob.ID {
		var out []blob.ID
		for _, p := range ps {
			out = append(out, p.ID)
		}
		slices.SortFunc(out, func(a, b blob.ID) int { return int(a[0]) - int(b[0]) })
		return out
	}
	if got, want := packIDs(d.dead), []blob.ID{packs["dead"].ID}; !slices.Equal(got, want) {
		t.Errorf("dead %x, want %x", got, want)
	}
	if got := d.repack; len(got) != 1 || got[0].ID != packs["repack"].ID || got[0].Size != 3000 {
		t.Errorf("repack %v, want %s with its stored size", got, packs["repack"].ID.Short())
	}
	if got, want := packIDs(d.unused), []blob.ID{packs["unindexed"].ID, id(18)}; !slices.Equal(got, want) {
		t.Errorf("unused %x, want %x", got, want)
	}
	if d.reindexed != 1 || d.usedPacks != 4 || d.usedBytes != 1000+owner.Size+other.Size+6000 {
		t.Errorf("reindexed %d, used %d packs of %d bytes", d.reindexed, d.usedPacks, d.usedBytes)
	}
	m := d.summary(7)
	if m.Snapshots != 7 || m.PacksRepacked != 1 || m.BytesRepacked != 3000 || m.BytesMoved != 10 || m.PacksUnused != 1 || m.PacksUnindexed != 2 {
		t.Errorf("summary %+v", m)
	}

	// Without its stored copy, the duplicate is owned by no stored pack,
	// and the mark stops.
	pt = newPackTable([]blob.ID{packs["gone"].ID}, nil)
	if err := joinScenario(t, pt, map[blob.ID][]pack.Entry{packs["gone"].ID: packs["gone"].Blobs}, []blob.ID{dupGone}); err != nil {
		t.Fatal(err)
	}
	if _, err := classify(pt, 0.5); !errors.Is(err, ErrIncomplete) {
		t.Errorf("needed pack not stored: %v, want ErrIncomplete", err)
	}
}

// A used blob that no listing names stops the mark; the listing stream is
// still read to its end.
func TestJoinUsedMissingBlob(t *testing.T) {
	pt := newPackTable([]blob.ID{id(10)}, map[blob.ID]int64{id(10): 100})
	err := joinScenario(t, pt, map[blob.ID][]pack.Entry{id(10): {entry(id(1), 0, 10), entry(id(3), 10, 10)}}, []blob.ID{id(1), id(2), id(3)})
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, repo.ErrBlobNotIndexed) {
		t.Errorf("used blob listed nowhere: %v, want ErrIncomplete", err)
	}
	if got := ownedEntries(pt, id(10)); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("owned entries %v, want both", got)
	}
}

func TestCheckPlanCurrent(t *testing.T) {
	written, superseded := id(1), id(2)
	plan := &Plan{Written: []blob.ID{written}, Superseded: []blob.ID{superseded}}
	files := map[string]*index.File{written.String(): {}, superseded.String(): {}}
	inEffect := map[string]*index.File{written.String(): {}}
	if err := checkPlanCurrent(plan, files, inEffect); err != nil {
		t.Errorf("current plan: %v", err)
	}
	if err := checkPlanCurrent(plan, map[string]*index.File{superseded.String(): {}}, map[string]*index.File{}); !errors.Is(err, errStalePlan) {
		t.Errorf("a written file is gone: %v, want errStalePlan", err)
	}
	inEffect[superseded.String()] = &index.File{}
	if err := checkPlanCurrent(plan, files, inEffect); !errors.Is(err, errStalePlan) {
		t.Errorf("a superseded file is in effect: %v, want errStalePlan", err)
	}
}

func TestSweepCandidatesLeaveOutPacksIndexedAgain(t *testing.T) {
	plan := &Plan{Dead: []Pack{{ID: id(1), Size: 1}, {ID: id(2), Size: 2}}, Unindexed: []Pack{{ID: id(3), Size: 3}}}
	inEffect := map[string]*index.File{"x": {Packs: []index.PackBlobs{listing(id(2), 2)}}}
	got := sweepCandidates(plan, inEffect)
	if len(got) != 2 || got[id(1)].Size != 1 || got[id(3)].Size != 3 {
		t.Errorf("candidates %v: want packs 1 and 3, not 2, which is indexed again", got)
	}
}

func TestSupersedingFilesAreDeletedLast(t *testing.T) {
	a, b, c := id(1), id(2), id(3)
	files := map[string]*index.File{a.String(): {}, b.String(): {Supersedes: []blob.ID{a}}, c.String(): {}}
	if got := supersedingLast(files, []blob.ID{b, a, c}); !slices.Equal(got, []blob.ID{a, c, b}) {
		t.Errorf("order %x", got)
	}
}

func TestWaitStoreGap(t *testing.T) {
	start := time.Now()
	if err := waitStoreGap(context.Background(), time.Time{}); err != nil || time.Since(start) > storeGap/2 {
		t.Errorf("nothing stored: waited %v, %v", time.Since(start), err)
	}
	start = time.Now()
	if err := waitStoreGap(context.Background(), start); err != nil || time.Since(start) < storeGap {
		t.Errorf("just stored: waited only %v (%v), want at least %v", time.Since(start), err, storeGap)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitStoreGap(ctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// refusing is storage that refuses to delete the objects named in it.
type refusing struct {
	remote.Backend
	refuse map[remote.Handle]bool
	saves  error // every Save of an index file fails with it, when set
}

func (b *refusing) Remove(ctx context.Context, h remote.Handle) error {
	if b.refuse[h] {
		return fmt.Errorf("remove %s: object is locked", h)
	}
	return b.Backend.Remove(ctx, h)
}

func (b *refusing) Save(ctx context.Context, h remote.Handle, data []byte) error {
	if b.saves != nil && h.Type == remote.Index {
		return b.saves
	}
	return b.Backend.Save(ctx, h, data)
}

func newRefusing(t *testing.T) (*refusing, *repo.Repository) {
	be := &refusing{Backend: mem.New(nil), refuse: map[remote.Handle]bool{}}
	return be, repotest.Init(t, be, repo.Options{CacheDir: t.TempDir()})
}

func TestDeletePacksCountsRefusals(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	for _, n := range []byte{1, 2} {
		if err := be.Save(ctx, remote.Handle{Type: remote.Data, Name: id(n).String()}, []byte("pack")); err != nil {
			t.Fatal(err)
		}
	}
	be.refuse[remote.Handle{Type: remote.Data, Name: id(2).String()}] = true
	sw := &Sweep{}
	candidates := map[blob.ID]index.PackBlobs{id(1): {ID: id(1), Size: 4}, id(2): {ID: id(2), Size: 4}, id(3): {ID: id(3), Size: 9}}
	if err := deletePacks(ctx, r, candidates, sw); err != nil {
		t.Fatal(err)
	}
	if sw.PacksDeleted != 2 || sw.BytesDeleted != 13 || sw.PacksNotDeleted != 1 {
		t.Errorf("sweep %+v: want packs 1 and 3 (already gone) deleted, 2 refused", sw)
	}
	if _, err := be.Stat(ctx, remote.Handle{Type: remote.Data, Name: id(2).String()}); err != nil {
		t.Errorf("refused pack: %v", err)
	}
}

func TestDeleteIndexFilesStopsAtAFailure(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	order := []blob.ID{id(1), id(2), id(3)}
	for _, n := range order {
		if err := be.Save(ctx, remote.Handle{Type: remote.Index, Name: n.String()}, []byte("index")); err != nil {
			t.Fatal(err)
		}
	}
	be.refuse[remote.Handle{Type: remote.Index, Name: id(2).String()}] = true
	sw := &Sweep{}
	if err := deleteIndexFiles(ctx, r, order, sw); err == nil || sw.IndexFilesDeleted != 1 {
		t.Errorf("deleted %d, %v: want one deleted and the failure reported", sw.IndexFilesDeleted, err)
	}
	if _, err := be.Stat(ctx, remote.Handle{Type: remote.Index, Name: id(3).String()}); err != nil {
		t.Errorf("a file after the failure was deleted: %v", err)
	}
}

// The plan is stored before the superseding index file: when that file
// cannot be stored, the plan left behind is stale for the sweep, which
// then deletes nothing.
func TestCommitMarkStoresThePlanFirst(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	dir := t.TempDir()
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := id(9)
	if err := be.Save(ctx, remote.Handle{Type: remote.Index, Name: old.String()}, nil); err != nil {
		t.Fatal(err)
	}
	be.saves = errors.New("storage full")
	if err := commitMark(ctx, r, dir, &Plan{Superseded: []blob.ID{old}}); err == nil {
		t.Fatal("commit with a failing index save succeeded")
	}
	plan, err := loadPlan(dir)
	if err != nil || plan == nil {
		t.Fatalf("plan after the failed commit: %v, %v", plan, err)
	}
	files[old.String()] = &index.File{}
	if err := checkPlanCurrent(plan, files, files); !errors.Is(err, errStalePlan) {
		t.Errorf("sweep check of that plan: %v, want errStalePlan", err)
	}

	be.saves = nil
	plan = &Plan{Superseded: []blob.ID{old}}
	if err := commitMark(ctx, r, dir, plan); err != nil {
		t.Fatal(err)
	}
	saved, err := loadPlan(dir)
	if err != nil || len(saved.Written) != 1 || saved.Marked.IsZero() {
		t.Fatalf("plan after the commit: %+v, %v", saved, err)
	}
	f, err := r.LoadFile(ctx, remote.Handle{Type: remote.Index, Name: saved.Written[0].String()})
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := index.Decode(f); err != nil || !slices.Equal(dec.Supersedes, []blob.ID{old}) {
		t.Errorf("superseding file %+v, %v", dec, err)
	}
}

// readUnindexed reads the header of a stored pack no index lists, so a
// snapshot that needs it keeps it, and marks as unreadable one whose
// header is garbage; loadWalkIndex then finds the pack's blobs.
func TestReadUnindexedPacks(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	data := []byte("a recording's chunk")
	blobID := r.BlobID(data)
	s := r.NewSaver(ctx, 1)
	if _, err := s.SaveBlob(blob.Data, blobID, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loc, _ := r.Index().Lookup(blobID)
	garbage := remote.Handle{Type: remote.Data, Name: id(7).String()}
	if err := be.Save(ctx, garbage, []byte("not a pack")); err != nil {
		t.Fatal(err)
	}
	stored, err := listPacks(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	pt := newPackTable(nil, stored) // as if every index file were lost
	if err := readUnindexed(ctx, r, pt); err != nil {
		t.Fatal(err)
	}
	n, _ := pt.find(loc.Pack)
	if p, ok := pt.held[n]; !ok || len(p.Blobs) != 1 || p.Blobs[0].ID != blobID {
		t.Errorf("held %v: want the saved pack with its blob", pt.held)
	}
	g, _ := pt.find(id(7))
	if !pt.packs[g].unreadable || pt.packs[n].unreadable {
		t.Errorf("unreadable: garbage %v, pack %v", pt.packs[g].unreadable, pt.packs[n].unreadable)
	}
	for _, name := range []string{"index files", "nothing"} {
		if name == "nothing" {
			if err := r.Backend().List(ctx, remote.Index, func(fi remote.ObjectInfo) error {
				return r.Backend().Remove(ctx, fi.Handle)
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := loadWalkIndex(ctx, r, pt); err != nil {
			t.Fatal(err)
		}
		if got, ok := r.Index().Lookup(blobID); !ok || got.Pack != loc.Pack {
			t.Errorf("with %s stored: the unindexed pack's blob is not in the walk's index", name)
		}
	}
}

// The mark's index files are bounded in packs and in blobs: packs of many
// small blobs do not make one huge object, and every kept pack is listed
// exactly once.
func TestWriteNewIndexBoundsFiles(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, repo.Options{})
	var keep []index.PackBlobs
	var n uint32
	packOf := func(blobs int) index.PackBlobs {
		n++
		p := index.PackBlobs{ID: blob.ID{byte(n), byte(n >> 8), byte(n >> 16), 1}, Size: 1 << 20}
		for i := range blobs {
			p.Blobs = append(p.Blobs, entry(blob.ID{byte(n), byte(n >> 8), byte(n >> 16), 2, byte(i), byte(i >> 8), byte(i >> 16)}, uint32(i*64), 64))
		}
		return p
	}
	for range 3 {
		keep = append(keep, packOf(40000)) // two do not fit one file
	}
	for range packsPerIndexFile + 10 {
		keep = append(keep, packOf(1))
	}
	written, _, err := writeNewIndex(ctx, r, keep)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[blob.ID]int{}
	for _, name := range written {
		plain, err := r.LoadFile(ctx, remote.Handle{Type: remote.Index, Name: name.String()})
		if err != nil {
			t.Fatal(err)
		}
		f, err := index.Decode(plain)
		if err != nil {
			t.Fatal(err)
		}
		blobs := 0
		for _, p := range f.Packs {
			listed[p.ID]++
			blobs += len(p.Blobs)
		}
		if len(f.Packs) > packsPerIndexFile || (blobs > blobsPerIndexFile && len(f.Packs) > 1) {
			t.Errorf("index file %s: %d packs, %d blobs", name.Short(), len(f.Packs), blobs)
		}
	}
	if len(written) < 3 || len(listed) != len(keep) {
		t.Fatalf("%d files list %d packs, want at least 3 files (no two large packs share one) and %d packs", len(written), len(listed), len(keep))
	}
	for id, times := range listed {
		if times != 1 {
			t.Errorf("pack %s listed %d times", id.Short(), times)
		}
	}
}

// newPackTable holds each pack once, sorted, with how many listings in
// effect name it and its stored size (-1 when it is not stored).
func TestNewPackTable(t *testing.T) {
	pt := newPackTable([]blob.ID{id(3), id(1), id(3), id(4)}, map[blob.ID]int64{id(1): 10, id(2): 20, id(3): 30})
	type row struct {
		id       blob.ID
		size     int64
		listings uint32
	}
	var got []row
	for _, p := range pt.packs {
		got = append(got, row{p.id, p.size, p.listings})
	}
	want := []row{{id(1), 10, 1}, {id(2), 20, 0}, {id(3), 30, 2}, {id(4), -1, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("pack table %v, want %v", got, want)
	}
	if n, ok := pt.find(id(3)); !ok || n != 2 {
		t.Errorf("find: %d %v", n, ok)
	}
	if _, ok := pt.find(id(5)); ok {
		t.Error("found a pack that is neither listed nor stored")
	}
}

// A pack that two files in effect list is numbered once, with the union
// of their listings (an entry both list counts once); every later pass
// sees the same listings.
func TestStreamListingsMergesAPackListedTwice(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, repo.Options{})
	p, q := id(10), id(11)
	e1, e2, e3, e4 := entry(id(1), 0, 10), entry(id(2), 10, 20), entry(id(3), 30, 40), entry(id(4), 0, 5)
	var names []string
	for _, f := range []*index.File{
		{Packs: []index.PackBlobs{listing(p, 100, e1, e2)}},
		{Packs: []index.PackBlobs{listing(p, 100, e2, e3), listing(q, 50, e4)}},
	} {
		name, err := r.SaveFile(ctx, remote.Index, index.Encode(f))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name.String())
	}
	slices.Sort(names)
	listed, err := listedPacks(ctx, r, names)
	if err != nil {
		t.Fatal(err)
	}
	pt := newPackTable(listed, map[blob.ID]int64{p: 100, q: 50})
	s := newSorter(t.TempDir(), listingSize, 2*listingSize)
	if err := pt.numberListings(ctx, r, names, s); err != nil {
		t.Fatal(err)
	}
	n, _ := pt.find(p)
	if st := pt.packs[n]; st.listings != 2 || st.entries != 3 || st.all != 70 {
		t.Errorf("pack listed twice: %d listings, %d entries, %d bytes; want 2, 3, 70", st.listings, st.entries, st.all)
	}
	if pt.entries != 4 || s.records != 4 {
		t.Errorf("%d entries numbered, %d records; want 4", pt.entries, s.records)
	}
	var seen []int
	if err := pt.streamListings(ctx, r, names, func(n uint32, l index.PackBlobs) error {
		seen = append(seen, len(l.Blobs))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []int{1, 3}) {
		t.Errorf("a later pass saw listings of %v blobs, want [1 3] (q from its file, then p merged)", seen)
	}
}

// After a mark that stopped before its superseding file, the packs it kept
// are listed twice, alike. findAlike lets each be streamed once from its
// first listing instead of held in memory; a pack whose listings differ
// is still held and merged.
func TestFindAlikeStreamsPacksListedTwiceAlikeWithoutHoldingThem(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, repo.Options{})
	p, q, u := id(10), id(11), id(12)
	e1, e2, e3, e4 := entry(id(1), 0, 10), entry(id(2), 10, 20), entry(id(3), 30, 40), entry(id(4), 0, 5)
	var names []string
	for _, f := range []*index.File{
		{Packs: []index.PackBlobs{listing(p, 100, e1, e2), listing(u, 40, e3)}},
		{Packs: []index.PackBlobs{listing(p, 100, e2, e1), listing(q, 50, e4)}}, // p alike, in another order
		{Packs: []index.PackBlobs{listing(u, 40, e3, e4)}},                      // u differs
	} {
		name, err := r.SaveFile(ctx, remote.Index, index.Encode(f))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name.String())
	}
	slices.Sort(names)
	listed, err := listedPacks(ctx, r, names)
	if err != nil {
		t.Fatal(err)
	}
	pt := newPackTable(listed, map[blob.ID]int64{p: 100, q: 50, u: 40})
	if err := pt.findAlike(ctx, r, names); err != nil {
		t.Fatal(err)
	}
	s := newSorter(t.TempDir(), listingSize, 2*listingSize)
	if err := pt.numberListings(ctx, r, names, s); err != nil {
		t.Fatal(err)
	}
	np, _ := pt.find(p)
	nu, _ := pt.find(u)
	if _, held := pt.held[np]; held {
		t.Error("a pack listed twice alike is held in memory")
	}
	if _, held := pt.held[nu]; !held {
		t.Error("a pack whose listings differ is not held")
	}
	if st := pt.packs[np]; st.entries != 2 || st.all != 30 {
		t.Errorf("pack listed twice alike: %d entries, %d bytes; want 2, 30", st.entries, st.all)
	}
	if st := pt.packs[nu]; st.entries != 2 || st.all != 45 {
		t.Errorf("pack listed differently: %d entries, %d bytes; want the union's 2, 45", st.entries, st.all)
	}
	if pt.entries != 5 || s.records != 5 {
		t.Errorf("%d entries numbered, %d records; want 5", pt.entries, s.records)
	}
	got := map[blob.ID]int{}
	if err := pt.streamListings(ctx, r, names, func(n uint32, l index.PackBlobs) error {
		got[pt.packs[n].id] += len(l.Blobs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got[p] != 2 || got[q] != 1 || got[u] != 2 {
		t.Errorf("a later pass streamed %v entries by pack; want p 2, q 1, u 2, each pack once", got)
	}
}
