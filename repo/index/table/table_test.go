package table

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func randID(rng *rand.Rand) blob.ID {
	var id blob.ID
	for i := 0; i < 32; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	return id
}

// genFiles makes index files of n blobs in packs of perPack.
func genFiles(rng *rand.Rand, n, perPack int) []*index.File {
	var files []*index.File
	f := &index.File{}
	for n > 0 {
		p := index.PackBlobs{ID: randID(rng), Size: 1 << 24}
		var off uint32
		for i := 0; i < perPack && n > 0; i, n = i+1, n-1 {
			e := pack.Entry{ID: randID(rng), Type: blob.Type(rng.IntN(2)), Compression: uint8(rng.IntN(2)), Offset: off, Length: 100 + uint32(rng.IntN(1<<20)), RawLength: uint32(rng.IntN(1 << 22))}
			off += e.Length
			p.Blobs = append(p.Blobs, e)
		}
		f.Packs = append(f.Packs, p)
		if len(f.Packs) == 64 {
			files = append(files, f)
			f = &index.File{}
		}
	}
	if len(f.Packs) > 0 {
		files = append(files, f)
	}
	return files
}

// want maps every blob of files to its first location.
func want(files []*index.File) map[blob.ID]index.Location {
	out := map[blob.ID]index.Location{}
	for _, f := range files {
		for _, p := range f.Packs {
			for _, e := range p.Blobs {
				if _, ok := out[e.ID]; !ok {
					out[e.ID] = index.Location{Pack: p.ID, Entry: e}
				}
			}
		}
	}
	return out
}

func build(t *testing.T, dir string, files []*index.File) Info {
	t.Helper()
	packs, recs := FromFiles(files)
	name, nonce, err := Build(dir, testKey, packs, recs)
	if err != nil {
		t.Fatal(err)
	}
	return Info{Name: name, Nonce: nonce}
}

func checkSet(t *testing.T, s *Set, w map[blob.ID]index.Location, rng *rand.Rand) {
	t.Helper()
	for id, loc := range w {
		got, ok := s.Lookup(id)
		if !ok || got != loc {
			t.Fatalf("Lookup(%s) = %+v, %v; want %+v", id.Short(), got, ok, loc)
		}
		if !s.Has(id) || !s.HasPack(loc.Pack) {
			t.Fatalf("Has/HasPack(%s) false", id.Short())
		}
	}
	for range 1000 {
		id := randID(rng)
		if _, ok := s.Lookup(id); ok || s.Has(id) || s.HasPack(id) {
			t.Fatalf("unknown id %s found", id.Short())
		}
	}
}

func TestBuildLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 84, 85, 86, 5000} {
		dir := t.TempDir()
		files := genFiles(rng, n, 11)
		in := build(t, dir, files)
		s, err := OpenSet(dir, testKey, []Info{in}, func(err error) { t.Fatalf("damage: %v", err) })
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != n {
			t.Fatalf("Len = %d, want %d", s.Len(), n)
		}
		checkSet(t, s, want(files), rng)
		s.Close()
	}
}

// A blob and a pack listed twice (two hosts stored one chunk; a pack
// indexed twice) are kept once, the first location winning.
func TestDuplicatesAndMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	a := genFiles(rng, 3000, 7)
	b := genFiles(rng, 2000, 13)
	// b repeats a pack of a, and stores a blob of a in another pack.
	b[0].Packs = append(b[0].Packs, a[0].Packs[0])
	dup := a[1].Packs[2].Blobs[0]
	b[0].Packs[0].Blobs = append(b[0].Packs[0].Blobs, pack.Entry{ID: dup.ID, Offset: 1 << 30, Length: 50, RawLength: 10})
	ia, ib := build(t, dir, a), build(t, dir, b)
	var ts []*Table
	for _, in := range []Info{ia, ib} {
		tb, err := Open(filepath.Join(dir, in.Name), testKey, in.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tb)
	}
	name, nonce, err := Merge(dir, testKey, ts)
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]*index.File{}, a...), b...)
	w := want(all)
	s, err := OpenSet(dir, testKey, []Info{{Name: name, Nonce: nonce}}, func(err error) { t.Fatalf("damage: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != len(w) {
		t.Fatalf("merged Len = %d, want %d", s.Len(), len(w))
	}
	if s.tables[0].NumPacks() != len(a[0].Packs)+countPacks(a[1:])+countPacks(b)-1 {
		t.Fatalf("merged table has %d packs", s.tables[0].NumPacks())
	}
	checkSet(t, s, w, rng)
	if loc, _ := s.Lookup(dup.ID); loc.Offset != dup.Offset {
		t.Fatalf("duplicate blob: got offset %d, want the first table's %d", loc.Offset, dup.Offset)
	}
}

func countPacks(fs []*index.File) int {
	n := 0
	for _, f := range fs {
		n += len(f.Packs)
	}
	return n
}

// Every damaged byte is noticed: at open (header, size) or at the lookup
// that reads its block, which then answers "not found" and reports the
// damage once.
func TestDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	files := genFiles(rng, 3000, 11)
	in := build(t, dir, files)
	path := filepath.Join(dir, in.Name)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := want(files)
	for _, at := range []int{0, 20, blockSize + 100, len(orig)/2 + 7, len(orig) - 1} {
		b := append([]byte{}, orig...)
		b[at] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		damaged := 0
		s, err := OpenSet(dir, testKey, []Info{in}, func(error) { damaged++ })
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("byte %d: open error %v is not ErrDamaged", at, err)
			}
			continue
		}
		missing := 0
		for id := range w {
			if _, ok := s.Lookup(id); !ok {
				missing++
			}
		}
		s.Close()
		if damaged != 1 || missing == 0 {
			t.Fatalf("byte %d: damage reported %d times, %d blobs missing", at, damaged, missing)
		}
		// Batches, too, answer "not found" for what they cannot read.
		damaged = 0
		if s, err = OpenSet(dir, testKey, []Info{in}, func(error) { damaged++ }); err != nil {
			t.Fatal(err)
		}
		ids := make([]blob.ID, 0, len(w))
		for id := range w {
			ids = append(ids, id)
		}
		locs, found := make([]index.Location, len(ids)), make([]bool, len(ids))
		s.LookupMany(ids, locs, found)
		notFound := 0
		for i, ok := range found {
			if !ok {
				notFound++
			} else if locs[i] != w[ids[i]] {
				t.Fatalf("byte %d: LookupMany found %+v for %s", at, locs[i], ids[i].Short())
			}
		}
		miss := s.Missing(ids)
		// Missing reads no pack block: damage there hides nothing from it.
		inPacks := uint64(at)/blockSize < s.tables[0].recStart
		s.Close()
		if damaged != 1 || notFound == 0 || len(miss) > notFound || (len(miss) == 0) != inPacks {
			t.Fatalf("byte %d: batches: damage reported %d times, %d not found, %d missing", at, damaged, notFound, len(miss))
		}
	}
	// A table opened with another key or nonce does not open.
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, []byte("another key of thirty-two bytes!"), in.Nonce); !errors.Is(err, ErrDamaged) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := Open(path, testKey, blob.ID{1}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("other nonce: %v", err)
	}
	// Truncation is caught by the size check.
	if err := os.WriteFile(path, orig[:len(orig)-blockSize], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, testKey, in.Nonce); !errors.Is(err, ErrDamaged) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	m, err := ReadManifest(dir, testKey)
	if err != nil || len(m.Tables) != 0 {
		t.Fatalf("missing manifest: %v, %+v", err, m)
	}
	m.Tables = []Info{{Name: "a.tbl", Records: 3, Files: []string{"f1"}}}
	m.Files["f1"] = File{Table: 0}
	m.Files["f2"] = File{Table: -1, Supersedes: []blob.ID{{7}}}
	if err := WriteManifest(dir, testKey, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir, testKey)
	if err != nil || got.Files["f2"].Supersedes[0] != (blob.ID{7}) || got.Tables[0].Name != "a.tbl" {
		t.Fatalf("read back: %v, %+v", err, got)
	}
	if _, err := ReadManifest(dir, []byte("another key of thirty-two bytes!")); !errors.Is(err, ErrDamaged) {
		t.Fatalf("other key: %v", err)
	}
	p := filepath.Join(dir, manifestName)
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 1
	_ = os.WriteFile(p, b, 0o600)
	if _, err := ReadManifest(dir, testKey); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged: %v", err)
	}
}

// A table written on amd64 reads the same on every architecture (CI runs
// this under qemu on big-endian s390x). COURTBAK_UPDATE_FIXTURE=1 writes
// the fixture again.
func TestFixtureFromAMD64(t *testing.T) {
	files := genFiles(rand.New(rand.NewPCG(42, 42)), 500, 11)
	path, noncePath := filepath.Join("testdata", "amd64.tbl"), filepath.Join("testdata", "amd64.nonce")
	if os.Getenv("COURTBAK_UPDATE_FIXTURE") == "1" {
		dir := t.TempDir()
		in := build(t, dir, files)
		b, err := os.ReadFile(filepath.Join(dir, in.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(noncePath, []byte(in.Nonce.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nb, err := os.ReadFile(noncePath)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := blob.ParseID(string(nb))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Open(path, testKey, nonce)
	if err != nil {
		t.Fatal(err)
	}
	s := &Set{tables: []*Table{tb}, n: tb.Len(), damage: func(err error) { t.Fatalf("damage: %v", err) }}
	defer s.Close()
	checkSet(t, s, want(files), rand.New(rand.NewPCG(1, 1)))
}

// Lookups and batches are safe from many goroutines at once (a backup's
// workers).
func TestConcurrentLookups(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	dir := t.TempDir()
	files := genFiles(rng, 2000, 11)
	in := build(t, dir, files)
	s, err := OpenSet(dir, testKey, []Info{in}, func(err error) { t.Errorf("damage: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := want(files)
	var ids []blob.ID
	for id := range w {
		ids = append(ids, id)
	}
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for id, loc := range w {
				got, found := s.Lookup(id)
				ok = ok && found && got == loc
			}
			done <- ok
		}()
	}
	for range 2 { // batches, sharing the caches with the single lookups
		go func() {
			ok := len(s.Missing(ids)) == 0
			locs, found := make([]index.Location, len(ids)), make([]bool, len(ids))
			s.LookupMany(ids, locs, found)
			for i, id := range ids {
				ok = ok && found[i] && locs[i] == w[id]
			}
			done <- ok
		}()
	}
	for range 6 {
		if !<-done {
			t.Error("a concurrent lookup failed")
		}
	}
}

// A block read once is served from the table's caches: a second lookup
// of any blob, even one whose bucket spans two blocks, reads nothing from
// the file (here: a closed file), and the caches stay within their bounds
// however many blocks are read.
func TestRepeatedLookupsAreServedFromTheBlockCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	big, w := openTable(t, rng, 20000)
	for id := range w {
		if _, ok, err := big.Find(id); !ok || err != nil {
			t.Fatalf("Find(%s): %v, %v", id.Short(), ok, err)
		}
	}
	if n := big.recs.len(); n == 0 || n > cachedBlocks {
		t.Fatalf("%d record blocks cached, want 1 to %d", n, cachedBlocks)
	}
	if n := big.dirs.len(); n == 0 || n > cachedDirBlocks {
		t.Fatalf("%d dir blocks cached, want 1 to %d", n, cachedDirBlocks)
	}

	// 2000 blobs: 24 record blocks, so many buckets span two blocks.
	small, w := openTable(t, rng, 2000)
	for id := range w {
		if _, ok, err := small.Find(id); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := small.f.Close(); err != nil {
		t.Fatal(err)
	}
	for id := range w {
		if r, ok, err := small.Find(id); !ok || err != nil || r.ID != id {
			t.Fatalf("second Find with the file closed: %v, %v: the blocks were not cached", ok, err)
		}
	}
}

func openTable(t *testing.T, rng *rand.Rand, n int) (*Table, map[blob.ID]index.Location) {
	t.Helper()
	dir := t.TempDir()
	files := genFiles(rng, n, 11)
	in := build(t, dir, files)
	tb, err := Open(filepath.Join(dir, in.Name), testKey, in.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	return tb, want(files)
}

// Batches answer exactly what single lookups answer, over several tables
// (newest first, as Lookup), with ids repeated, unknown, or in memory
// order; and a sorted batch reads each block of a table once, even with
// caches too small to keep any: 20,000 blobs cost about as many block
// reads as the table has blocks, not two per blob.
func TestBatchesAnswerLikeSingleLookups(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dir := t.TempDir()
	var infos []Info
	var all []*index.File
	for _, n := range []int{20000, 3000, 500} {
		files := genFiles(rng, n, 11)
		infos = append(infos, build(t, dir, files))
		all = append(all, files...)
	}
	s, err := OpenSet(dir, testKey, infos, func(err error) { t.Fatalf("damage: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := want(all)
	var ids, unknown []blob.ID
	for id := range w {
		ids = append(ids, id)
	}
	for range 100 {
		unknown = append(unknown, randID(rng))
	}
	batch := append(append(append([]blob.ID{}, ids...), unknown...), ids[:50]...)
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })

	for _, tb := range s.tables {
		tb.recs.max, tb.dirs.max = 1, 1
	}
	before := s.tables[0].reads.Load()
	miss := s.Missing(batch)
	bigReads := s.tables[0].reads.Load() - before
	slices.SortFunc(unknown, compareIDs)
	if !slices.Equal(miss, unknown) {
		t.Fatalf("Missing: %d ids, want the %d unknown ones", len(miss), len(unknown))
	}
	big := s.tables[0]
	if blocks := big.dirStart + sectionBlocks(1<<big.bits+1, perDirBlock); bigReads > blocks {
		t.Fatalf("a sorted batch read %d blocks of a table of %d", bigReads, blocks)
	}

	locs := make([]index.Location, len(batch))
	found := make([]bool, len(batch))
	found[0] = true // taken as known already: left as it is
	s.LookupMany(batch, locs, found)
	for i, id := range batch {
		loc, ok := s.Lookup(id)
		if i == 0 {
			if locs[0] != (index.Location{}) {
				t.Fatal("LookupMany changed an entry found already")
			}
			continue
		}
		if ok != found[i] || loc != locs[i] {
			t.Fatalf("id %s: LookupMany %v %+v, Lookup %v %+v", id.Short(), found[i], locs[i], ok, loc)
		}
		if wl, known := w[id]; ok != known || (ok && wl != loc) {
			t.Fatalf("id %s: Lookup %v %+v, want %v %+v", id.Short(), ok, loc, known, wl)
		}
	}
}
