package checker_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/repotest"
)

// indexFileOf returns the index file listing pack, and its contents.
func indexFileOf(t *testing.T, be remote.Backend, r *repo.Repository, pack blob.ID) (remote.Handle, *index.File) {
	t.Helper()
	ctx := context.Background()
	var (
		h remote.Handle
		f *index.File
	)
	_ = be.List(ctx, remote.Index, func(fi remote.ObjectInfo) error {
		plain, err := r.LoadFile(ctx, fi.Handle)
		if err != nil {
			t.Fatal(err)
		}
		x, err := index.Decode(plain)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range x.Packs {
			if p.ID == pack {
				h, f = fi.Handle, x
			}
		}
		return nil
	})
	if f == nil {
		t.Fatalf("no index file lists pack %s", pack.Short())
	}
	return h, f
}

func saveIndex(t *testing.T, r *repo.Repository, f *index.File) remote.Handle {
	t.Helper()
	id, err := r.SaveFile(context.Background(), remote.Index, index.Encode(f))
	if err != nil {
		t.Fatal(err)
	}
	return remote.Handle{Type: remote.Index, Name: id.String()}
}

// problemLines lists every field of the problems that a report shows, for
// comparing two runs' findings exactly.
func problemLines(rep *report.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, strings.Join([]string{p.Kind, p.Object, p.Blob, p.Snapshot, p.Path, p.Message}, " | "))
	}
	for _, p := range rep.Notices {
		out = append(out, strings.Join([]string{"notice", p.Kind, p.Object, p.Message}, " | "))
	}
	return out
}

// A pack listed by two index files is one pack: when it is missing it is
// reported once, naming the first file (in name order) that lists it, and
// the file that needs it is damaged, as when one file listed it.
func TestPackListedByTwoIndexFiles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h1, x := indexFileOf(t, f.be, f.r, f.packs[1])
	var twin index.File
	for _, p := range x.Packs {
		if p.ID == f.packs[1] {
			twin.Packs = append(twin.Packs, p)
		}
	}
	h2 := saveIndex(t, f.r, &twin)
	first := min(h1.String(), h2.String())
	if err := f.be.Remove(ctx, packHandle(f.packs[1])); err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 16} {
		defer checker.SetStreamLimits(batch, 1, 1<<21)()
		rep := check(t, f.be, f.r, nil, checker.Options{})
		h := packHandle(f.packs[1]).String()
		wantKinds(t, rep, checker.KindPackMissing+" "+h, checker.KindFileDamaged+" "+h)
		for _, p := range rep.Problems {
			if p.Kind == checker.KindPackMissing && !strings.Contains(p.Message, first+" lists 1 blobs") {
				t.Errorf("batch %d: %q does not name %s", batch, p.Message, first)
			}
		}
		if rep.Checked.Packs != 3 || rep.Checked.IndexFiles != 4 {
			t.Errorf("batch %d: %d packs, %d index files checked; want 3 and 4", batch, rep.Checked.Packs, rep.Checked.IndexFiles)
		}
	}
}

// An index file that another present file supersedes (a prune's mark
// before its sweep) lends no listing: here the superseding file leaves the
// second file's pack out, so its blob is in no index, though the
// superseded file still lists it.
func TestSupersededIndexFileLendsNoListing(t *testing.T) {
	f := newFixture(t)
	h, x := indexFileOf(t, f.be, f.r, f.packs[1])
	id, _ := blob.ParseID(h.Name)
	mark := index.File{Supersedes: []blob.ID{id}}
	for _, p := range x.Packs {
		if p.ID != f.packs[1] {
			mark.Packs = append(mark.Packs, p)
		}
	}
	saveIndex(t, f.r, &mark)
	for _, batch := range []int{1, 16} {
		defer checker.SetStreamLimits(batch, 2, 1<<21)()
		rep := check(t, f.be, f.r, nil, checker.Options{})
		pk := packHandle(f.packs[1]).String()
		wantKinds(t, rep, checker.KindBlobNotIndexed+" "+pk)
		if len(rep.Notices) != 1 || rep.Notices[0].Kind != checker.KindPackUnindexed || rep.Notices[0].Object != pk {
			t.Errorf("batch %d: notices %+v: want the pack no file in effect lists", batch, rep.Notices)
		}
		if rep.Checked.IndexFiles != 4 || rep.Checked.ObjectsHashed == 0 {
			t.Errorf("batch %d: checked %+v", batch, rep.Checked)
		}
	}
}

// When a pack's header does not match the digest of its listing, the
// listing is read again from its index file and every blob is checked
// where the index places it, as before listings were streamed.
func TestPackHeaderMismatchChecksTheListedBlobs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h, x := indexFileOf(t, f.be, f.r, f.packs[0])
	for i := range x.Packs {
		if x.Packs[i].ID == f.packs[0] {
			x.Packs[i].Blobs[0].Length--
		}
	}
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	saveIndex(t, f.r, x)
	rep := check(t, f.be, f.r, nil, checker.Options{ReadData: true})
	pk := packHandle(f.packs[0]).String()
	wantKinds(t, rep, checker.KindPackHeader+" "+pk, checker.KindBlobDamaged+" "+pk, checker.KindFileDamaged+" "+pk)
	for _, p := range rep.Problems {
		if p.Kind == checker.KindBlobDamaged && p.Blob != f.data[0].String() {
			t.Errorf("damaged blob %s, want %s", p.Blob, f.data[0])
		}
	}
}

// With index files read one at a time, a temporary index of runs of 7
// records merged in several levels, and a tree cache that holds no tree,
// verify of a repository of many packs finds the same damage, missing
// pack and files as with the default limits, and reads every blob.
func TestStreamedIndexFindsTheSameDamage(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.NewLocal(t, repo.Options{PackSize: 4096})
	be := r.Backend()
	for i := range 3 {
		manyBlobsFrom(t, r, i*1500, 1500)
	}
	var nPacks, indexFiles int
	_ = be.List(ctx, remote.Data, func(remote.ObjectInfo) error { nPacks++; return nil })
	_ = be.List(ctx, remote.Index, func(remote.ObjectInfo) error { indexFiles++; return nil })
	if nPacks < 40 || indexFiles < 3 {
		t.Fatalf("%d packs in %d index files: too few to stream", nPacks, indexFiles)
	}
	var packs []remote.Handle // of blobs 100 and 2500
	for _, i := range []int{100, 2500} {
		loc, ok := r.Index().Lookup(r.BlobID(manyBlobPlain(i)))
		if !ok {
			t.Fatalf("blob %d is not indexed", i)
		}
		packs = append(packs, packHandle(loc.Pack))
	}
	flip(t, be, packs[0], 200)
	if err := be.Remove(ctx, packs[1]); err != nil {
		t.Fatal(err)
	}
	opts := checker.Options{ReadData: true}
	want := check(t, be, r, nil, opts)
	restore := checker.SetStreamLimits(1, 7, 1)
	got := check(t, be, r, nil, opts)
	restore()
	for _, pk := range packs {
		if !slices.ContainsFunc(got.Problems, func(p report.Problem) bool { return p.Kind == checker.KindFileDamaged && p.Object == pk.String() }) {
			t.Errorf("no damaged file names %s", pk)
		}
	}
	if g, w := problemLines(got), problemLines(want); !slices.Equal(g, w) {
		t.Errorf("streamed findings differ:\n got %q\nwant %q", g, w)
	}
	if got.Checked.BlobsRead != want.Checked.BlobsRead || got.Checked.Trees != want.Checked.Trees || got.Checked.Files != 6 {
		t.Errorf("checked %+v, want %+v", got.Checked, want.Checked)
	}
	if !slices.Contains(got.Copies[0].Damaged, packs[0].String()) || !slices.Contains(got.Copies[0].Missing, packs[1].String()) {
		t.Errorf("damaged %q, missing %q", got.Copies[0].Damaged, got.Copies[0].Missing)
	}
}

// A file that two snapshots share is damaged in both when its pack is
// missing: verify skips the lookups only for contents found usable.
func TestSharedDamagedFileIsReportedInEverySnapshot(t *testing.T) {
	f := newFixture(t)
	tr, err := f.r.LoadTree(context.Background(), f.sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	sn2 := f.saveSnapshot(tr.Nodes)
	if err := f.be.Remove(context.Background(), packHandle(f.packs[1])); err != nil {
		t.Fatal(err)
	}
	rep := check(t, f.be, f.r, nil, checker.Options{})
	pk := packHandle(f.packs[1]).String()
	wantKinds(t, rep, checker.KindPackMissing+" "+pk, checker.KindFileDamaged+" "+pk, checker.KindFileDamaged+" "+pk)
	var snaps []string
	for _, p := range rep.Problems {
		if p.Kind == checker.KindFileDamaged {
			snaps = append(snaps, p.Snapshot)
		}
	}
	if !slices.Contains(snaps, f.sn.ID.String()) || !slices.Contains(snaps, sn2.ID.String()) {
		t.Errorf("damaged file reported in snapshots %q, want %s and %s", snaps, f.sn.ID.Short(), sn2.ID.Short())
	}
	for _, s := range rep.Snapshots {
		if s.Status != report.SnapshotDamaged {
			t.Errorf("snapshot %s is %s", s.ID, s.Status)
		}
	}
}

// Verify writes its temporary index under the repository's state
// directory and leaves nothing there once done.
func TestVerifyLeavesNoTemporaryIndex(t *testing.T) {
	cache := t.TempDir()
	r, dir := repotest.NewLocal(t, repo.Options{CacheDir: cache, PackSize: 4096})
	manyBlobsFrom(t, r, 0, 500)
	rep := check(t, r.Backend(), r, nil, checker.Options{ReadData: true})
	if len(rep.Problems) > 0 || rep.Checked.BlobsRead < 500 {
		t.Fatalf("%d problems, %d blobs read in %s", len(rep.Problems), rep.Checked.BlobsRead, dir)
	}
	left, _ := filepath.Glob(filepath.Join(r.StateDir(), "spill-*"))
	if len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}
