package repo_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
)

// countingBackend counts whole-object loads per type.
type countingBackend struct {
	remote.Backend
	loads map[remote.Type]*atomic.Int64
}

func (c *countingBackend) Load(ctx context.Context, h remote.Handle, off, n int64, fn func(io.Reader) error) error {
	if ctr := c.loads[h.Type]; ctr != nil {
		ctr.Add(1)
	}
	return c.Backend.Load(ctx, h, off, n, fn)
}

func TestCacheServesIndexAndSnapshotsAndSurvivesDamage(t *testing.T) {
	ctx := context.Background()
	local, err := remote.OpenLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	be := &countingBackend{Backend: local, loads: map[remote.Type]*atomic.Int64{remote.Index: {}, remote.Snapshot: {}}}
	cacheDir := t.TempDir()
	opts := repo.Options{CacheDir: cacheDir}
	r := repotest.Init(t, be, opts)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "notes.txt"), []byte("hearing notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h"}); err != nil {
		t.Fatal(err)
	}

	open := func() *repo.Repository {
		r, err := repo.Open(ctx, be, []byte("pw"), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		if snaps, err := r.Snapshots(ctx); err != nil || len(snaps) != 1 {
			t.Fatalf("snapshots: %v %d", err, len(snaps))
		}
		return r
	}
	open() // fills the cache
	before := be.loads[remote.Index].Load() + be.loads[remote.Snapshot].Load()
	open()
	if after := be.loads[remote.Index].Load() + be.loads[remote.Snapshot].Load(); after != before {
		t.Errorf("a second open fetched %d index/snapshot files despite the cache", after-before)
	}

	// A damaged cached file is ignored and fetched again from storage.
	cached, _ := filepath.Glob(filepath.Join(cacheDir, r.ID(), "snapshots", "*"))
	if len(cached) != 1 {
		t.Fatalf("cached snapshots: %v", cached)
	}
	if err := os.WriteFile(cached[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	open()
	if got := be.loads[remote.Snapshot].Load(); got == 0 {
		t.Error("the damaged cached snapshot was not fetched again")
	}
	// A cached file storage no longer lists is dropped.
	stray := filepath.Join(cacheDir, r.ID(), "index", "0000000000000000000000000000000000000000000000000000000000000000")
	if err := os.WriteFile(stray, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	open()
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("stray cached index file kept: %v", err)
	}
}
