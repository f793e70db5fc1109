package prune_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/prune"
)

// Whole prunes whose sorts spill a run every few records (the merge of
// many runs, as at 10^8 blobs): a mark that repacks and a sweep that walks
// a snapshot stored since the mark keep every file restorable byte for
// byte, and free what no snapshot needs. Not parallel: it changes the
// package's run size while it runs.
func TestPruneWithManySortRuns(t *testing.T) {
	defer prune.SetSortRunBytes(5 * 48)()
	f := newFixture(t)
	f.packSize = 64 << 20 // shared.mp4 shares a pack with gone.mp4: repacked
	old, kept := sources(t)
	snOld, snKept := f.backupBoth(old, kept)
	f.forget(snOld)
	before := f.packBytes()

	running := f.open() // a backup that loaded the index before the mark
	mark := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if m := mark.Marked; m == nil || m.PacksRepacked == 0 || m.BytesMoved < 6<<20 || m.BytesMoved > 7<<20 {
		t.Fatalf("want shared.mp4's 6 MiB moved out of the forgotten backup's pack: %+v", mark.Marked)
	}
	f.advance(time.Hour)
	snAgain := f.backup(running, old) // stored after the mark, deduplicated against marked packs
	f.advance(prune.DefaultGrace)
	res := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if res.Swept == nil || res.Swept.PacksKept == 0 {
		t.Fatalf("the sweep kept nothing for the snapshot stored since the mark: %+v", res.Swept)
	}
	f.mustRestore(snAgain, old)
	f.mustRestore(snKept, kept)

	// A sort directory that a crashed mark left behind is removed by the
	// next mark, and no mark leaves one.
	stale := filepath.Join(prune.Dir(f.open()), "sort-crashed")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	f.forget(snAgain)
	f.advance(prune.DefaultGrace)
	f.prune(prune.Options{Grace: 0})
	if left, _ := filepath.Glob(filepath.Join(prune.Dir(f.open()), "sort-*")); len(left) != 0 {
		t.Errorf("sort directories left after the prunes: %v", left)
	}
	if freed := before - f.packBytes(); freed < 11<<20 {
		t.Errorf("prunes freed %d bytes, want gone.mp4's 12 MiB", freed)
	}
	f.mustRestore(snKept, kept)
}
