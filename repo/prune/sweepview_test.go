package prune

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

func sortedIDs(m map[blob.ID]index.PackBlobs) []blob.ID {
	return slices.SortedFunc(maps.Keys(m), func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
}

// joinSinceMark keeps the candidates holding a used blob that no pack in
// effect has, not one whose used blob is elsewhere too, nor one holding
// unused blobs only; a listing in effect of a candidate itself is no other
// copy; a used blob found nowhere stops the sweep.
func TestJoinSinceMark(t *testing.T) {
	usedHere, usedElsewhere, unused, usedRelisted := id(1), id(2), id(3), id(4)
	candidates := map[blob.ID]index.PackBlobs{
		id(10): listing(id(10), 1, entry(unused, 0, 1), entry(usedHere, 1, 1)),
		id(11): listing(id(11), 1, entry(usedElsewhere, 0, 1)),
		id(12): listing(id(12), 1, entry(unused, 0, 1)),
		id(13): listing(id(13), 1, entry(usedRelisted, 0, 1)),
	}
	inUseNow := index.New()
	inUseNow.AddPack(id(20), []pack.Entry{entry(usedElsewhere, 0, 1)})
	inUseNow.AddPack(id(13), []pack.Entry{entry(usedRelisted, 0, 1)}) // indexed again since the candidates were chosen
	join := func(used ...blob.ID) (map[blob.ID]bool, error) {
		dir := t.TempDir()
		order := sortedIDs(candidates)
		cs := newSorter(dir, candidateSize, 2*candidateSize)
		for n, cid := range order {
			for _, e := range candidates[cid].Blobs {
				if err := cs.add(binary.BigEndian.AppendUint32(slices.Clone(e.ID[:]), uint32(n))); err != nil {
					t.Fatal(err)
				}
			}
		}
		us := newSorter(dir, 32, 2*32)
		for _, u := range append(slices.Clone(used), used...) {
			if err := us.add(u[:]); err != nil {
				t.Fatal(err)
			}
		}
		cm, err := cs.sorted()
		if err != nil {
			t.Fatal(err)
		}
		defer cm.close()
		um, err := us.sorted()
		if err != nil {
			t.Fatal(err)
		}
		defer um.close()
		return joinSinceMark(cm, um, order, candidates, inUseNow, inUseNow)
	}
	needed, err := join(usedHere, usedElsewhere, usedRelisted)
	if err != nil {
		t.Fatal(err)
	}
	if len(needed) != 2 || !needed[id(10)] || !needed[id(13)] {
		t.Errorf("needed %v: want the packs with a used blob no other pack in effect has", needed)
	}
	if _, err := join(usedHere, id(9)); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a used blob found nowhere: %v, want ErrIncomplete", err)
	}
}

// readCandidateHeaders keeps a candidate whose header cannot be read,
// leaves one already gone for deletion, and adds a readable one's blobs
// to the sort and its trees (only) to r's index.
func TestReadCandidateHeaders(t *testing.T) {
	ctx := context.Background()
	be, r := newRefusing(t)
	bad := remote.Handle{Type: remote.Data, Name: id(1).String()}
	if err := be.Save(ctx, bad, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	s := r.NewSaver(ctx, 1)
	data, tree := []byte("a recording's chunk"), []byte(`{"nodes":[]}`)
	dataID, treeID := r.BlobID(data), r.BlobID(tree)
	if _, err := s.SaveBlob(blob.Data, dataID, data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveBlob(blob.Tree, treeID, tree); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dataLoc, _ := r.Index().Lookup(dataID)
	treeLoc, _ := r.Index().Lookup(treeID)
	stored, err := listPacks(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	candidates := map[blob.ID]index.PackBlobs{id(1): {ID: id(1), Size: 7}, id(2): {ID: id(2), Size: 100}}
	for _, p := range []blob.ID{dataLoc.Pack, treeLoc.Pack} {
		candidates[p] = index.PackBlobs{ID: p, Size: stored[p]}
	}
	order := sortedIDs(candidates)
	r.ResetIndex()
	cs := newSorter(t.TempDir(), candidateSize, 1<<20)
	kept, err := readCandidateHeaders(ctx, r, candidates, order, cs)
	if err != nil || kept != 1 {
		t.Errorf("kept %d (%v), want 1", kept, err)
	}
	if _, ok := candidates[id(1)]; ok {
		t.Error("a candidate whose header cannot be read is still to be deleted")
	}
	if _, ok := candidates[id(2)]; !ok {
		t.Error("a candidate already gone was taken out")
	}
	if !r.Index().Has(treeID) || r.Index().Has(dataID) {
		t.Errorf("index has the tree: %v, the data blob: %v; want only the tree", r.Index().Has(treeID), r.Index().Has(dataID))
	}
	m, err := cs.sorted()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	got := map[blob.ID]blob.ID{}
	for {
		rec, ok, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		var b blob.ID
		copy(b[:], rec)
		got[b] = order[binary.BigEndian.Uint32(rec[32:])]
	}
	if len(got) != 2 || got[dataID] != dataLoc.Pack || got[treeID] != treeLoc.Pack {
		t.Errorf("records %v: want the data blob and the tree, each with its pack", got)
	}
}
