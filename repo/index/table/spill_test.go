package table

import (
	"math/rand/v2"
	"os"
	"path/filepath"
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

// A pinned table answers from memory for its packs and dir: with both
// sections overwritten on disk after Pin, every lookup still answers as
// before; with the records overwritten too, lookups meet the damage.
func TestPinnedTableReadsOnlyRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	files := genFiles(rng, 5000, 11)
	in := build(t, dir, files)
	damaged := false
	s, err := OpenSet(dir, testKey, []Info{in}, func(error) { damaged = true })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Pin(1 << 20); err != nil {
		t.Fatal(err)
	}
	tb := s.tables[0]
	zero := func(from, to uint64) {
		f, err := os.OpenFile(filepath.Join(dir, in.Name), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(make([]byte, (to-from)*blockSize), int64(from*blockSize)); err != nil {
			t.Fatal(err)
		}
	}
	zero(tb.packStart, tb.recStart)
	zero(tb.dirStart, tb.dirStart+sectionBlocks(1<<tb.bits+1, perDirBlock))
	tb.recs, tb.dirs = blockCache{max: cachedBlocks}, blockCache{max: cachedDirBlocks} // nothing from before in the block caches
	w := want(files)
	for id, loc := range w {
		if got, ok := s.Lookup(id); !ok || got != loc {
			t.Fatalf("Lookup(%s) = %+v, %v; want %+v", id.Short(), got, ok, loc)
		}
	}
	if damaged {
		t.Fatal("damage reported for pinned sections")
	}
	zero(tb.recStart, tb.dirStart)
	tb.recs, tb.dirs = blockCache{max: cachedBlocks}, blockCache{max: cachedDirBlocks}
	for id := range w {
		if _, ok := s.Lookup(id); ok {
			t.Fatalf("Lookup(%s) found in overwritten records", id.Short())
		}
		break
	}
	if !damaged {
		t.Error("overwritten records not reported as damage")
	}
}
