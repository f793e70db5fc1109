package repo_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// Batches ask the index once for many blobs: over the tables of several
// backups and the blobs this process adds in memory, Missing, LookupAll
// and a saver's KnownAll answer exactly what single lookups answer, for
// ids in any order, repeated or unknown.
func TestIndexTablesAnswerBatches(t *testing.T) {
	f := newTableFixture(t)
	f.backup(40)
	f.backup(10)
	r, _ := f.open()
	ctx := context.Background()
	var mu sync.Mutex
	var ids []blob.ID
	var roots []blob.ID
	for _, sn := range f.snaps {
		roots = append(roots, sn.Tree)
	}
	if err := snapshot.Reachable(ctx, r, roots, func(id blob.ID) {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	s := r.NewSaver(ctx, 1)
	fresh := []byte("a blob only this process knows, still pending in its pack")
	freshID := r.BlobID(fresh)
	if _, err := s.SaveBlob(blob.Data, freshID, fresh); err != nil {
		t.Fatal(err)
	}
	unknown := blob.ID{1, 2, 3}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := append(append([]blob.ID{}, ids...), ids[:5]...)
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	if !s.KnownAll(append(batch, freshID)) {
		t.Fatal("KnownAll is false for stored blobs and one being stored")
	}
	if s.KnownAll(append(batch, unknown)) {
		t.Fatal("KnownAll is true with a blob never stored")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	batch = append(batch, freshID) // now in the in-memory part of the index
	if miss := r.Index().Missing(append(batch, unknown)); len(miss) != 1 || miss[0] != unknown {
		t.Fatalf("Missing = %v, want the unknown id alone", miss)
	}
	locs, at := r.Index().LookupAll(batch)
	if at != -1 {
		t.Fatalf("LookupAll: position %d (%s) not found", at, batch[at].Short())
	}
	for i, id := range batch {
		if loc, ok := r.Index().Lookup(id); !ok || loc != locs[i] {
			t.Fatalf("%s: LookupAll %+v, Lookup %+v %v", id.Short(), locs[i], loc, ok)
		}
	}
	if _, at := r.Index().LookupAll(append(batch[:3:3], unknown)); at != 3 {
		t.Fatalf("LookupAll with an unknown id at 3 reported %d", at)
	}
}

// The usual warm start (index/ lists what the manifest knows) opens the
// manifest's tables without rebuilding anything, and still notes every
// index file for the prune guard: a prune's mark written afterwards, which
// supersedes a file the start-up relied on, makes SecureSnapshot index the
// snapshot's packs again.
func TestIndexTablesWarmStartKeepsThePruneGuard(t *testing.T) {
	f := newTableFixture(t)
	f.backup(20)
	f.backup(5)
	f.open() // reads the second backup's index files, writes the manifest
	r, n := f.open()
	if n != 0 {
		t.Fatalf("a warm start read %d index files", n)
	}
	f.restoreAll(r)
	listed, err := r.List(context.Background(), remote.Index)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other, _ := f.open()
	var sup []blob.ID
	for _, fi := range listed {
		id, err := blob.ParseID(fi.Name)
		if err != nil {
			t.Fatal(err)
		}
		sup = append(sup, id)
	}
	if _, err := other.SaveFile(ctx, remote.Index, index.Encode(&index.File{Supersedes: sup})); err != nil {
		t.Fatal(err)
	}
	before := len(f.warnings)
	if err := r.SecureSnapshot(ctx, f.snaps[1].Tree); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.warnings) == before || !strings.Contains(f.warnings[len(f.warnings)-1], "indexed") {
		t.Fatalf("SecureSnapshot after a mark did not index the snapshot's packs again; warnings: %q", f.warnings[before:])
	}
}
