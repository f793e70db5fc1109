package checker_test

import (
	"context"
	"testing"

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
