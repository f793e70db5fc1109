package prune_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/prune"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// A prune killed in the middle of a sort leaves its run files in the
// state directory (at court scale, gigabytes). The next prune removes
// them before anything else, even when its sweep then stops (here: the
// mark's superseding file is damaged in storage), so that a sweep that
// keeps failing does not keep the disk full and fail for that reason.
func TestStaleSortFilesAreRemovedBeforeTheSweep(t *testing.T) {
	t.Parallel()
	f, _, _, _, _ := forgottenOld(t)
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	stale := filepath.Join(prune.Dir(f.open()), "sort-123456")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "run-1"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	damageSuperseding(t, f)
	f.advance(prune.DefaultGrace + time.Hour)
	if _, err := prune.Run(context.Background(), f.open(), prune.Options{Grace: prune.DefaultGrace}); err == nil {
		t.Fatal("the sweep went on with the mark damaged in storage")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a killed prune's sort files are still there after the next prune: %v", err)
	}
}

// A prune killed just after storing its superseding index file leaves a
// plan that does not name that file (crashpoint prune.mark.supersede:
// the plan is saved again only afterwards). Should that file then be
// damaged in storage, backups on other hosts leave it out, the files it
// supersedes stay in effect for them, and they deduplicate against the
// packs the mark found unused: the sweep must wait for its repair, as for
// a file the plan names, and a snapshot stored meanwhile must restore.
func TestSweepRefusesWhileAnUnrecordedSupersedingFileIsDamaged(t *testing.T) {
	t.Parallel()
	f, old, _, _, _ := forgottenOld(t)
	ctx := context.Background()
	mark := f.prune(prune.Options{Grace: prune.DefaultGrace})
	if mark.Marked == nil || mark.Marked.PacksUnused+mark.Marked.PacksRepacked == 0 {
		t.Fatalf("nothing marked: %+v", mark)
	}
	plan := f.plan()
	plan.Written = plan.Written[:len(plan.Written)-1] // as saved before the superseding file
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prune.Dir(f.open()), "plan.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	superseding, intact := damageSuperseding(t, f)
	elsewhere := f.openElsewhere(t)
	if len(elsewhere.DamagedIndexFiles()) != 1 {
		t.Fatalf("the backup host found %d damaged index files, want the superseding one", len(elsewhere.DamagedIndexFiles()))
	}
	f.advance(prune.DefaultGrace + time.Hour)
	var sn *snapshot.Snapshot
	backup := func() {
		res, err := archiver.Run(ctx, ctx, elsewhere, archiver.Options{Paths: []string{old}, Host: "court-b"})
		if err != nil {
			t.Fatal(err)
		}
		sn = res.Snapshot
	}
	_, err = prune.Run(ctx, f.open(), prune.Options{Grace: prune.DefaultGrace, Progress: func(step string) {
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
	if err := os.WriteFile(superseding, intact, 0o600); err != nil {
		t.Fatal(err)
	}
	f.prune(prune.Options{Grace: prune.DefaultGrace})
	f.mustRestore(sn, old)
}
