package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/repotest"
)

// LoadIndexFileHeads returns every index file LoadIndexFiles does, with
// its supersedes list and no packs; LoadIndexFile returns one file whole,
// and refuses one that is not stored.
func TestLoadIndexFileHeads(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, repo.Options{})
	listing := index.PackBlobs{ID: blob.ID{1}, Size: 100, Blobs: []pack.Entry{{Type: blob.Data, ID: blob.ID{2}, Length: 50, RawLength: 34}}}
	old, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: []index.PackBlobs{listing}}))
	if err != nil {
		t.Fatal(err)
	}
	sup, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Supersedes: []blob.ID{old}, Packs: []index.PackBlobs{listing}}))
	if err != nil {
		t.Fatal(err)
	}
	full, err := r.LoadIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := r.LoadIndexFileHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != len(full) || len(heads) != 2 {
		t.Fatalf("%d heads, %d files, want 2", len(heads), len(full))
	}
	for name, f := range heads {
		if f.Packs != nil {
			t.Errorf("head of %s has %d packs", name, len(f.Packs))
		}
	}
	if s := heads[sup.String()].Supersedes; len(s) != 1 || s[0] != old {
		t.Errorf("supersedes %v, want [%s]", s, old.Short())
	}
	f, err := r.LoadIndexFile(ctx, sup.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Packs) != 1 || f.Packs[0].ID != listing.ID || len(f.Packs[0].Blobs) != 1 || f.Packs[0].Blobs[0] != listing.Blobs[0] {
		t.Errorf("LoadIndexFile returned %+v", f)
	}
	if _, err := r.LoadIndexFile(ctx, blob.ID{9}.String()); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("missing index file: %v, want ErrNotFound", err)
	}
}
