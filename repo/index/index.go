// Package index maps blob ids to their place in packs. The in-memory Index
// answers "is this blob stored already?" during backup and "where is it?"
// during restore; index files persist it.
package index

import (
	"sort"
	"sync"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// Location is where a blob is stored.
type Location struct {
	Pack blob.ID
	pack.Entry
}

type entry struct {
	pack        uint32
	offset      uint32
	length      uint32
	rawLength   uint32
	typ         blob.Type
	compression uint8
}

// Index is safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   []blob.ID
	packPos map[blob.ID]uint32
	blobs   map[blob.ID]entry
}

// New returns an empty index.
func New() *Index {
	return &Index{packPos: map[blob.ID]uint32{}, blobs: map[blob.ID]entry{}}
}

// AddPack records the blobs of one pack. A blob already known keeps its
// first location: any intact copy will do.
func (x *Index) AddPack(packID blob.ID, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packPos[packID]
	if !ok {
		pos = uint32(len(x.packs))
		x.packs = append(x.packs, packID)
		x.packPos[packID] = pos
	}
	for _, e := range entries {
		if _, dup := x.blobs[e.ID]; dup {
			continue
		}
		x.blobs[e.ID] = entry{pack: pos, offset: e.Offset, length: e.Length, rawLength: e.RawLength, typ: e.Type, compression: e.Compression}
	}
}

// Has reports whether a blob is stored.
func (x *Index) Has(id blob.ID) bool {
	x.mu.RLock()
	_, ok := x.blobs[id]
	x.mu.RUnlock()
	return ok
}

// Lookup returns where a blob is stored.
func (x *Index) Lookup(id blob.ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return Location{}, false
	}
	return Location{Pack: x.packs[e.pack], Entry: pack.Entry{
		Type: e.typ, Compression: e.compression, ID: id,
		Offset: e.offset, Length: e.length, RawLength: e.rawLength,
	}}, true
}

// Len is the number of blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// PackIDs returns the ids of every indexed pack.
func (x *Index) PackIDs() []blob.ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]blob.ID(nil), x.packs...)
}

// Packs returns, for every indexed pack, its blobs sorted by offset.
func (x *Index) Packs() map[blob.ID][]pack.Entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[blob.ID][]pack.Entry, len(x.packs))
	for _, p := range x.packs {
		out[p] = nil
	}
	for id, e := range x.blobs {
		p := x.packs[e.pack]
		out[p] = append(out[p], pack.Entry{Type: e.typ, Compression: e.compression, ID: id, Offset: e.offset, Length: e.length, RawLength: e.rawLength})
	}
	for _, es := range out {
		sort.Slice(es, func(i, j int) bool { return es[i].Offset < es[j].Offset })
	}
	return out
}
