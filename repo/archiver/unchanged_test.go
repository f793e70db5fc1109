package archiver_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/repotest"
)

// An unchanged file is reused only if all of its blobs are still indexed
// (design.md §18.1); a directory's unchanged files are checked in one
// batch. With one file's blob gone from the index (its pack no longer
// indexed), the next backup, with or without index tables, reuses the
// other files and reads that one again, storing its blob anew.
func TestUnchangedFilesReusedOnlyWhileIndexed(t *testing.T) {
	for _, cache := range []bool{false, true} {
		t.Run(map[bool]string{false: "in memory", true: "tables"}[cache], func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "repo")
			be, err := remote.OpenLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			opts := repo.Options{PackSize: 64 << 10}
			if cache {
				opts.CacheDir = t.TempDir()
			}
			r := repotest.Init(t, be, opts)
			src := t.TempDir()
			rng := rand.New(rand.NewPCG(4, 5))
			contents := map[string][]byte{}
			for _, name := range []string{"a.mp4", "b.mp4", "c.mp4", "d.mp4"} {
				b := make([]byte, 100<<10) // one chunk, one blob in a pack of its own
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				contents[name] = b
				if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			first, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h"})
			if err != nil {
				t.Fatal(err)
			}

			// Index every pack but the one holding b.mp4's blob.
			gone := r.BlobID(contents["b.mp4"])
			loc, ok := r.Index().Lookup(gone)
			if !ok {
				t.Fatal("b.mp4's blob is not indexed after the first backup")
			}
			files, err := r.LoadIndexFiles(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kept := &index.File{}
			for name, f := range files {
				for _, p := range f.Packs {
					if p.ID != loc.Pack {
						kept.Packs = append(kept.Packs, p)
					}
				}
				if err := be.Remove(ctx, remote.Handle{Type: remote.Index, Name: name}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.SaveFile(ctx, remote.Index, index.Encode(kept)); err != nil {
				t.Fatal(err)
			}

			r2, err := repo.Open(ctx, be, repotest.Password, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := r2.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			if r2.Index().Has(gone) {
				t.Fatal("b.mp4's blob is still indexed")
			}
			second, err := archiver.Run(ctx, ctx, r2, archiver.Options{Paths: []string{src}, Host: "h", Parent: first.Snapshot})
			if err != nil {
				t.Fatal(err)
			}
			if s := second.Summary; s.FilesUnmodified != 3 || s.FilesChanged != 1 || s.BlobsAdded < 1 {
				t.Fatalf("second backup: %+v; want 3 files reused, b.mp4 read again and its blob stored", s)
			}
			if !r2.Index().Has(gone) {
				t.Fatal("b.mp4's blob was not stored again")
			}
		})
	}
}
