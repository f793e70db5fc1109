package table

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/courtbak/courtbak/repo/index"
)

// A Spill of 40 runs (three levels of merging at 16 a time) answers every
// lookup as the first listing of each blob says, with blobs and packs
// listed twice across runs, and Close removes its directory.
func TestSpillMergesRunsFirstListingWins(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	files := genFiles(rng, 4000, 10)
	// Relist the first file's packs at the end, with their blobs moved:
	// the first listing must still win.
	var again index.File
	for _, p := range files[0].Packs {
		q := index.PackBlobs{ID: p.ID, Size: p.Size + 1}
		for _, e := range p.Blobs {
			e.Offset++
			q.Blobs = append(q.Blobs, e)
		}
		again.Packs = append(again.Packs, q)
	}
	files = append(files, &again)
	s, err := NewSpill(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := s.AddFile(f); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.runs) < 40 {
		t.Fatalf("%d runs, want at least 40", len(s.runs))
	}
	set, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.runs) != 1 {
		t.Fatalf("%d tables after Finish, want 1", len(s.runs))
	}
	checkSet(t, set, want(files), rng)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s remains after Close: %v", dir, err)
	}
}
