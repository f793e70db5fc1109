package repo_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// tableFixture is a repository with a cache directory whose cached index
// files are removed before each open, so that the backend counts every
// index file a start-up reads.
type tableFixture struct {
	t        *testing.T
	be       *countingBackend
	cacheDir string
	src      string
	snaps    []*snapshot.Snapshot
	contents []map[string][]byte
	mu       sync.Mutex
	warnings []string
}

func newTableFixture(t *testing.T) *tableFixture {
	local, err := remote.OpenLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	f := &tableFixture{t: t, cacheDir: t.TempDir(), src: t.TempDir(),
		be: &countingBackend{Backend: local, loads: map[remote.Type]*atomic.Int64{remote.Index: {}}}}
	kdf := crypto.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
	if _, err := repo.Init(context.Background(), f.be, []byte("pw"), repo.InitOptions{KDF: kdf}, f.options()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tableFixture) options() repo.Options {
	return repo.Options{CacheDir: f.cacheDir, PackSize: 64 << 10, Warn: func(s string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.warnings = append(f.warnings, s)
	}}
}

// open opens the repository and loads its index; it returns the handle and
// how many index files were read from storage.
func (f *tableFixture) open() (*repo.Repository, int64) {
	f.t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, f.be, []byte("pw"), f.options())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(f.cacheDir, r.ID(), "index")); err != nil {
		f.t.Fatal(err)
	}
	before := f.be.loads[remote.Index].Load()
	if err := r.LoadIndex(ctx); err != nil {
		f.t.Fatal(err)
	}
	return r, f.be.loads[remote.Index].Load() - before
}

// backup writes new files (many small blobs) and backs the source up.
func (f *tableFixture) backup(files int) {
	f.t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(f.snaps)), 7))
	for i := range files {
		b := make([]byte, 1000+rng.IntN(3000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		name := filepath.Join(f.src, "s"+string(rune('a'+len(f.snaps)))+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	r, _ := f.open()
	ctx := context.Background()
	res, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{f.src}, Host: "h"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.snaps = append(f.snaps, res.Snapshot)
	f.contents = append(f.contents, readTree(f.t, f.src))
}

func readTree(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// restoreAll restores every snapshot through r and compares the files.
func (f *tableFixture) restoreAll(r *repo.Repository) {
	f.t.Helper()
	for i, sn := range f.snaps {
		target := f.t.TempDir()
		if _, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target}); err != nil {
			f.t.Fatalf("restore snapshot %d: %v", i, err)
		}
		got := readTree(f.t, filepath.Join(target, f.src))
		if len(got) != len(f.contents[i]) {
			f.t.Fatalf("snapshot %d: %d files restored, want %d", i, len(got), len(f.contents[i]))
		}
		for name, b := range f.contents[i] {
			if !bytes.Equal(got[name], b) {
				f.t.Fatalf("snapshot %d: %s differs", i, name)
			}
		}
	}
}

func (f *tableFixture) tableDir(r *repo.Repository) string {
	return filepath.Join(f.cacheDir, r.ID(), "itables")
}

// A start-up reads only the index files written since the last one on
// this host; what the tables hold is found without reading the files again.
func TestIndexTablesReadOnlyNewIndexFiles(t *testing.T) {
	f := newTableFixture(t)
	f.backup(30)
	r, n := f.open()
	if n == 0 {
		t.Fatal("the first open read no index file")
	}
	if r.Index().Len() == 0 {
		t.Fatal("the tables hold no blob")
	}
	f.backup(30)
	r, n = f.open()
	if n == 0 {
		t.Fatal("the open after a backup read no index file")
	}
	listed, err := r.List(context.Background(), remote.Index)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) >= len(listed) {
		t.Fatalf("the open after a backup read %d index files of %d: all of them", n, len(listed))
	}
	if _, n = f.open(); n != 0 {
		t.Fatalf("an open with nothing new read %d index files", n)
	}
	// Two tables of about the same size were merged into one.
	if tables, _ := filepath.Glob(filepath.Join(f.tableDir(r), "*.tbl")); len(tables) != 1 {
		t.Errorf("%d table files, want 1 after compaction", len(tables))
	}
	f.restoreAll(r)
}

// Damaged cache contents are never trusted: a table or manifest that fails
// to authenticate is built again from the index files.
func TestIndexTablesRebuiltWhenDamaged(t *testing.T) {
	f := newTableFixture(t)
	f.backup(40)
	f.backup(40)
	r, _ := f.open()
	dir := f.tableDir(r)

	tables, _ := filepath.Glob(filepath.Join(dir, "*.tbl"))
	if len(tables) == 0 {
		t.Fatal("no table file")
	}
	for _, p := range tables {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		b[10] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, n := f.open()
	if n == 0 {
		t.Fatal("damaged tables were not rebuilt from the index files")
	}
	f.restoreAll(r)

	if err := os.WriteFile(filepath.Join(dir, "manifest"), []byte("00\n{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, n = f.open()
	if n == 0 {
		t.Fatal("a damaged manifest was trusted")
	}
	f.restoreAll(r)
	if !strings.Contains(strings.Join(f.warnings, "\n"), "damaged") {
		t.Errorf("no warning about the damaged cache: %q", f.warnings)
	}
}

// Damage found while a command runs makes lookups miss (a backup stores
// the data again rather than skip it) and the next start-up rebuild.
func TestIndexTablesDamagedWhileRunning(t *testing.T) {
	f := newTableFixture(t)
	f.backup(40)
	r, _ := f.open()
	tables, _ := filepath.Glob(filepath.Join(f.tableDir(r), "*.tbl"))
	for _, p := range tables {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 4096 + 100; i < len(b); i += 4096 {
			b[i] ^= 1 // every block but the header
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sn := f.snaps[0]
	if r.Index().Has(sn.Tree) {
		t.Fatal("a damaged table answered a lookup")
	}
	if !strings.Contains(strings.Join(f.warnings, "\n"), "damaged") {
		t.Errorf("no warning about the damaged cache: %q", f.warnings)
	}
	r, n := f.open()
	if n == 0 {
		t.Fatal("the damaged tables were not rebuilt")
	}
	f.restoreAll(r)
}

// Without a usable cache directory the index is loaded into memory.
func TestIndexTablesUnusableCacheFallsBack(t *testing.T) {
	f := newTableFixture(t)
	f.backup(10)
	r, _ := f.open()
	dir := f.tableDir(r)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ = f.open()
	if !strings.Contains(strings.Join(f.warnings, "\n"), "into memory") {
		t.Errorf("no warning about the fallback: %q", f.warnings)
	}
	f.restoreAll(r)
}

// A fresh host builds the tables a group of index files at a time and
// merges the groups into one table.
func TestIndexTablesFreshHostBuildsInGroups(t *testing.T) {
	defer repo.SetTableRun(1, 1)()
	f := newTableFixture(t)
	for range 3 {
		f.backup(20)
	}
	f.cacheDir = t.TempDir() // a fresh host
	r, n := f.open()
	if n < 3 {
		t.Fatalf("a fresh host read %d index files", n)
	}
	if tables, _ := filepath.Glob(filepath.Join(f.tableDir(r), "*.tbl")); len(tables) != 1 {
		t.Errorf("%d table files after a fresh build, want 1", len(tables))
	}
	f.restoreAll(r)
}
