package restorer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
	"github.com/courtbak/courtbak/testdata/gen"
)

// countingBackend counts the reads of pack data.
type countingBackend struct {
	remote.Backend
	loads atomic.Int64
}

func (c *countingBackend) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if h.Type == remote.Data {
		c.loads.Add(1)
	}
	return c.Backend.Load(ctx, h, offset, length, fn)
}

// reopen opens the repository at repoDir through a counting backend.
func reopen(t *testing.T, repoDir string) (*repo.Repository, *countingBackend) {
	t.Helper()
	ctx := context.Background()
	be, err := remote.OpenLocal(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBackend{Backend: be}
	r, err := repo.Open(ctx, cb, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return r, cb
}

// Hundreds of small case files come back with a few reads of the packs
// that hold them, not one read per file.
func TestSmallFilesAreFetchedInBatches(t *testing.T) {
	_, sn, src, repoDir := BackupForTest(t, gen.Options{Seed: 8, TotalBytes: 2 << 20, SmallFiles: 400, Copies: 0})
	r, cb := reopen(t, repoDir)
	// The walk reads the trees (directories) from packs too.
	if err := snapshot.Walk(context.Background(), r, sn.Tree, func(string, *snapshot.Node) error { return nil }); err != nil {
		t.Fatal(err)
	}
	treeReads := cb.loads.Swap(0)
	target := t.TempDir()
	res, err := Restore(context.Background(), r, sn, Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	fileReads := cb.loads.Load() - treeReads
	same, missing := repotest.CompareRestored(t, src, target)
	if missing != 0 || same != res.Files || same < 400 {
		t.Fatalf("%d files restored identically (result %d), %d missing", same, res.Files, missing)
	}
	packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
	if fileReads > int64(4*len(packs)+10) {
		t.Errorf("%d reads of pack data for %d files in %d packs", fileReads, same, len(packs))
	}
	t.Logf("%d files from %d packs in %d reads (and %d reads of trees)", same, len(packs), fileReads, treeReads)
}

// A damaged blob in a batch costs only the file that needs it: the others
// of its batch are restored one by one.
func TestADamagedBlobCostsOnlyItsFile(t *testing.T) {
	ctx := context.Background()
	_, sn, src, repoDir := BackupForTest(t, gen.Options{Seed: 9, TotalBytes: 1 << 20, SmallFiles: 200, Copies: 0})
	r, _ := reopen(t, repoDir)
	// Damage the blob of one small file.
	var victim snapshot.Node
	err := snapshot.Walk(ctx, r, sn.Tree, func(p string, n *snapshot.Node) error {
		if n.Type == snapshot.NodeFile && victim.Name == "" && n.Size > 1000 && n.Size < smallFile && len(n.Content) == 1 {
			victim = *n
		}
		return nil
	})
	if err != nil || victim.Name == "" {
		t.Fatalf("no small file to damage: %v", err)
	}
	loc, _ := r.Index().Lookup(victim.Content[0])
	packPath := filepath.Join(repoDir, "data", loc.Pack.String()[:2], loc.Pack.String())
	if err := os.Chmod(packPath, 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(packPath)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.Offset+loc.Length/2] ^= 0x40
	if err := os.WriteFile(packPath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	target := t.TempDir()
	_, err = Restore(ctx, r, sn, Options{Target: target})
	if !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("restore with a damaged blob: %v", err)
	}
	same, missing := repotest.CompareRestored(t, src, target)
	if missing != 1 || same < 200 {
		t.Errorf("%d files restored, %d missing: want only %s missing", same, missing, victim.Name)
	}
}
