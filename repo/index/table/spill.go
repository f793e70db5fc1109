package table

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// Spill builds a private, temporary index of one command's own: packs and
// their blobs are added as they are read, written as sorted runs of a
// bounded number of records, and merged into one table. Memory holds one
// run (56 bytes a record before it is written), never every blob; verify
// uses it to look blobs up in exactly the index files it read, without the
// host's cache (design.md §24.1).
//
// Of records with the same id, the first added wins, as in index.Index.
// The tables live in a directory of their own, authenticated with a random
// key that lives only in this process, and are removed by Close.
type Spill struct {
	dir  string
	key  []byte
	max  int
	runs []Info

	packs []Pack
	recs  []Record

	set *Set
	mu  sync.Mutex
	err error // the first damage found while the set was in use
}

// spillFanIn is the most runs merged at once: a merge compares the next
// record of every input for each record it writes.
const spillFanIn = 16

// SpillPrefix begins the name of every Spill's directory.
const SpillPrefix = "spill-"

// NewSpill creates an empty Spill in a new directory under parent (the
// system's temporary directory when parent is ""), which sorts up to run
// records in memory at once (at least one pack's).
func NewSpill(parent string, run int) (*Spill, error) {
	if parent != "" {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, fmt.Errorf("temporary index: %w", err)
		}
	}
	dir, err := os.MkdirTemp(parent, SpillPrefix)
	if err != nil {
		return nil, fmt.Errorf("temporary index: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Spill{dir: dir, key: key, max: run}, nil
}

// Dir is the directory holding the tables.
func (s *Spill) Dir() string { return s.dir }

// AddPack adds a pack and its blobs.
func (s *Spill) AddPack(id blob.ID, size int64, entries []pack.Entry) error {
	no := uint32(len(s.packs))
	s.packs = append(s.packs, Pack{ID: id, Size: size})
	for _, e := range entries {
		if !Fits(&e) {
			return fmt.Errorf("temporary index: pack %s: blob %s has type %d, compression %d", id.Short(), e.ID.Short(), e.Type, e.Compression)
		}
		s.recs = append(s.recs, Record{ID: e.ID, Pack: no, Type: e.Type, Compression: e.Compression, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength})
	}
	if len(s.recs) >= s.max {
		return s.flush()
	}
	return nil
}

// AddFile adds every pack of an index file.
func (s *Spill) AddFile(f *index.File) error {
	for _, p := range f.Packs {
		if err := s.AddPack(p.ID, p.Size, p.Blobs); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the packs and records held in memory as a run.
func (s *Spill) flush() error {
	if len(s.packs) == 0 {
		return nil
	}
	name, nonce, err := Build(s.dir, s.key, s.packs, s.recs)
	if err != nil {
		return fmt.Errorf("temporary index: %w", err)
	}
	s.runs = append(s.runs, Info{Name: name, Nonce: nonce, Records: uint64(len(s.recs))})
	s.packs, s.recs = s.packs[:0], s.recs[:0] // Build keeps neither
	return nil
}

// Finish writes what is left, merges the runs into one table (in groups
// of spillFanIn, earlier runs first, so the first record of an id still
// wins) and opens it. Lookups of the returned Set that meet damage answer
// "not found" and record the damage for Err.
func (s *Spill) Finish() (*Set, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	s.packs, s.recs = nil, nil
	for len(s.runs) > 1 {
		var next []Info
		for i := 0; i < len(s.runs); i += spillFanIn {
			group := s.runs[i:min(i+spillFanIn, len(s.runs))]
			if len(group) == 1 {
				next = append(next, group[0])
				continue
			}
			merged, err := s.merge(group)
			if err != nil {
				return nil, fmt.Errorf("temporary index: %w", err)
			}
			next = append(next, merged)
		}
		s.runs = next
	}
	set, err := OpenSet(s.dir, s.key, s.runs, func(err error) {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("temporary index: %w", err)
	}
	s.set = set
	return set, nil
}

// merge writes one table holding the group's runs and removes them.
func (s *Spill) merge(group []Info) (Info, error) {
	var ts []*Table
	defer func() {
		for _, t := range ts {
			_ = t.Close()
		}
	}()
	var out Info
	for _, in := range group {
		t, err := Open(filepath.Join(s.dir, in.Name), s.key, in.Nonce)
		if err != nil {
			return out, err
		}
		ts = append(ts, t)
		out.Records += in.Records
	}
	name, nonce, err := Merge(s.dir, s.key, ts)
	if err != nil {
		return out, err
	}
	for _, in := range group {
		_ = os.Remove(filepath.Join(s.dir, in.Name))
	}
	out.Name, out.Nonce = name, nonce
	return out, nil
}

// Err is the first damage lookups met (a table changed on disk while in
// use): their answers since then cannot be trusted.
func (s *Spill) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("temporary index in %s: %w", s.dir, s.err)
	}
	return nil
}

// Close closes the tables and removes the directory.
func (s *Spill) Close() error {
	if s.set != nil {
		s.set.Close()
	}
	return os.RemoveAll(s.dir)
}
