package checker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/index/table"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/report"
)

// Verify with the key checks the index as the index files stored now say
// it, in memory that follows the packs, not the blobs (design.md §24.1):
//
//   - index files are read a batch at a time and dropped once their packs
//     and blobs are taken: each pack becomes an indexedPack (64 bytes),
//     each blob a record of a private on-disk table (table.Spill), which
//     the repository's index then looks blobs up in;
//   - a pack read in full is compared with its listing by a digest of the
//     listing's entries; only when they differ (damage) is the listing read
//     again from its index file, for the blob-level findings;
//   - what is found bad (packs, blobs) is kept in memory: little, unless
//     the repository is wrecked.

// indexedPack is what verify keeps of one indexed pack.
type indexedPack struct {
	id     blob.ID
	size   int64    // as the index records it
	file   int32    // the index file listing it: indexState.files[file]
	blobs  uint32   // the number of blobs listed
	digest [16]byte // listingDigest of the listed entries
}

// indexState is the index as this round of verify read it.
type indexState struct {
	// files are the index files read.
	files []remote.Handle
	// packs are the indexed packs, sorted by id, each listed by the first
	// index file (in name order) in effect that lists it.
	packs []indexedPack
	// badListings are the listings of packs found missing or of the wrong
	// size while the index was read: their blobs are marked unusable.
	badListings map[blob.ID][]pack.Entry
	spill       *table.Spill
	lock        *os.File // held while spill is in use
	// orphans are the blobs of the stored packs no index lists, found in
	// their headers (nil when there are none), looked up in orphanSet.
	orphans     *table.Spill
	orphansLock *os.File
	orphanSet   *table.Set

	// later are the entries of a pack's later listings (other index
	// files) that differ from its first: rare (§20.3), but the index
	// places blobs through them too, so --read-data checks them as well.
	later map[blob.ID][]pack.Entry
}

// staleSpillAge is how old a temporary index directory must be before
// another verify may remove it, if no process holds its lock: a verify
// that was killed leaves its directory behind.
const staleSpillAge = time.Hour

// newSpill creates a temporary index in the repository's state directory
// (the host's cache, sized for its index tables), else (no cache, or one
// that cannot be written) in the system's temporary directory.
func (c *checker) newSpill() (*table.Spill, *os.File, error) {
	spill, lock, err := newSpill(c.r.StateDir())
	if err != nil && c.r.StateDir() != "" {
		spill, lock, err = newSpill("")
	}
	return spill, lock, err
}

// newSpill creates a temporary index under parent (the system's
// temporary directory when "") and locks it, after removing those that
// killed runs left there: in the temporary directory too, where they
// would otherwise stay (gigabytes each at court scale), but there only
// directories with a verify's lock file, since other programs may use
// the same prefix.
func newSpill(parent string) (*table.Spill, *os.File, error) {
	if parent != "" {
		removeStaleSpills(parent)
	} else {
		removeStaleTempSpills(os.TempDir())
	}
	s, err := table.NewSpill(parent, indexRun)
	if err != nil {
		return nil, nil, err
	}
	lock, err := repo.LockExclusive(filepath.Join(s.Dir(), "lock"))
	if err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	return s, lock, nil
}

// removeStaleSpills removes the temporary indexes under parent that are
// old enough and whose lock no process holds.
func removeStaleSpills(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, table.SpillPrefix+"*"))
	for _, dir := range dirs {
		removeStaleSpill(dir)
	}
}

// removeStaleTempSpills is removeStaleSpills for the system's temporary
// directory: only directories holding a verify's lock file are judged.
func removeStaleTempSpills(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, table.SpillPrefix+"*"))
	for _, dir := range dirs {
		if fi, err := os.Lstat(filepath.Join(dir, "lock")); err == nil && fi.Mode().IsRegular() {
			removeStaleSpill(dir)
		}
	}
}

// removeStaleSpill removes one temporary index if it is old enough and no
// process holds its lock.
func removeStaleSpill(dir string) {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < staleSpillAge {
		return
	}
	lock, err := repo.LockExclusive(filepath.Join(dir, "lock"))
	if err != nil {
		return // in use, or not ours to judge
	}
	_ = os.RemoveAll(dir)
	_ = lock.Close()
}

// pack returns the indexed pack id, or nil.
func (s *indexState) pack(id blob.ID) *indexedPack {
	i, ok := slices.BinarySearchFunc(s.packs, id, func(p indexedPack, id blob.ID) int { return bytes.Compare(p.id[:], id[:]) })
	if !ok {
		return nil
	}
	return &s.packs[i]
}

// close removes the temporary index, and the repository's index, which
// looked blobs up in it, is emptied.
func (s *indexState) close(r *repo.Repository) {
	if s.orphans != nil {
		_ = s.orphans.Close()
		_ = s.orphansLock.Close()
		s.orphans, s.orphansLock, s.orphanSet = nil, nil, nil
	}
	if s.spill == nil {
		return
	}
	if r != nil {
		r.ResetIndex()
	}
	_ = s.spill.Close()
	_ = s.lock.Close()
	s.spill, s.lock = nil, nil
}

// listingDigest identifies a pack's listing (the index's or the pack
// header's) as a set of entries: equal digests mean equal sets.
func listingDigest(entries []pack.Entry) [16]byte {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b pack.Entry) int {
		if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
			return c
		}
		return int(a.Offset) - int(b.Offset)
	})
	h := blake3.New()
	var buf [48]byte
	for _, e := range sorted {
		b := append(buf[:0], e.ID[:]...)
		b = append(b, byte(e.Type), e.Compression)
		b = binary.LittleEndian.AppendUint32(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLength)
		_, _ = h.Write(b)
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Index files are read in batches of up to indexBatch files and
// indexBatchBytes of stored bytes (one file may exceed it): a batch,
// decoded (about three times its stored size), is what verify holds of
// the index files at once. The temporary index sorts indexRun records
// (48 bytes each) in memory at once.
var (
	indexBatch      = 8
	indexBatchBytes = int64(8 << 20)
	indexRun        = 1 << 19
)

// indexPass is one reading of the index files.
type indexPass struct {
	c     *checker
	st    *indexState
	seen  map[blob.ID]int // pack → position in st.packs
	probs []report.Problem
	// sup are the supersedes lists of the files read intact.
	sup map[string][]blob.ID
}

// checkIndex reads every index file, reports the unreadable ones, checks
// the listings of the files in effect (those no other present file
// supersedes) and makes them the repository's index for this round.
//
// Which files are in effect is known only once every file was read. The
// first reading takes every intact file as in effect; if one turns out
// superseded (rare: an interrupted prune), the index is read again
// without it, so that a superseded listing neither names a pack nor
// places a blob.
func (c *checker) checkIndex(ctx context.Context) error {
	names := handles(c.primary.objects, remote.Index)
	c.rep.Checked.IndexFiles = len(names)
	p, err := c.readIndex(ctx, names, nil)
	if err != nil {
		return err
	}
	superseded := map[string]bool{}
	for _, s := range p.sup {
		for _, id := range s {
			superseded[id.String()] = true
		}
	}
	again := false
	for name := range p.sup {
		again = again || superseded[name]
	}
	if again {
		skip := map[string]bool{}
		for _, h := range names {
			if _, read := p.sup[h.Name]; !read || superseded[h.Name] {
				skip[h.Name] = true
			}
		}
		p.st.close(nil)
		if p, err = c.readIndex(ctx, names, skip); err != nil {
			return err
		}
	}
	return c.useIndex(p)
}

// readIndex reads the index files not in skip, in name order, into a new
// indexState. The first reading (skip nil) checks each file against its
// name and reports those that cannot be read; a second reading only
// takes listings from the files the first found intact.
func (c *checker) readIndex(ctx context.Context, names []remote.Handle, skip map[string]bool) (*indexPass, error) {
	spill, lock, err := c.newSpill()
	if err != nil {
		return nil, err
	}
	p := &indexPass{c: c, st: &indexState{spill: spill, lock: lock, badListings: map[blob.ID][]pack.Entry{}, later: map[blob.ID][]pack.Entry{}},
		seen: map[blob.ID]int{}, sup: map[string][]blob.ID{}}
	fail := func(err error) (*indexPass, error) {
		p.st.close(nil)
		return nil, err
	}
	var todo []remote.Handle
	for _, h := range names {
		if !skip[h.Name] {
			todo = append(todo, h)
		}
	}
	for len(todo) > 0 {
		n, size := 1, c.primary.objects[todo[0]]
		for n < len(todo) && n < indexBatch && size+c.primary.objects[todo[n]] <= indexBatchBytes {
			size += c.primary.objects[todo[n]]
			n++
		}
		batch := todo[:n]
		todo = todo[n:]
		files := make([]*index.File, n)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		err := parallel(ctx, c.opts.Workers, idx, func(i int) {
			files[i] = c.loadIndexFile(ctx, batch[i], skip == nil)
		})
		if err != nil {
			return fail(err)
		}
		for i, f := range files {
			if f == nil {
				continue
			}
			if err := p.add(batch[i], f); err != nil {
				return fail(err)
			}
		}
	}
	return p, nil
}

// loadIndexFile reads, checks and decodes one index file, or returns nil.
// With report, a file that cannot be read is reported and counted as
// read; without (a second reading), it is only left out.
func (c *checker) loadIndexFile(ctx context.Context, h remote.Handle, report bool) *index.File {
	var (
		data []byte
		err  error
	)
	if report {
		data, err = c.load(ctx, h)
	} else if data, err = remote.ReadAll(ctx, c.primary.Backend, h); err == nil {
		err = repo.CheckName(h, data)
	}
	var f *index.File
	if err == nil {
		var plain []byte
		if plain, err = c.r.OpenFile(h, data); err == nil {
			f, err = index.Decode(plain)
		}
	}
	if err != nil {
		if report && ctx.Err() == nil {
			c.problem(c.loadProblem(KindIndexDamaged, h, fmt.Errorf("index file cannot be read: %w", err)))
		}
		return nil
	}
	return f
}

// add takes the listings of one index file: its packs not listed by an
// earlier file are checked (offsets, stored size) and kept; all its blobs
// go to the temporary index, where an earlier file's entry for a blob wins.
func (p *indexPass) add(h remote.Handle, f *index.File) error {
	c := p.c
	name := h.String()
	p.sup[h.Name] = f.Supersedes
	fileNo := int32(len(p.st.files))
	p.st.files = append(p.st.files, h)
	for _, pk := range f.Packs {
		if i, dup := p.seen[pk.ID]; dup {
			// Safety: the temporary index may place a blob in this pack
			// through this listing; one that differs from the first is
			// kept, so that reading the pack checks its blobs too.
			if listingDigest(pk.Blobs) != p.st.packs[i].digest {
				p.st.later[pk.ID] = append(p.st.later[pk.ID], pk.Blobs...)
			}
			continue
		}
		p.seen[pk.ID] = len(p.st.packs)
		p.st.packs = append(p.st.packs, indexedPack{id: pk.ID, size: pk.Size, file: fileNo,
			blobs: uint32(len(pk.Blobs)), digest: listingDigest(pk.Blobs)})
		var off uint32
		for _, e := range pk.Blobs {
			if e.Offset != off {
				p.probs = append(p.probs, report.Problem{Copy: c.primary.Location, Kind: KindIndexInconsistent, Object: name, Blob: e.ID.String(),
					Message: fmt.Sprintf("the index places blob %s of pack %s at offset %d, but the blobs before it end at %d", e.ID.Short(), pk.ID.Short(), e.Offset, off),
					Action:  "the index file was written wrong: report it; the data may still be intact"})
				break
			}
			off += e.Length
		}
		if size, ok := c.primary.objects[remote.Handle{Type: remote.Data, Name: pk.ID.String()}]; !ok || size != pk.Size {
			p.st.badListings[pk.ID] = pk.Blobs
		}
	}
	return p.st.spill.AddFile(f)
}

// useIndex makes a reading the round's index: the problems it found are
// reported, the packs sorted, and the repository looks blobs up in the
// temporary index.
func (c *checker) useIndex(p *indexPass) error {
	set, err := p.st.spill.Finish()
	if err != nil {
		p.st.close(nil)
		return err
	}
	c.idx = p.st
	c.r.ResetIndex()
	c.r.Index().SetBase(set)
	for _, pr := range p.probs {
		c.problem(pr)
	}
	slices.SortFunc(c.idx.packs, func(a, b indexedPack) int { return bytes.Compare(a.id[:], b.id[:]) })
	return nil
}

// listing reads again the index file that lists an indexed pack and
// returns the pack's entries: for a pack whose contents do not match the
// digest of its listing. Nil if the file cannot be read now.
func (c *checker) listing(ctx context.Context, ip *indexedPack) []pack.Entry {
	f := c.loadIndexFile(ctx, c.idx.files[ip.file], false)
	if f == nil {
		return nil
	}
	for _, pk := range f.Packs {
		if pk.ID == ip.id {
			return pk.Blobs
		}
	}
	return nil
}
