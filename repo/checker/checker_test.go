package checker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// fixture is a small repository in memory: one snapshot of /rec with two
// files, each in a data pack of its own, and their tree in a tree pack.
type fixture struct {
	t     *testing.T
	be    *mem.Backend
	r     *repo.Repository
	sn    *snapshot.Snapshot
	data  []blob.ID // the files' data blobs
	packs []blob.ID // their packs, in the same order
}

func randomBytes(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, be: mem.New(nil)}
	f.r = repotest.Init(t, f.be, repo.Options{})
	var nodes []snapshot.Node
	for i, name := range []string{"a.mp4", "b.mp4"} {
		content := randomBytes(uint64(i), 20<<10)
		id := f.r.BlobID(content)
		s := f.r.NewSaver(ctx, 1) // one saver per file: a pack each
		if _, err := s.SaveBlob(blob.Data, id, content); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		loc, ok := f.r.Index().Lookup(id)
		if !ok {
			t.Fatal("saved blob is not indexed")
		}
		f.data, f.packs = append(f.data, id), append(f.packs, loc.Pack)
		sum := blob.ID(crypto.Hash(content))
		nodes = append(nodes, snapshot.Node{Name: name, Type: snapshot.NodeFile, Mode: 0o644,
			Size: uint64(len(content)), Content: []blob.ID{id}, BLAKE3: &sum})
	}
	f.sn = f.saveSnapshot(nodes)
	return f
}

// saveSnapshot stores a tree of nodes and a snapshot of it.
func (f *fixture) saveSnapshot(nodes []snapshot.Node) *snapshot.Snapshot {
	f.t.Helper()
	ctx := context.Background()
	tb, err := snapshot.EncodeTree(&snapshot.Tree{Nodes: nodes})
	if err != nil {
		f.t.Fatal(err)
	}
	s := f.r.NewSaver(ctx, 1)
	if _, err := s.SaveBlob(blob.Tree, f.r.BlobID(tb), tb); err != nil {
		f.t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		f.t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), Hostname: "court1",
		Paths: []string{"/rec"}, Tree: f.r.BlobID(tb)}
	if err := f.r.SaveSnapshot(ctx, sn); err != nil {
		f.t.Fatal(err)
	}
	return sn
}

func packHandle(id blob.ID) remote.Handle { return remote.Handle{Type: remote.Data, Name: id.String()} }

// flip damages one byte of a stored object, at offset from its start.
func flip(t *testing.T, be remote.Backend, h remote.Handle, offset int) {
	t.Helper()
	ctx := context.Background()
	b, err := remote.ReadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0x10
	if err := be.Save(ctx, h, b); err != nil {
		t.Fatal(err)
	}
}

// check runs Check keyed (r not nil) or keyless on the primary be.
func check(t *testing.T, be remote.Backend, r *repo.Repository, replicas []remote.Backend, opts checker.Options) *report.Report {
	t.Helper()
	var targets []checker.Target
	for _, rb := range replicas {
		targets = append(targets, checker.Target{Location: rb.Location(), Backend: rb})
	}
	rep, err := checker.Check(context.Background(), checker.Target{Location: be.Location(), Backend: be}, r, targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// kinds lists the problems as "kind object" lines, sorted, for comparison.
func kinds(rep *report.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, strings.TrimSpace(p.Kind+" "+p.Object))
	}
	slices.Sort(out)
	return out
}

func wantKinds(t *testing.T, rep *report.Report, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := kinds(rep); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
		for _, p := range rep.Problems {
			t.Logf("%+v", p)
		}
	}
}

func TestHealthyRepositoryHasNoProblemsAndAFullManifest(t *testing.T) {
	f := newFixture(t)
	for _, readData := range []bool{false, true} {
		rep := check(t, f.be, f.r, nil, checker.Options{ReadData: readData, Manifest: report.ManifestChoice{All: true}})
		wantKinds(t, rep)
		if len(rep.Snapshots) != 1 || rep.Snapshots[0].Status != report.SnapshotIntact || len(rep.Snapshots[0].Manifest) != 2 {
			t.Fatalf("read data %v: snapshots %+v", readData, rep.Snapshots)
		}
		if m := rep.Snapshots[0].Manifest[0]; m.Path != "/a.mp4" || m.Size != 20<<10 || len(m.BLAKE3) != 64 {
			t.Errorf("manifest entry %+v", m)
		}
		if rep.Copies[0].Status != report.StatusIntact {
			t.Errorf("primary status %q", rep.Copies[0].Status)
		}
	}
	if rep := check(t, f.be, nil, nil, checker.Options{ReadData: true}); len(rep.Problems) != 0 || rep.Copies[0].Hashed == 0 {
		t.Errorf("keyless check of a healthy repository: %q, %d objects hashed", kinds(rep), rep.Copies[0].Hashed)
	}
}

// A pack a snapshot needs that is gone is missing, and the snapshot that
// needs it is damaged at the file that uses it.
func TestMissingPackIsReportedWithTheFileThatNeedsIt(t *testing.T) {
	f := newFixture(t)
	h := packHandle(f.packs[1])
	if err := f.be.Remove(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	rep := check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep, checker.KindPackMissing+" "+h.String(), checker.KindFileDamaged+" "+h.String())
	if rep.Snapshots[0].Status != report.SnapshotDamaged || !slices.Contains(rep.Copies[0].Missing, h.String()) {
		t.Errorf("snapshot %q, missing %q", rep.Snapshots[0].Status, rep.Copies[0].Missing)
	}
	for _, p := range rep.Problems {
		if p.Kind == checker.KindFileDamaged && p.Path != "/b.mp4" {
			t.Errorf("damaged file reported at %q, want /b.mp4", p.Path)
		}
	}
}

// A flipped byte inside a data pack is only seen when data is read: then
// the pack is damaged (its bytes do not match its name) and so is the file.
func TestDamagedPackIsFoundByReadingData(t *testing.T) {
	f := newFixture(t)
	h := packHandle(f.packs[0])
	flip(t, f.be, h, 100)
	wantKinds(t, check(t, f.be, f.r, nil, checker.Options{}))
	rep := check(t, f.be, f.r, nil, checker.Options{ReadData: true})
	if got := kinds(rep); !slices.Contains(got, checker.KindPackDamaged+" "+h.String()) || !slices.Contains(got, checker.KindFileDamaged+" "+h.String()) {
		t.Errorf("problems %q: want the pack and the file damaged", got)
	}
	if !slices.Contains(rep.Copies[0].Damaged, h.String()) {
		t.Errorf("damaged objects %q", rep.Copies[0].Damaged)
	}
	// Keyless, the pack's bytes do not match its name either.
	rep = check(t, f.be, nil, nil, checker.Options{ReadData: true})
	if got := kinds(rep); !slices.Contains(got, checker.KindObjectDamaged+" "+h.String()) {
		t.Errorf("keyless problems %q: want the pack damaged", got)
	}
}

// A snapshot that refers to a blob no index lists is damaged at that path,
// and the check says whether a stored pack holds the blob.
func TestBlobInNoIndex(t *testing.T) {
	f := newFixture(t)
	ghost := blob.ID{0xde, 0xad}
	sum := blob.ID{1}
	sn := f.saveSnapshot([]snapshot.Node{{Name: "ghost.mp4", Type: snapshot.NodeFile, Size: 1, Content: []blob.ID{ghost}, BLAKE3: &sum}})
	rep := check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep, checker.KindBlobNotIndexed)
	p := rep.Problems[0]
	if p.Snapshot != sn.ID.String() || p.Path != "/ghost.mp4" || p.Blob != ghost.String() || !strings.Contains(p.Message, "no stored pack holds it") {
		t.Errorf("problem %+v", p)
	}
}

// A pack whose index file is gone but that no snapshot needs is a notice,
// not a problem; once a snapshot needs its blob, the blob is unindexed and
// the problem names the pack that holds it.
func TestUnindexedPack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before := map[string]bool{}
	_ = f.be.List(ctx, remote.Index, func(fi remote.ObjectInfo) error { before[fi.Name] = true; return nil })
	content := randomBytes(9, 10<<10)
	id := f.r.BlobID(content)
	s := f.r.NewSaver(ctx, 1)
	if _, err := s.SaveBlob(blob.Data, id, content); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loc, _ := f.r.Index().Lookup(id)
	_ = f.be.List(ctx, remote.Index, func(fi remote.ObjectInfo) error {
		if !before[fi.Name] {
			return f.be.Remove(ctx, fi.Handle)
		}
		return nil
	})
	rep := check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep)
	if len(rep.Notices) != 1 || rep.Notices[0].Kind != checker.KindPackUnindexed || rep.Notices[0].Object != packHandle(loc.Pack).String() {
		t.Errorf("notices %+v: want the unindexed pack", rep.Notices)
	}

	sum := blob.ID(crypto.Hash(content))
	f.saveSnapshot([]snapshot.Node{{Name: "late.mp4", Type: snapshot.NodeFile, Size: uint64(len(content)), Content: []blob.ID{id}, BLAKE3: &sum}})
	rep = check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep, checker.KindBlobNotIndexed+" "+packHandle(loc.Pack).String())
}

// A snapshot object whose bytes were altered is damaged; the others are
// still checked.
func TestDamagedSnapshot(t *testing.T) {
	f := newFixture(t)
	other := f.saveSnapshot([]snapshot.Node{})
	h := remote.Handle{Type: remote.Snapshot, Name: f.sn.ID.String()}
	flip(t, f.be, h, 40)
	rep := check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep, checker.KindSnapshotDamaged+" "+h.String())
	statuses := map[string]string{}
	for _, s := range rep.Snapshots {
		statuses[s.ID] = s.Status
	}
	if statuses[f.sn.ID.String()] != report.SnapshotUnreadable || statuses[other.ID.String()] != report.SnapshotIntact {
		t.Errorf("snapshot statuses %v", statuses)
	}
}

// A replica is compared with the primary: what it lacks is missing, what
// it has in excess is extra (not a problem), and with data read, a copy
// that does not match its name is damaged.
func TestReplicaDifferences(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	replica := mem.New(nil)
	for _, typ := range remote.AllTypes {
		_ = f.be.List(ctx, typ, func(fi remote.ObjectInfo) error {
			b, err := remote.ReadAll(ctx, f.be, fi.Handle)
			if err != nil {
				return err
			}
			return replica.Save(ctx, fi.Handle, b)
		})
	}
	missing, damaged := packHandle(f.packs[0]), packHandle(f.packs[1])
	extra := remote.Handle{Type: remote.Data, Name: fmt.Sprintf("%064x", 7)}
	if err := replica.Remove(ctx, missing); err != nil {
		t.Fatal(err)
	}
	if err := replica.Save(ctx, extra, []byte("left over")); err != nil {
		t.Fatal(err)
	}
	flip(t, replica, damaged, 10)

	rep := check(t, f.be, f.r, []remote.Backend{replica}, checker.Options{ReadData: true})
	wantKinds(t, rep, checker.KindObjectMissing+" "+missing.String(), checker.KindObjectDamaged+" "+damaged.String())
	rc := rep.Copies[1]
	if rc.Status != report.StatusProblems || !slices.Equal(rc.Missing, []string{missing.String()}) ||
		!slices.Equal(rc.Damaged, []string{damaged.String()}) || !slices.Equal(rc.Extra, []string{extra.String()}) {
		t.Errorf("replica %+v", rc)
	}
	for _, p := range rep.Problems {
		if p.Copy != replica.Location() {
			t.Errorf("problem %+v is not at the replica", p)
		}
	}
	if rep.Copies[0].Status != report.StatusIntact {
		t.Errorf("primary status %q", rep.Copies[0].Status)
	}
}

// Repair replaces a pack missing at the primary with the replica's intact
// copy, checks again, and reports the problem as repaired.
func TestRepairRestoresAMissingPackFromTheReplica(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	replica := mem.New(nil)
	for _, typ := range remote.AllTypes {
		_ = f.be.List(ctx, typ, func(fi remote.ObjectInfo) error {
			b, _ := remote.ReadAll(ctx, f.be, fi.Handle)
			return replica.Save(ctx, fi.Handle, b)
		})
	}
	h := packHandle(f.packs[0])
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	rep := check(t, f.be, f.r, []remote.Backend{replica}, checker.Options{Repair: true, ReadData: true})
	if len(rep.Repairs) != 1 || rep.Repairs[0].Object != h.String() || rep.Repairs[0].From != replica.Location() {
		t.Fatalf("repairs %+v", rep.Repairs)
	}
	for _, p := range rep.Problems {
		if !p.Repaired {
			t.Errorf("problem left after repair: %+v", p)
		}
	}
	if rep.Copies[0].Status != report.StatusRepaired {
		t.Errorf("primary status %q", rep.Copies[0].Status)
	}
	if _, err := f.be.Stat(ctx, h); err != nil {
		t.Errorf("repaired pack: %v", err)
	}
	wantKinds(t, check(t, f.be, f.r, nil, checker.Options{ReadData: true}))
}

// An index file whose bytes were altered is damaged, and the blobs only it
// listed are reported where snapshots need them, with the pack that holds
// them, so that repair knows what to restore.
func TestDamagedIndexFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// The index file that lists the first data pack.
	var idx remote.Handle
	_ = f.be.List(ctx, remote.Index, func(fi remote.ObjectInfo) error {
		plain, err := f.r.LoadFile(ctx, fi.Handle)
		if err == nil && strings.Contains(string(plain), string(f.packs[0][:])) {
			idx = fi.Handle
		}
		return nil
	})
	if idx.Name == "" {
		t.Fatal("no index file lists the first pack")
	}
	flip(t, f.be, idx, 30)
	rep := check(t, f.be, f.r, nil, checker.Options{})
	wantKinds(t, rep, checker.KindIndexDamaged+" "+idx.String(), checker.KindBlobNotIndexed+" "+packHandle(f.packs[0]).String())
}
