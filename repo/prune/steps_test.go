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

// classifyPacks keeps every pack that owns a used blob, counts a used blob
// only in the pack the index locates it in, repacks above the threshold,
// and stops when a needed pack is not stored.
func TestClassifyPacks(t *testing.T) {
	used1, used2, dup, free := id(1), id(2), id(3), id(4)
	packs := map[string]index.PackBlobs{
		"kept":      listing(id(10), 1000, entry(used1, 0, 100), entry(free, 100, 5)),
		"dead":      listing(id(11), 2000, entry(free, 0, 100)),
		"repack":    listing(id(12), 3000, entry(used2, 0, 10), entry(free, 10, 90)),
		"gone":      listing(id(13), 0, entry(free, 0, 10)),
		"dupOwner":  listing(id(14), 4000, entry(dup, 0, 50)),
		"dupOther":  listing(id(15), 5000, entry(dup, 0, 50)),
		"reindex":   listing(id(16), 6000, entry(id(5), 0, 10)),
		"unindexed": listing(id(17), 7000, entry(free, 0, 10)),
	}
	idx := index.New()
	for _, name := range []string{"kept", "dead", "repack", "gone", "dupOwner", "dupOther", "reindex", "unindexed"} {
		idx.AddPack(packs[name].ID, packs[name].Blobs)
	}
	loc, _ := idx.Lookup(dup)
	owner, other := packs["dupOwner"], packs["dupOther"]
	if loc.Pack != owner.ID {
		owner, other = other, owner
	}
	used := usedSet{}
	for _, b := range []blob.ID{used1, used2, dup, id(5)} {
		used.add(b)
	}
	mp := &markPacks{
		indexed: map[blob.ID]index.PackBlobs{},
		unindexed: map[blob.ID]index.PackBlobs{
			packs["reindex"].ID: packs["reindex"], packs["unindexed"].ID: packs["unindexed"]},
		unreadable: []Pack{{ID: id(18), Size: 8000}},
	}
	stored := map[blob.ID]int64{}
	for _, p := range []index.PackBlobs{packs["kept"], packs["dead"], packs["repack"], owner, other} {
		mp.indexed[p.ID] = p
		stored[p.ID] = p.Size
	}
	mp.indexed[packs["gone"].ID] = packs["gone"]

	d, err := classifyPacks(mp, stored, ownership{idx: idx, used: used}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ps []index.PackBlobs) []blob.ID {
		var out []blob.ID
		for _, p := range ps {
			out = append(out, p.ID)
		}
		slices.SortFunc(out, func(a, b blob.ID) int { return int(a[0]) - int(b[0]) })
		return out
	}
	packIDs := func(ps []Pack) []blob.ID {
		var out []blob.ID
		for _, p := range ps {
			out = append(out, p.ID)
		}
		slices.SortFunc(out, func(a, b blob.ID) int { return int(a[0]) - int(b[0]) })
		return out
	}
	sorted := func(in ...blob.ID) []blob.ID {
		slices.SortFunc(in, func(a, b blob.ID) int { return int(a[0]) - int(b[0]) })
		return in
	}
	if got, want := ids(d.keep), sorted(packs["kept"].ID, owner.ID, packs["reindex"].ID); !slices.Equal(got, want) {
		t.Errorf("kept %x, want %x", got, want)
	}
	if got, want := packIDs(d.dead), sorted(packs["dead"].ID, other.ID); !slices.Equal(got, want) {
		t.Errorf("dead %x, want %x (the copy of a used blob the index does not return is unused)", got, want)
	}
	if got, want := ids(d.repack), []blob.ID{packs["repack"].ID}; !slices.Equal(got, want) || d.repack[0].Size != 3000 {
		t.Errorf("repack %v, want %x with its stored size", d.repack, want)
	}
	if got, want := packIDs(d.unused), []blob.ID{packs["unindexed"].ID, id(18)}; !slices.Equal(got, want) {
		t.Errorf("unused %x, want %x", got, want)
	}
	if d.reindexed != 1 || d.usedPacks != 3 || d.usedBytes != 1000+owner.Size+6000 {
		t.Errorf("reindexed %d, used %d packs of %d bytes", d.reindexed, d.usedPacks, d.usedBytes)
	}
	m := d.summary(7, ownership{idx: idx, used: used})
	if m.Snapshots != 7 || m.PacksRepacked != 1 || m.BytesRepacked != 3000 || m.BytesMoved != 10 || m.PacksUnused != 2 || m.PacksUnindexed != 2 {
		t.Errorf("summary %+v", m)
	}

	// A used pack that the index lists but storage lacks stops the mark.
	delete(stored, packs["kept"].ID)
	if _, err := classifyPacks(mp, stored, ownership{idx: idx, used: used}, 0.5); !errors.Is(err, ErrIncomplete) {
		t.Errorf("needed pack not stored: %v, want ErrIncomplete", err)
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

func TestTakeNeeded(t *testing.T) {
	usedHere, usedElsewhere, unused := id(1), id(2), id(3)
	candidates := map[blob.ID]index.PackBlobs{
		id(10): listing(id(10), 1, entry(unused, 0, 1), entry(usedHere, 1, 1)),
		id(11): listing(id(11), 1, entry(usedElsewhere, 0, 1)),
		id(12): listing(id(12), 1, entry(unused, 0, 1)),
	}
	used := usedSet{}
	used.add(usedHere)
	used.add(usedElsewhere)
	inUseNow := index.New()
	inUseNow.AddPack(id(20), []pack.Entry{entry(usedElsewhere, 0, 1)})
	back := takeNeeded(candidates, used, inUseNow)
	if len(back) != 1 || back[0].ID != id(10) {
		t.Errorf("taken back %v: want only the pack with a used blob no pack in effect has", back)
	}
	if _, ok := candidates[id(10)]; ok || len(candidates) != 2 {
		t.Errorf("candidates left %v", candidates)
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

// loadMarkIndex reads the header of a stored pack no index lists, so a
// snapshot that needs it keeps it, and lists as unreadable one whose
// header is garbage.
func TestLoadMarkIndexReadsUnindexedPacks(t *testing.T) {
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
	mp, err := loadMarkIndex(ctx, r, nil, stored) // as if every index file were lost
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := mp.unindexed[loc.Pack]; !ok || len(p.Blobs) != 1 || p.Blobs[0].ID != blobID {
		t.Errorf("unindexed %v: want the saved pack with its blob", mp.unindexed)
	}
	if len(mp.unreadable) != 1 || mp.unreadable[0].ID != id(7) {
		t.Errorf("unreadable %v", mp.unreadable)
	}
	if got, ok := r.Index().Lookup(blobID); !ok || got.Pack != loc.Pack {
		t.Error("the unindexed pack's blob is not in the mark's index")
	}
}

// readCandidateHeaders keeps a candidate whose header cannot be read, and
// leaves one already gone for deletion.
func TestReadCandidateHeaders(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	bad := remote.Handle{Type: remote.Data, Name: id(1).String()}
	if err := be.Save(ctx, bad, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	candidates := map[blob.ID]index.PackBlobs{id(1): {ID: id(1), Size: 7}, id(2): {ID: id(2), Size: 100}}
	if kept := readCandidateHeaders(ctx, r, candidates); kept != 1 {
		t.Errorf("kept %d, want 1", kept)
	}
	if _, ok := candidates[id(1)]; ok {
		t.Error("a candidate whose header cannot be read is still to be deleted")
	}
	if _, ok := candidates[id(2)]; !ok {
		t.Error("a candidate already gone was taken out")
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
