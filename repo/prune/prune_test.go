package prune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/courtbak/courtbak/repo/index"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/prune"
	"github.com/courtbak/courtbak/repo/replicate"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
	"github.com/courtbak/courtbak/testdata/gen"
)

// fixture is one repository with a clock the test moves, and a cache
// directory shared by every Repository opened on it (one host).
type fixture struct {
	t     *testing.T
	dir   string
	cache string
	mu    sync.Mutex
	now   time.Time
	// packSize is small by default, so that each file fills packs of its own.
	packSize int
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "repo"), cache: t.TempDir(),
		now: time.Date(2026, 11, 2, 22, 0, 0, 0, time.UTC), packSize: 1 << 20}
	be, err := remote.OpenLocal(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	repotest.Init(t, be, f.options())
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) options() repo.Options {
	return repo.Options{Now: f.clock, CacheDir: f.cache, PackSize: f.packSize}
}

// open opens the repository with its index loaded, as a new process would.
func (f *fixture) open() *repo.Repository {
	f.t.Helper()
	return f.openAt(f.dir)
}

// openAt opens the copy of the repository in dir (a replica).
func (f *fixture) openAt(dir string) *repo.Repository {
	f.t.Helper()
	be, err := remote.OpenLocal(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.openWith(be)
}

// openWith opens the repository through be.
func (f *fixture) openWith(be remote.Backend) *repo.Repository {
	f.t.Helper()
	r, err := repo.Open(context.Background(), be, []byte("pw"), f.options())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) backup(r *repo.Repository, src string) *snapshot.Snapshot {
	f.t.Helper()
	ctx := context.Background()
	res, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "court-a"})
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Snapshot
}

func (f *fixture) prune(opts prune.Options) *prune.Result {
	f.t.Helper()
	res, err := prune.Run(context.Background(), f.open(), opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// packs returns the stored packs and their sizes.
func (f *fixture) packs() map[string]int64 {
	out := map[string]int64{}
	_ = filepath.WalkDir(filepath.Join(f.dir, "data"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				out[d.Name()] = fi.Size()
			}
		}
		return nil
	})
	return out
}

// packBytes is the total size of data/.
func (f *fixture) packBytes() int64 {
	var n int64
	for _, size := range f.packs() {
		n += size
	}
	return n
}

// gone returns the packs of before that are no longer stored, and their bytes.
func (f *fixture) gone(before map[string]int64) (packs int, bytes int64) {
	now := f.packs()
	for name, size := range before {
		if _, ok := now[name]; !ok {
			packs++
			bytes += size
		}
	}
	return packs, bytes
}

// mustRestore restores sn with a freshly opened repository and compares
// every file with the source, byte for byte.
func (f *fixture) mustRestore(sn *snapshot.Snapshot, src string) {
	f.t.Helper()
	target := f.t.TempDir()
	if _, err := restorer.Restore(context.Background(), f.open(), sn, restorer.Options{Target: target}); err != nil {
		f.t.Fatalf("restore %s: %v", sn.ID.Short(), err)
	}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			f.t.Errorf("restored %s differs from the source", p)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// sources writes two trees that share one recording: old holds shared.mp4
// and gone.mp4, kept holds shared.mp4 and new.wav.
func sources(t *testing.T) (old, kept string) {
	base := t.TempDir()
	old, kept = filepath.Join(base, "old"), filepath.Join(base, "kept")
	for _, d := range []string{old, kept} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := gen.WriteMedia(filepath.Join(d, "shared.mp4"), 6<<20, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := gen.WriteMedia(filepath.Join(old, "gone.mp4"), 12<<20, 2); err != nil {
		t.Fatal(err)
	}
	if err := gen.WriteMedia(filepath.Join(kept, "new.wav"), 4<<20, 3); err != nil {
		t.Fatal(err)
	}
	return old, kept
}

// forgottenOld is where most tests start: old and kept backed up, in that
// order, and old's snapshot forgotten.
func forgottenOld(t *testing.T) (f *fixture, old, kept string, snOld, snKept *snapshot.Snapshot) {
	f = newFixture(t)
	old, kept = sources(t)
	snOld, snKept = f.backupBoth(old, kept)
	f.forget(snOld)
	return f, old, kept, snOld, snKept
}

// backupBoth backs up old and then kept, as two snapshots.
func (f *fixture) backupBoth(old, kept string) (snOld, snKept *snapshot.Snapshot) {
	f.t.Helper()
	r := f.open()
	return f.backup(r, old), f.backup(r, kept)
}

// forget removes sn's snapshot object.
func (f *fixture) forget(sn *snapshot.Snapshot) {
	f.t.Helper()
	if err := f.open().RemoveSnapshot(context.Background(), sn.ID); err != nil {
		f.t.Fatal(err)
	}
}

func TestPruneWithoutGraceDeletesOnlyWhatNoSnapshotNeeds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old, kept := sources(t)
	snOld, snKept := f.backupBoth(old, kept)
	before := f.packs()
	f.forget(snOld)

	var steps []string
	res := f.prune(prune.Options{Grace: 0, Progress: func(s string) { steps = append(steps, s) }})
	m := res.Marked
	if len(steps) < 4 || !strings.HasPrefix(steps[0], "mark:") || !strings.HasPrefix(steps[len(steps)-1], "sweep: deleting") {
		t.Errorf("progress steps %q", steps)
	}
	if m == nil || m.PacksUnused+m.PacksRepacked == 0 || res.Swept == nil {
		t.Fatalf("prune found nothing to delete: %+v", res)
	}
	packs, bytes := f.gone(before)
	if res.Swept.PacksDeleted != m.PacksUnused+m.PacksRepacked || packs != res.Swept.PacksDeleted || bytes != res.Swept.BytesDeleted {
		t.Errorf("swept %d packs (%d B); marked %d unused and %d repacked; %d packs (%d B) are gone",
			res.Swept.PacksDeleted, res.Swept.BytesDeleted, m.PacksUnused, m.PacksRepacked, packs, bytes)
	}
	after := f.packBytes()
	// gone.mp4 is 12 MiB of incompressible media that no snapshot needs.
	var total int64
	for _, size := range before {
		total += size
	}
	if freed := total - after; freed < 11<<20 {
		t.Errorf("prune freed %d bytes, want at least 11 MiB", freed)
	}
	f.mustRestore(snKept, kept)

	again := f.prune(prune.Options{Grace: 0})
	if again.Swept != nil || again.Marked == nil || again.Marked.PacksUnused != 0 || again.Marked.PacksUnindexed != 0 || again.Marked.PacksRepacked != 0 {
		t.Errorf("a second prune still found work: %+v %+v", again.Marked, again.Swept)
	}
	if f.packBytes() != after {
		t.Error("a prune with nothing to do changed data/")
	}
}

func TestPruneDeletesOnlyAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	f, _, kept, _, snKept := forgottenOld(t)
	before := f.packs()

	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	marked := res.Marked.PacksUnused + res.Marked.PacksRepacked
	if res.Marked == nil || marked == 0 || res.Swept != nil {
		t.Fatalf("first prune should only mark: %+v", res)
	}
	if want := f.clock().Add(prune.DefaultGrace); !res.Marked.Due.Equal(want) {
		t.Errorf("due %s, want %s", res.Marked.Due, want)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Fatalf("the mark deleted %d packs", n)
	}
	f.mustRestore(snKept, kept)

	f.advance(prune.DefaultGrace - time.Hour)
	res2 := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res2.Pending == nil || res2.Swept != nil || res2.Pending.Packs != marked {
		t.Fatalf("prune before the grace period ended: %+v", res2)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Fatalf("%d packs deleted before the grace period ended", n)
	}

	f.advance(2 * time.Hour)
	res3 := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res3.Swept == nil || res3.Swept.PacksDeleted != marked {
		t.Fatalf("sweep after the grace period: %+v", res3.Swept)
	}
	if n, b := f.gone(before); n != marked || b != res.Marked.BytesUnused+res.Marked.BytesRepacked {
		t.Errorf("%d packs (%d B) deleted, the mark found %d unused or repacked (%d B)", n, b, marked, res.Marked.BytesUnused+res.Marked.BytesRepacked)
	}
	f.mustRestore(snKept, kept)
}

// A backup that loaded the index before the mark deduplicates against packs
// the mark found unused. It must index them again before its snapshot is
// stored, and the sweep must then keep them.
func TestBackupAcrossAMarkKeepsWhatItNeeds(t *testing.T) {
	t.Parallel()
	f, old, _, _, _ := forgottenOld(t)

	running := f.open() // the backup has loaded the index...
	mark := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if mark.Marked == nil || mark.Marked.PacksUnused+mark.Marked.PacksRepacked == 0 {
		t.Fatalf("nothing marked: %+v", mark)
	}
	f.advance(time.Hour)
	snAgain := f.backup(running, old) // ...and stores its snapshot after the mark
	if snAgain.Summary.BytesAdded > 1<<20 {
		t.Errorf("the backup uploaded %d bytes: it should have deduplicated against the marked packs", snAgain.Summary.BytesAdded)
	}
	f.mustRestore(snAgain, old) // complete at once, not only after the sweep

	f.advance(prune.DefaultGrace)
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept == nil || res.Swept.PacksKept == 0 {
		t.Fatalf("the sweep kept nothing: %+v", res.Swept)
	}
	f.mustRestore(snAgain, old)
}

// A snapshot that reaches marked packs and is stored after the mark without
// indexing them again (an older courtbak, or the moment between the mark's
// listing and its superseding file) is found by the sweep, which keeps and
// indexes what it needs.
func TestSweepKeepsPacksThatNewSnapshotsNeed(t *testing.T) {
	t.Parallel()
	f, old, _, snOld, _ := forgottenOld(t)
	f.prune(prune.Options{Grace: prune.DefaultGrace})

	revived := *snOld
	if err := f.open().SaveSnapshot(context.Background(), &revived); err != nil {
		t.Fatal(err)
	}
	f.advance(prune.DefaultGrace + time.Minute)
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept == nil || res.Swept.PacksKept == 0 || res.Swept.PacksDeleted != 0 {
		t.Fatalf("sweep: %+v", res.Swept)
	}
	f.mustRestore(&revived, old)
}

func TestBackupRefusesWhenAMarkOutlivedItsIndex(t *testing.T) {
	t.Parallel()
	f, old, kept, _, _ := forgottenOld(t)

	running := f.open()
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	f.advance(repo.MaxBackupAge + time.Minute)
	ctx := context.Background()
	_, err := archiver.Run(ctx, ctx, running, archiver.Options{Paths: []string{old}, Host: "court-a"})
	if !errors.Is(err, repo.ErrPrunedDuringBackup) {
		t.Fatalf("backup error %v, want ErrPrunedDuringBackup", err)
	}
	snaps, err := f.open().Snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots after the refused backup: %d, %v; want the one kept", len(snaps), err)
	}
	// Without a mark, a backup may take as long as it needs.
	f.advance(prune.DefaultGrace)
	f.prune(prune.Options{Grace: prune.DefaultGrace}) // sweeps, then marks nothing new
	slow := f.open()
	f.advance(3 * repo.MaxBackupAge)
	f.mustRestore(f.backup(slow, kept), kept)
}

func TestMarkIndexesUnindexedPacksThatSnapshotsNeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, kept := sources(t)
	sn := f.backup(f.open(), kept)
	// Lose every index file, as a crash of a broken storage might.
	idxDir := filepath.Join(f.dir, "index")
	entries, err := os.ReadDir(idxDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(idxDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	before := f.packs()
	res := f.prune(prune.Options{Grace: 0})
	if res.Marked == nil || res.Marked.PacksReindexed == 0 || res.Marked.PacksUnindexed != 0 {
		t.Fatalf("mark: %+v", res.Marked)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Errorf("prune deleted %d packs a snapshot needs", n)
	}
	f.mustRestore(sn, kept)
}

func TestPruneRefusesToRunTwiceOrOverAnotherMark(t *testing.T) {
	t.Parallel()
	f, _, kept, _, snKept := forgottenOld(t)

	held, err := repo.LockExclusive(filepath.Join(prune.Dir(f.open()), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prune.Run(context.Background(), f.open(), prune.Options{Grace: 0}); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("prune while another holds the lock: %v, want ErrLocked", err)
	}
	held.Close()

	f.prune(prune.Options{Grace: prune.DefaultGrace})
	if err := os.Remove(filepath.Join(prune.Dir(f.open()), "plan.json")); err != nil {
		t.Fatal(err)
	}
	before := f.packBytes()
	_, err = prune.Run(context.Background(), f.open(), prune.Options{Grace: 0})
	if !errors.Is(err, prune.ErrForeignMark) {
		t.Fatalf("prune over a mark without its plan: %v, want ErrForeignMark", err)
	}
	if f.packBytes() != before {
		t.Fatal("a refused prune deleted data")
	}
	res := f.prune(prune.Options{Grace: 0, Adopt: true})
	if res.Swept == nil || res.Swept.PacksDeleted == 0 {
		t.Fatalf("adopting the mark deleted nothing: %+v", res)
	}
	f.mustRestore(snKept, kept)
	if again := f.prune(prune.Options{Grace: 0}); again.Swept != nil {
		t.Errorf("superseded index files left behind after adopting: %+v", again)
	}
}

func TestPruneRejectsAGraceShorterThanABackup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := prune.Run(context.Background(), f.open(), prune.Options{Grace: time.Hour})
	if err == nil {
		t.Fatal("a one-hour grace period was accepted")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f, _, _, _, _ := forgottenOld(t)
	before := f.packBytes()
	idx, _ := os.ReadDir(filepath.Join(f.dir, "index"))
	res := f.prune(prune.Options{Grace: 0, DryRun: true})
	if res.Marked == nil || res.Marked.PacksUnused+res.Marked.PacksRepacked == 0 {
		t.Fatalf("dry run found nothing: %+v", res)
	}
	idx2, _ := os.ReadDir(filepath.Join(f.dir, "index"))
	if f.packBytes() != before || len(idx2) != len(idx) {
		t.Error("a dry run changed the repository")
	}
	if _, err := os.Stat(filepath.Join(prune.Dir(f.open()), "plan.json")); err == nil {
		t.Error("a dry run left a plan")
	}
}

// With large packs, a forgotten recording shares packs with one that is
// kept. Those packs are repacked: the kept blobs move to new packs and the
// old packs go, so the forgotten recording's space is freed all the same.
func TestPruneRepacksPartlyUsedPacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.packSize = 64 << 20
	old, kept := sources(t)
	snOld, snKept := f.backupBoth(old, kept)
	f.forget(snOld)
	before := f.packBytes()

	var steps []string
	res := f.prune(prune.Options{Grace: 0, Progress: func(s string) { steps = append(steps, s) }})
	m := res.Marked
	if len(steps) < 4 || !strings.HasPrefix(steps[0], "mark:") || !strings.HasPrefix(steps[len(steps)-1], "sweep: deleting") {
		t.Errorf("progress steps %q", steps)
	}
	if m == nil || m.PacksRepacked == 0 || m.BytesMoved < 6<<20 || m.BytesMoved > 7<<20 {
		t.Fatalf("want shared.mp4's 6 MiB moved out of the forgotten backup's pack: %+v", m)
	}
	if freed := before - f.packBytes(); freed < 11<<20 {
		t.Errorf("prune freed %d bytes, want gone.mp4's 12 MiB", freed)
	}
	f.mustRestore(snKept, kept)
	again := f.prune(prune.Options{Grace: 0, RepackUnused: 0.01})
	if again.Marked == nil || again.Marked.PacksRepacked != 0 || again.Swept != nil {
		t.Errorf("the repacked packs are not fully used: %+v", again.Marked)
	}
}

// A mark that stored its plan but not its superseding index file (killed
// in between) took no effect: the sweep must find its plan stale, delete
// nothing, and mark afresh.
func TestStalePlanDeletesNothing(t *testing.T) {
	t.Parallel()
	f, _, kept, _, snKept := forgottenOld(t)
	f.prune(prune.Options{Grace: prune.DefaultGrace})

	// Remove the superseding file: the newest index file without packs.
	ctx := context.Background()
	r := f.open()
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for name, fi := range files {
		if len(fi.Supersedes) > 0 {
			if err := os.Remove(filepath.Join(f.dir, "index", name)); err != nil {
				t.Fatal(err)
			}
			removed++
		}
	}
	if removed != 1 {
		t.Fatalf("%d superseding index files, want 1", removed)
	}
	before := f.packs()
	f.advance(prune.DefaultGrace + time.Hour)
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept != nil || res.Marked == nil || res.Marked.PacksUnused == 0 {
		t.Fatalf("a stale plan: want no sweep and a fresh mark, got %+v", res)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Fatalf("a stale plan deleted %d packs", n)
	}
	f.mustRestore(snKept, kept)
}

// A snapshot whose data is gone makes prune refuse: with part of the
// snapshots unreadable, everything else they need would look unused.
func TestPruneRefusesWhenSnapshotsNeedMissingData(t *testing.T) {
	t.Parallel()
	f, _, _, _, snKept := forgottenOld(t)
	loc, ok := f.open().Index().Lookup(snKept.Tree)
	if !ok {
		t.Fatal("root tree not indexed")
	}
	treePack := loc.Pack.String()
	if err := os.Remove(filepath.Join(f.dir, "data", treePack[:2], treePack)); err != nil {
		t.Fatal(err)
	}
	before := f.packs()
	_, err := prune.Run(context.Background(), f.open(), prune.Options{Grace: 0})
	if !errors.Is(err, prune.ErrIncomplete) {
		t.Fatalf("prune with a snapshot's trees gone: %v, want ErrIncomplete", err)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Errorf("a refused prune deleted %d packs", n)
	}
}

// A replica has its primary's repository id, and is pruned on its own with
// the same policy: its plan must not be the primary's.
func TestReplicaIsPrunedWithItsOwnPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old, kept := sources(t)
	snOld, snKept := f.backupBoth(old, kept)
	ctx := context.Background()
	replicaDir := filepath.Join(t.TempDir(), "replica")
	primaryBE, _ := remote.OpenLocal(f.dir)
	replicaBE, err := remote.OpenLocal(replicaDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Run(ctx, ctx, primaryBE, replicaBE, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	f.forget(snOld)
	if err := f.openAt(replicaDir).RemoveSnapshot(ctx, snOld.ID); err != nil {
		t.Fatal(err)
	}
	if res := f.prune(prune.Options{Grace: prune.DefaultGrace}); res.Marked == nil || res.Marked.PacksUnused == 0 {
		t.Fatalf("primary: %+v", res)
	}
	res, err := prune.Run(ctx, f.openAt(replicaDir), prune.Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending != nil || res.Swept == nil || res.Swept.PacksDeleted == 0 {
		t.Fatalf("replica pruned with the primary's plan, or not at all: %+v", res)
	}
	if prune.Dir(f.open()) == prune.Dir(f.openAt(replicaDir)) {
		t.Error("primary and replica share a prune directory")
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, f.openAt(replicaDir), snKept, restorer.Options{Target: target}); err != nil {
		t.Fatalf("restore from the pruned replica: %v", err)
	}
	// The primary's own plan is still there, and sweeps when due.
	f.advance(prune.DefaultGrace + time.Minute)
	if res := f.prune(prune.Options{Grace: prune.DefaultGrace}); res.Swept == nil || res.Swept.PacksDeleted == 0 {
		t.Errorf("primary's sweep: %+v", res)
	}
	f.mustRestore(snKept, kept)
}

// A backup in progress during the mark has packs that no index names yet
// and no snapshot uses. They are planned as unindexed, and kept by the
// sweep because the backup has indexed them by then.
func TestSweepKeepsPacksIndexedSinceTheMark(t *testing.T) {
	t.Parallel()
	f, _, _, _, _ := forgottenOld(t)
	running := t.TempDir()
	if err := gen.WriteMedia(filepath.Join(running, "hearing-today.mp4"), 5<<20, 9); err != nil {
		t.Fatal(err)
	}
	indexBefore, _ := os.ReadDir(filepath.Join(f.dir, "index"))
	snRunning := f.backup(f.open(), running)
	// Until its end, the running backup's index file and snapshot are not
	// stored yet: hide them during the mark.
	hidden := t.TempDir()
	move := func(from, to string) {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	var moved []string
	indexAfter, _ := os.ReadDir(filepath.Join(f.dir, "index"))
	for _, e := range indexAfter {
		if !slices.ContainsFunc(indexBefore, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
			moved = append(moved, filepath.Join("index", e.Name()))
		}
	}
	moved = append(moved, filepath.Join("snapshots", snRunning.ID.String()))
	for _, m := range moved {
		move(filepath.Join(f.dir, m), filepath.Join(hidden, filepath.Base(m)))
	}
	mark := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if mark.Marked == nil || mark.Marked.PacksUnindexed == 0 {
		t.Fatalf("the running backup's packs were not planned as unindexed: %+v", mark.Marked)
	}
	for _, m := range moved {
		move(filepath.Join(hidden, filepath.Base(m)), filepath.Join(f.dir, m))
	}
	f.advance(prune.DefaultGrace + time.Minute)
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept == nil || res.Swept.PacksKept < mark.Marked.PacksUnindexed {
		t.Fatalf("sweep kept %+v, want at least the %d packs indexed since the mark", res.Swept, mark.Marked.PacksUnindexed)
	}
	f.mustRestore(snRunning, running)
}

// lockedData refuses to delete packs, as S3 Object Lock does before the
// retention date.
type lockedData struct{ remote.Backend }

func (l lockedData) Remove(ctx context.Context, h remote.Handle) error {
	if h.Type == remote.Data {
		return errors.New("object is WORM protected and cannot be deleted")
	}
	return l.Backend.Remove(ctx, h)
}

func TestRefusedDeletionsAreRetriedByTheNextPrune(t *testing.T) {
	t.Parallel()
	f, _, kept, _, snKept := forgottenOld(t)
	local, err := remote.OpenLocal(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	before := f.packs()
	res, err := prune.Run(context.Background(), f.openWith(lockedData{local}), prune.Options{Grace: 0})
	if err != nil {
		t.Fatalf("a refused deletion failed the prune: %v", err)
	}
	if res.Swept == nil || res.Swept.PacksNotDeleted == 0 || res.Swept.PacksDeleted != 0 {
		t.Fatalf("sweep under Object Lock: %+v", res.Swept)
	}
	if n, _ := f.gone(before); n != 0 {
		t.Fatalf("%d packs gone under Object Lock", n)
	}
	f.mustRestore(snKept, kept)
	// Once the retention date has passed, the next prune deletes them.
	res = f.prune(prune.Options{Grace: 0})
	if res.Marked == nil || res.Marked.PacksUnindexed == 0 || res.Swept == nil || res.Swept.PacksDeleted == 0 {
		t.Fatalf("next prune: %+v %+v", res.Marked, res.Swept)
	}
	f.mustRestore(snKept, kept)
}

// failingHeaders fails every read of the packs in fail, as a storage
// under load may for a while.
type failingHeaders struct {
	remote.Backend
	fail map[string]bool
}

func (b failingHeaders) Load(ctx context.Context, h remote.Handle, off, n int64, fn func(io.Reader) error) error {
	if h.Type == remote.Data && b.fail[h.Name] {
		return errors.New("503 slow down")
	}
	return b.Backend.Load(ctx, h, off, n, fn)
}

// plan reads this host's prune plan for the fixture's repository.
func (f *fixture) plan() prune.Plan {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(prune.Dir(f.open()), "plan.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	var p prune.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// A marked pack whose header cannot be read at the sweep may be one that a
// snapshot stored since the mark needs: it must not be deleted.
func TestSweepKeepsPacksItCannotRead(t *testing.T) {
	t.Parallel()
	f, old, _, snOld, _ := forgottenOld(t)
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	revived := *snOld
	if err := f.open().SaveSnapshot(context.Background(), &revived); err != nil {
		t.Fatal(err)
	}
	fail := map[string]bool{}
	for _, p := range f.plan().Dead {
		fail[p.ID.String()] = true
	}
	before := f.packs()
	f.advance(prune.DefaultGrace + time.Minute)
	local, _ := remote.OpenLocal(f.dir)
	_, err := prune.Run(context.Background(), f.openWith(failingHeaders{local, fail}), prune.Options{Grace: prune.DefaultGrace})
	if !errors.Is(err, prune.ErrIncomplete) {
		t.Fatalf("sweep that cannot read what a new snapshot needs: %v, want ErrIncomplete", err)
	}
	for name := range fail {
		if _, ok := before[name]; ok {
			if _, still := f.packs()[name]; !still {
				t.Errorf("marked pack %s deleted although its header could not be read", name[:8])
			}
		}
	}
	// Once the storage answers again, the next prune indexes them again.
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept == nil || res.Swept.PacksKept == 0 {
		t.Errorf("sweep after the storage recovered: %+v", res.Swept)
	}
	f.mustRestore(&revived, old)
}

// A backup that loaded the index before a mark and ends after the mark's
// sweep and a second cycle sees no superseding file any more; it must
// still notice that the index files it relied on were swept.
func TestBackupNoticesASweepAfterTwoCycles(t *testing.T) {
	t.Parallel()
	f, old, _, _, _ := forgottenOld(t)
	running := f.open()
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	f.advance(prune.DefaultGrace + time.Minute)
	// Something for the second mark to do, so that its sweep removes the
	// first mark's superseding file.
	extra := t.TempDir()
	if err := gen.WriteMedia(filepath.Join(extra, "adjourned.mp4"), 3<<20, 9); err != nil {
		t.Fatal(err)
	}
	f.forget(f.backup(f.open(), extra))
	if res := f.prune(prune.Options{Grace: prune.DefaultGrace}); res.Swept == nil || res.Marked == nil || res.Marked.PacksUnused == 0 {
		t.Fatalf("second cycle: %+v", res)
	}
	f.advance(prune.DefaultGrace + time.Minute)
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	ctx := context.Background()
	_, err := archiver.Run(ctx, ctx, running, archiver.Options{Paths: []string{old}, Host: "court-a"})
	if !errors.Is(err, repo.ErrPrunedDuringBackup) {
		t.Fatalf("backup across two prune cycles: %v, want ErrPrunedDuringBackup", err)
	}
}

// Two index files in effect may list one pack with different blobs (a
// backup across a mark lists what it needs). The mark must keep every blob
// any of them lists.
func TestMarkMergesListingsOfOnePack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.packSize = 64 << 20
	old, kept := sources(t)
	snOld, snKept := f.backupBoth(old, kept)
	r := f.open()
	ctx := context.Background()
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the index by two files that each list every pack without one
	// of its blobs: only together are they complete.
	var withoutFirst, withoutLast []index.PackBlobs
	for _, file := range files {
		for _, p := range file.Packs {
			a, b := p, p
			if len(p.Blobs) > 1 {
				a.Blobs, b.Blobs = p.Blobs[1:], p.Blobs[:len(p.Blobs)-1]
			}
			withoutFirst, withoutLast = append(withoutFirst, a), append(withoutLast, b)
		}
	}
	for _, half := range [][]index.PackBlobs{withoutFirst, withoutLast} {
		if _, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: half})); err != nil {
			t.Fatal(err)
		}
	}
	for name := range files {
		if err := os.Remove(filepath.Join(f.dir, "index", name)); err != nil {
			t.Fatal(err)
		}
	}
	f.forget(snOld)
	f.prune(prune.Options{Grace: 0})
	f.mustRestore(snKept, kept)
}

// hidingList hides some index files from the first listing of index/, as
// a paginated listing running while a prune marks can.
type hidingList struct {
	remote.Backend
	mu     sync.Mutex
	hide   map[string]bool
	listed bool
}

func (b *hidingList) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	b.mu.Lock()
	hide := t == remote.Index && !b.listed
	if t == remote.Index {
		b.listed = true
	}
	b.mu.Unlock()
	return b.Backend.List(ctx, t, func(fi remote.ObjectInfo) error {
		if hide && b.hide[fi.Name] {
			return nil
		}
		return fn(fi)
	})
}

// A listing that shows a prune's superseding index file but not the files
// written just before it must not leave readers, or a replica, with an
// incomplete index.
func TestListingsShowingOnlyTheSupersedingFileAreCompleted(t *testing.T) {
	t.Parallel()
	f, _, _, _, snKept := forgottenOld(t)
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	written := f.plan().Written
	hide := map[string]bool{}
	for _, id := range written[:len(written)-1] {
		hide[id.String()] = true
	}
	if len(hide) == 0 {
		t.Fatal("the mark wrote no index file besides the superseding one")
	}
	ctx := context.Background()
	local, _ := remote.OpenLocal(f.dir)
	r := f.openWith(&hidingList{Backend: local, hide: hide})
	if _, err := restorer.Restore(ctx, r, snKept, restorer.Options{Target: t.TempDir()}); err != nil {
		t.Errorf("restore through a listing without the new index files: %v", err)
	}

	replicaDir := filepath.Join(t.TempDir(), "replica")
	replica, err := remote.OpenLocal(replicaDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Run(ctx, ctx, &hidingList{Backend: local, hide: hide}, replica, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := restorer.Restore(ctx, f.openAt(replicaDir), snKept, restorer.Options{Target: t.TempDir()}); err != nil {
		t.Errorf("restore from a replica made through such a listing: %v", err)
	}
}

// The prune host keeps a verified copy of every index file it read; the
// other hosts read storage. If the mark's superseding index file is
// damaged in storage after the prune host cached it, backups elsewhere
// leave it out, so for them the superseded files are still in effect and
// they deduplicate against the packs the mark found unused, without any
// sign that a mark happened. The sweep must then delete nothing: it checks
// the files the mark wrote in storage, not in its cache.
func TestSweepRefusesWhileTheMarkIsDamagedInStorage(t *testing.T) {
	t.Parallel()
	f, old, _, _, _ := forgottenOld(t)
	ctx := context.Background()
	mark := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if mark.Marked == nil || mark.Marked.PacksUnused+mark.Marked.PacksRepacked == 0 {
		t.Fatalf("nothing marked: %+v", mark)
	}
	// The prune host has read (and cached) the mark's files when the
	// superseding one is damaged in storage.
	superseding, intact := damageSuperseding(t, f)

	// A backup on another host (its own cache) loads the index now.
	elsewhere := f.openElsewhere(t)
	if len(elsewhere.DamagedIndexFiles()) != 1 {
		t.Fatalf("the backup host found %d damaged index files, want the superseding one", len(elsewhere.DamagedIndexFiles()))
	}

	// The grace period passes; the backup stores its snapshot while the
	// sweep runs (after the sweep walked the snapshots stored since the mark).
	f.advance(prune.DefaultGrace + time.Hour)
	var sn *snapshot.Snapshot
	backup := func() {
		res, err := archiver.Run(ctx, ctx, elsewhere, archiver.Options{Paths: []string{old}, Host: "court-b"})
		if err != nil {
			t.Fatal(err)
		}
		sn = res.Snapshot
	}
	_, err := prune.Run(ctx, f.open(), prune.Options{Grace: prune.DefaultGrace, Progress: func(step string) {
		if strings.HasPrefix(step, "sweep: deleting") && sn == nil {
			backup()
		}
	}})
	if sn == nil {
		if err == nil {
			t.Fatal("the sweep neither deleted packs nor refused")
		}
		backup()
	}
	// Once the file is repaired, the sweep keeps what the backup's
	// snapshot needs (it was stored after the mark) and indexes it again.
	if err := os.WriteFile(superseding, intact, 0o600); err != nil {
		t.Fatal(err)
	}
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	f.mustRestore(sn, old)
}

// A backup that left the mark's damaged superseding file out and finds it
// repaired when it is about to store its snapshot may have deduplicated
// against packs the mark found unused, and a sweep may be deleting them:
// it refuses, as a backup that outlived a mark does.
func TestBackupRefusesWhenADamagedMarkWasRepairedMeanwhile(t *testing.T) {
	t.Parallel()
	f, old, _, _, _ := forgottenOld(t)
	ctx := context.Background()
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	superseding, intact := damageSuperseding(t, f)

	elsewhere := f.openElsewhere(t)
	if err := os.WriteFile(superseding, intact, 0o600); err != nil { // verify --repair
		t.Fatal(err)
	}
	res, err := archiver.Run(ctx, ctx, elsewhere, archiver.Options{Paths: []string{old}, Host: "court-b"})
	if errors.Is(err, repo.ErrPrunedDuringBackup) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	f.mustRestore(res.Snapshot, old) // only if every blob it needs is in the index in effect
}

// damageSuperseding damages the mark's superseding index file in storage
// and returns its path and intact bytes.
func damageSuperseding(t *testing.T, f *fixture) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	r := f.open()
	var superseding string
	err := filepath.WalkDir(filepath.Join(f.dir, "index"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		plain, err := r.LoadFile(ctx, remote.Handle{Type: remote.Index, Name: d.Name()})
		if err != nil {
			return err
		}
		if file, err := index.Decode(plain); err == nil && len(file.Supersedes) > 0 {
			superseding = p
		}
		return nil
	})
	if err != nil || superseding == "" {
		t.Fatalf("no superseding index file found: %v", err)
	}
	b, err := os.ReadFile(superseding)
	if err != nil {
		t.Fatal(err)
	}
	intact := slices.Clone(b)
	b[len(b)/2] ^= 0xff
	if err := os.Chmod(superseding, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(superseding, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return superseding, intact
}

// openElsewhere opens the repository as a backup on another host would:
// its own cache directory, the index loaded now.
func (f *fixture) openElsewhere(t *testing.T) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := remote.OpenLocal(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := f.options()
	opts.CacheDir = t.TempDir()
	r, err := repo.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// A court that keeps every recording never has anything unused, yet each
// backup adds index files: a mark consolidates them into bounded files
// once they are many, deletes no pack, and every snapshot still restores.
// Not parallel: it changes the package's threshold while it runs.
func TestPruneConsolidatesIndexFilesWhenNothingIsUnused(t *testing.T) {
	defer prune.SetMinConsolidate(3)()
	f := newFixture(t)
	var snaps []*snapshot.Snapshot
	var srcs []string
	for i := range 5 {
		src := t.TempDir()
		if err := gen.WriteMedia(filepath.Join(src, "hearing.wav"), 300<<10, int64(10+i)); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, f.backup(f.open(), src))
		srcs = append(srcs, src)
	}
	indexFiles := func() int {
		n := 0
		if err := f.open().Backend().List(context.Background(), remote.Index, func(remote.ObjectInfo) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, packs := indexFiles(), f.packs()
	if before < 5 {
		t.Fatalf("%d index files after five backups, want at least five", before)
	}
	res := f.prune(prune.Options{Grace: 0})
	if res.Marked == nil || res.Marked.IndexFilesRead != before || res.Marked.PacksUnused+res.Marked.PacksRepacked != 0 {
		t.Fatalf("mark = %+v, want the %d index files read and nothing unused", res.Marked, before)
	}
	if after := indexFiles(); after >= before || after > 2 {
		t.Errorf("%d index files after consolidating %d, want at most 2", after, before)
	}
	if got := f.packs(); len(got) != len(packs) {
		t.Errorf("consolidation changed the packs: %d, was %d", len(got), len(packs))
	}
	for i, sn := range snaps {
		f.mustRestore(sn, srcs[i])
	}
	again := f.prune(prune.Options{Grace: 0})
	if again.Marked == nil || again.Marked.IndexFilesRead != 0 {
		t.Errorf("a second prune rewrote the consolidated index: %+v", again.Marked)
	}
}
