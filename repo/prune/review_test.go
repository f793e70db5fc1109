package prune_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/prune"
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
