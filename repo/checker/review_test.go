package checker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// A pack listed by two index files with different blobs (§20.3: files in
// effect may do so): the first file in name order lists only x, the
// second x and y. The index places y in the pack through the second
// file, so verify --read-data must check y there too: with y's bytes
// damaged, the file that needs y is damaged, not intact.
func TestBlobListedOnlyByASecondListingIsChecked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.r.NewSaver(ctx, 1)
	var ids []blob.ID
	var nodes []snapshot.Node
	for i, name := range []string{"x.mp4", "y.mp4"} {
		content := randomBytes(uint64(10+i), 20<<10)
		id := f.r.BlobID(content)
		if _, err := s.SaveBlob(blob.Data, id, content); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		sum := blob.ID(crypto.Hash(content))
		nodes = append(nodes, snapshot.Node{Name: name, Type: snapshot.NodeFile, Mode: 0o644,
			Size: uint64(len(content)), Content: []blob.ID{id}, BLAKE3: &sum})
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loc, ok := f.r.Index().Lookup(ids[1])
	if !ok {
		t.Fatal("saved blob is not indexed")
	}
	f.saveSnapshot(nodes)
	h, x := indexFileOf(t, f.be, f.r, loc.Pack)
	var full index.PackBlobs
	for _, p := range x.Packs {
		if p.ID == loc.Pack {
			full = p
		}
	}
	if len(full.Blobs) != 2 {
		t.Fatalf("pack lists %d blobs, want 2", len(full.Blobs))
	}
	var yEntry = full.Blobs[0]
	sub := full
	sub.Blobs = nil
	for _, e := range full.Blobs {
		if e.ID == ids[1] {
			yEntry = e
		} else {
			sub.Blobs = append(sub.Blobs, e)
		}
	}
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	// The subset's file must come first in name order: vary it (it
	// supersedes a file that does not exist, which changes nothing else).
	fullH := saveIndex(t, f.r, &index.File{Packs: []index.PackBlobs{full}})
	for i := 0; ; i++ {
		subFile := index.File{Supersedes: []blob.ID{{byte(i), byte(i >> 8), 0xde, 0xad}}, Packs: []index.PackBlobs{sub}}
		subH := saveIndex(t, f.r, &subFile)
		if subH.Name < fullH.Name {
			break
		}
		if err := f.be.Remove(ctx, subH); err != nil {
			t.Fatal(err)
		}
	}
	flip(t, f.be, packHandle(loc.Pack), int(yEntry.Offset)+100)
	rep := check(t, f.be, f.r, nil, checker.Options{ReadData: true})
	pk := packHandle(loc.Pack).String()
	found := false
	for _, p := range rep.Problems {
		if p.Kind == checker.KindFileDamaged && p.Object == pk && p.Path == "/y.mp4" {
			found = true
		}
	}
	if !found {
		t.Errorf("y's damaged bytes went unreported: problems %q", kinds(rep))
		for _, p := range rep.Problems {
			t.Logf("%+v", p)
		}
	}
}

// Without a cache directory the temporary index lies in the system's
// temporary directory (some 52 bytes a blob: gigabytes at court scale);
// one a killed verify left there is removed by the next verify once it is
// an hour old, as in the cache directory; a directory of the same prefix
// without a verify's lock file is not courtbak's and stays.
func TestStaleTemporaryIndexWithoutACacheIsRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stale := filepath.Join(tmp, "spill-killed")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"run.tbl", "lock"} {
		if err := os.WriteFile(filepath.Join(stale, name), make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	foreign := filepath.Join(tmp, "spill-of-another-program") // no verify's lock file
	if err := os.MkdirAll(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, dir := range []string{stale, foreign} {
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t)
	if f.r.StateDir() != "" {
		t.Fatalf("the fixture has a state directory %q", f.r.StateDir())
	}
	wantKinds(t, check(t, f.be, f.r, nil, checker.Options{}))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a killed verify's temporary index is still in the temporary directory: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("another program's directory was removed: %v", err)
	}
}
