package checker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo"
)

// A killed verify's temporary index is removed by the next verify once it
// is an hour old; one whose lock a running verify holds, and a fresh one
// (its verify may not have locked it yet), stay.
func TestStaleTemporaryIndexesAreRemoved(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, age time.Duration) string {
		dir := filepath.Join(parent, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "run.tbl"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk("spill-stale", 2*time.Hour)
	busy := mk("spill-busy", 2*time.Hour)
	fresh := mk("spill-fresh", time.Minute)
	other := mk("itables", 2*time.Hour)
	lock, err := repo.LockExclusive(filepath.Join(busy, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := os.Chtimes(busy, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	removeStaleSpills(parent)
	for dir, want := range map[string]bool{stale: false, busy: true, fresh: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
