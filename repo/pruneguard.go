package repo

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// MaxBackupAge is G_max of docs/design.md §20: a backup that loaded the
// index before a prune marked data unused must write its snapshot within
// this long of loading it, and a journal entry older than this is not
// reused. prune's grace period must be longer.
const MaxBackupAge = 24 * time.Hour

// ErrPrunedDuringBackup means a prune marked data unused while a backup
// ran, and the backup cannot prove its snapshot would be complete.
var ErrPrunedDuringBackup = errors.New("a prune marked data unused while this backup ran")

// noteIndexFile records an index file this process has seen, and whether
// it relies on it: loaded and in effect, or written. SecureSnapshot tells a
// prune by them: one that a new file supersedes, or one relied on that is
// gone (only a sweep deletes index files).
func (r *Repository) noteIndexFile(name string, reliedOn bool) {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	r.indexSeen.add(name, reliedOn)
}

// noteIndexFiles records the index files of a start-up, as noteIndexFile.
func (r *Repository) noteIndexFiles(files iter.Seq2[string, bool]) {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	r.indexSeen.addAll(files)
}

func (r *Repository) seenIndexFile(name string) bool {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	return r.indexSeen.has(name)
}

// reliedOnIndexFileGone reports whether an index file this process relies on
// is missing from listed.
func (r *Repository) reliedOnIndexFileGone(listed []remote.ObjectInfo) bool {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	return r.indexSeen.reliedOnGone(listed)
}

// seenIndex is the set of index files a process has seen, each with
// whether it relies on it. A start-up adds every listed file, about 10^5
// in a court's repository between prunes, so those are kept as ids sorted
// in a slice, 33 bytes each, where a map of their names took about 100.
// Files noted one at a time (written, damaged), and names that are not
// ids, are kept in a map of names.
type seenIndex struct {
	sorted []seenFile
	names  map[string]bool
}

type seenFile struct {
	id       blob.ID
	reliedOn bool
}

func (s *seenIndex) find(id blob.ID) (int, bool) {
	return slices.BinarySearchFunc(s.sorted, id, func(f seenFile, id blob.ID) int { return bytes.Compare(f.id[:], id[:]) })
}

func (s *seenIndex) add(name string, reliedOn bool) {
	if id, ok := fileID(name); ok {
		if i, ok := s.find(id); ok {
			s.sorted[i].reliedOn = s.sorted[i].reliedOn || reliedOn
			return
		}
	}
	if s.names == nil {
		s.names = map[string]bool{}
	}
	s.names[name] = s.names[name] || reliedOn
}

func (s *seenIndex) addAll(files iter.Seq2[string, bool]) {
	for name, reliedOn := range files {
		id, ok := fileID(name)
		if !ok {
			s.add(name, reliedOn)
			continue
		}
		s.sorted = append(s.sorted, seenFile{id, reliedOn})
	}
	slices.SortFunc(s.sorted, func(a, b seenFile) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		return cmp.Compare(btoi(b.reliedOn), btoi(a.reliedOn)) // relied on first: kept by Compact
	})
	s.sorted = slices.CompactFunc(s.sorted, func(a, b seenFile) bool { return a.id == b.id })
	s.sorted = slices.Clip(s.sorted)
}

// fileID is the id that an index file's name spells in lower-case hex, as
// courtbak names them; any other name is kept as a name, so that two
// names never stand for one file.
func fileID(name string) (blob.ID, bool) {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'F' {
			return blob.ID{}, false
		}
	}
	id, err := blob.ParseID(name)
	return id, err == nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *seenIndex) has(name string) bool {
	if _, ok := s.names[name]; ok {
		return true
	}
	id, ok := fileID(name)
	if !ok {
		return false
	}
	_, ok = s.find(id)
	return ok
}

func (s *seenIndex) reliedOnGone(listed []remote.ObjectInfo) bool {
	names := make(map[string]bool, len(s.names))
	ids := make([]blob.ID, 0, len(listed))
	for _, fi := range listed {
		if _, ok := s.names[fi.Name]; ok {
			names[fi.Name] = true
		}
		if id, ok := fileID(fi.Name); ok {
			ids = append(ids, id)
		}
	}
	for name, reliedOn := range s.names {
		if reliedOn && !names[name] {
			return true
		}
	}
	slices.SortFunc(ids, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	for _, f := range s.sorted {
		if !f.reliedOn {
			continue
		}
		if _, ok := slices.BinarySearchFunc(ids, f.id, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }); !ok {
			return true
		}
	}
	return false
}

// wallNow is the clock without Go's monotonic reading, which stops while a
// machine is suspended: a backup suspended for days has been running for
// days as far as a prune is concerned.
func (r *Repository) wallNow() time.Time { return r.Now().Round(0) }

// SecureSnapshot is called by a backup just before it stores a snapshot
// whose root tree is root. If no index file it loaded has been superseded
// since, no prune marked data in between and there is nothing to do (the
// usual case: one listing of index/). Otherwise the prune's new index may
// leave out packs this snapshot needs: packs of blobs it deduplicated
// against, and its own packs indexed before the mark. SecureSnapshot
// indexes those packs again, so the snapshot is complete for readers at
// once and the prune's sweep keeps them; it refuses if the backup loaded
// its index more than MaxBackupAge ago, because the sweep may then already
// have deleted them.
func (r *Repository) SecureSnapshot(ctx context.Context, root blob.ID) error {
	infos, err := r.List(ctx, remote.Index)
	if err != nil {
		return fmt.Errorf("list index: %w", err)
	}
	// A prune marked since the index was loaded if an index file relied on
	// is gone (swept, perhaps two grace periods later), or if a new file
	// supersedes one that was seen.
	marked := r.reliedOnIndexFileGone(infos)
	for _, fi := range infos {
		if r.seenIndexFile(fi.Name) {
			continue
		}
		plain, err := r.LoadFile(ctx, fi.Handle)
		if err != nil {
			return fmt.Errorf("load index %s: %w", fi.Name, err)
		}
		f, err := index.Decode(plain)
		if err != nil {
			return fmt.Errorf("load index %s: %w", fi.Name, err)
		}
		for _, s := range f.Supersedes {
			if r.seenIndexFile(s.String()) {
				marked = true
			}
		}
	}
	if err := r.checkDamagedMark(ctx); err != nil {
		return err
	}
	if !marked {
		return nil
	}
	if age := r.wallNow().Sub(r.indexLoadedAt); age > MaxBackupAge {
		return fmt.Errorf("%w, and the backup ran %s, longer than %s: its snapshot was not written, and nothing stored before was lost; run the backup again",
			ErrPrunedDuringBackup, age.Round(time.Minute), MaxBackupAge)
	}
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		return err
	}
	superseded := index.Superseded(files)
	inEffect := index.New()
	for name, f := range files {
		if !superseded[name] {
			inEffect.AddFile(f)
		}
	}
	need := map[blob.ID]bool{}
	var missing error
	err = snapshot.Reachable(ctx, r, []blob.ID{root}, func(id blob.ID) {
		if inEffect.Has(id) {
			return // another copy (a repacked one, say) is indexed
		}
		loc, ok := r.index.Lookup(id)
		if !ok {
			if missing == nil {
				missing = fmt.Errorf("blob %s: %w", id.Short(), ErrBlobNotIndexed)
			}
			return
		}
		need[loc.Pack] = true
	})
	if err := errors.Join(err, missing); err != nil {
		return err
	}
	if len(need) == 0 {
		return nil
	}
	var packs []index.PackBlobs
	for id := range need {
		fi, err := r.be.Stat(ctx, remote.Handle{Type: remote.Data, Name: id.String()})
		if err != nil {
			return fmt.Errorf("%w, and pack %s that the snapshot needs is gone (%v); nothing stored before was lost: run the backup again",
				ErrPrunedDuringBackup, id.Short(), err)
		}
		// Every blob of the pack, from its header: the in-memory index
		// places a blob stored twice in one pack only.
		entries, err := r.ReadPackHeader(ctx, id, fi.Size)
		if err != nil {
			return fmt.Errorf("index pack %s again after a prune: %w", id.Short(), err)
		}
		packs = append(packs, index.PackBlobs{ID: id, Size: fi.Size, Blobs: entries})
	}
	if _, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: packs})); err != nil {
		return fmt.Errorf("index packs again after a prune: %w", err)
	}
	r.Warn("a prune marked data unused while this backup ran: indexed %d packs again that its snapshot needs", len(packs))
	return nil
}

// checkDamagedMark reads again the index files LoadIndex left out as
// damaged. One that is intact now (repaired meanwhile) and supersedes a
// file this backup loaded is a prune's mark the backup could not see: it
// may have deduplicated against packs that mark found unused, whose sweep
// may be deleting them now (the mark's time tells nothing about when this
// backup loaded its index), so the snapshot is refused. One still damaged
// keeps its mark's sweep from deleting anything (prune reads the files
// its mark wrote from storage).
func (r *Repository) checkDamagedMark(ctx context.Context) error {
	for _, name := range r.DamagedIndexFiles() {
		f, err := r.loadIndexFile(ctx, remote.Handle{Type: remote.Index, Name: name}, false)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		for _, s := range f.Supersedes {
			if r.seenIndexFile(s.String()) {
				return fmt.Errorf("%w: index file %s, damaged when this backup loaded the index, is intact now and supersedes files it used: its snapshot was not written, and nothing stored before was lost; run the backup again",
					ErrPrunedDuringBackup, name[:min(8, len(name))])
			}
		}
	}
	return nil
}
