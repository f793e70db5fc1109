package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/testdata/gen"
)

// A journal entry is reused only while a prune cannot have deleted its
// pack: within repo.MaxBackupAge of its upload (docs/design.md §20.3).
func TestJournalReusesOnlyRecentPacks(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 3, 1, 0, 0, 0, time.UTC)
	opts := repo.Options{CacheDir: t.TempDir(), PackSize: 1 << 20, Now: func() time.Time { return now }}
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := remote.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.Init(t, be, opts)
	src := t.TempDir()
	if err := gen.WriteMedia(filepath.Join(src, "hearing.mp4"), 6<<20, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h"}); err != nil {
		t.Fatal(err)
	}
	// Forget every index file, as if the backup had been killed before
	// writing one, and journal its packs: half uploaded an hour ago, half
	// two days ago.
	packs, err := r.List(ctx, remote.Data)
	if err != nil || len(packs) < 2 {
		t.Fatalf("%d packs, %v", len(packs), err)
	}
	idx, _ := r.List(ctx, remote.Index)
	for _, fi := range idx {
		if err := be.Remove(ctx, fi.Handle); err != nil {
			t.Fatal(err)
		}
	}
	journal := ""
	fresh := 0
	for i, p := range packs {
		at := now.Add(-time.Hour)
		if i%2 == 1 {
			at = now.Add(-2 * repo.MaxBackupAge)
		} else {
			fresh++
		}
		journal += fmt.Sprintf("%s %d %d\n", p.Name, p.Size, at.Unix())
	}
	journal += packs[0].Name + " 123\n" // a line without its time is not trusted
	jdir := filepath.Join(r.StateDir(), "journal")
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jdir, "pending-test"), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}

	r2, err := repo.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := r2.RecoverJournal(ctx)
	if err != nil || n != fresh {
		t.Fatalf("recovered %d packs (%v), want the %d uploaded within %s", n, err, fresh, repo.MaxBackupAge)
	}
	if got := len(r2.Index().PackIDs()); got != fresh {
		t.Errorf("%d packs indexed after recovery, want %d", got, fresh)
	}
	if _, err := os.Stat(filepath.Join(jdir, "pending-test")); !os.IsNotExist(err) {
		t.Errorf("the journal is still there after recovery: %v", err)
	}
}
