package repo_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/prune"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// After a prune deleted packs, the tables of a host that knew them must
// not say their blobs are stored: every blob the index finds is in a pack
// that exists, so a backup never deduplicates against deleted data.
func TestIndexTablesForgetPrunedPacks(t *testing.T) {
	f := newTableFixture(t)
	ctx := context.Background()
	f.backup(40)
	old := f.snaps[0]
	entries, err := os.ReadDir(f.src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(f.src, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	f.backup(40)

	r, _ := f.open() // the tables now hold both snapshots' blobs
	var oldBlobs []blob.ID
	if err := snapshot.Reachable(ctx, r, []blob.ID{old.Tree}, func(id blob.ID) { oldBlobs = append(oldBlobs, id) }); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSnapshot(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	res, err := prune.Run(ctx, r, prune.Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil {
		t.Fatal("no prune result")
	}
	infos, err := r.List(ctx, remote.Data)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, fi := range infos {
		stored[fi.Name] = true
	}

	r, _ = f.open()
	gone := 0
	for _, id := range oldBlobs {
		loc, ok := r.Index().Lookup(id)
		if !ok {
			gone++
			continue
		}
		if !stored[loc.Pack.String()] {
			t.Fatalf("blob %s: the index places it in pack %s, which the prune deleted", id.Short(), loc.Pack.Short())
		}
		if !r.Index().Has(id) {
			t.Fatalf("blob %s: Lookup finds it, Has does not", id.Short())
		}
	}
	if gone == 0 {
		t.Fatal("the prune deleted none of the forgotten snapshot's blobs: the test proves nothing")
	}
	f.snaps = f.snaps[1:]
	f.contents = f.contents[1:]
	f.restoreAll(r)
}
