package table

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
)

// Manifest says which tables of a cache directory are current and which
// index files each one holds. It is authenticated like the tables: a
// manifest or table that fails to authenticate is rebuilt from the index
// files, never trusted.
type Manifest struct {
	// Tables, oldest (largest) first.
	Tables []Info `json:"tables"`
	// Files are the index files that were listed when the manifest was
	// written, each with the table holding it (-1 for none: the file was
	// superseded) and the files it supersedes.
	Files map[string]File `json:"files"`
}

// Info describes one table file.
type Info struct {
	Name    string   `json:"name"`
	Nonce   blob.ID  `json:"nonce"`
	Records uint64   `json:"records"`
	Files   []string `json:"files"`
}

// File is what the manifest remembers of one index file.
type File struct {
	Table      int       `json:"table"`
	Supersedes []blob.ID `json:"supersedes,omitempty"`
}

const manifestName = "manifest"

func manifestMAC(key, body []byte) ([]byte, error) {
	h, err := blake3.NewKeyed(key)
	if err != nil {
		return nil, err
	}
	_, _ = h.WriteString("courtbak index table manifest v1\n")
	_, _ = h.Write(body)
	return h.Sum(nil), nil
}

// ReadManifest reads the manifest of dir. A missing manifest is an empty
// one; a damaged one is an error (the caller rebuilds).
func ReadManifest(dir string, key []byte) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return &Manifest{Files: map[string]File{}}, nil
	}
	if err != nil {
		return nil, err
	}
	macHex, body, ok := bytes.Cut(b, []byte("\n"))
	mac, herr := hex.DecodeString(string(macHex))
	want, err := manifestMAC(key, body)
	if err != nil {
		return nil, err
	}
	if !ok || herr != nil || !bytes.Equal(mac, want) {
		return nil, fmt.Errorf("%w: manifest fails authentication", ErrDamaged)
	}
	m := &Manifest{}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrDamaged, err)
	}
	if m.Files == nil {
		m.Files = map[string]File{}
	}
	for name, f := range m.Files {
		if f.Table < -1 || f.Table >= len(m.Tables) {
			return nil, fmt.Errorf("%w: manifest: file %s in table %d", ErrDamaged, name, f.Table)
		}
	}
	return m, nil
}

// WriteManifest stores m in dir atomically.
func WriteManifest(dir string, key []byte, m *Manifest) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mac, err := manifestMAC(key, body)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-manifest-*")
	if err != nil {
		return err
	}
	_, werr := f.WriteString(hex.EncodeToString(mac) + "\n")
	if werr == nil {
		_, werr = f.Write(body)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(dir, manifestName))
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}

// RemoveManifest deletes the manifest, so that the next run rebuilds.
func RemoveManifest(dir string) error {
	err := os.Remove(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// RemoveUnlisted deletes table files of dir that m does not name, and
// temporary files left by an interrupted build.
func RemoveUnlisted(dir string, m *Manifest) {
	keep := map[string]bool{}
	for _, t := range m.Tables {
		keep[t.Name] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasSuffix(n, ".tbl") && !keep[n]) || strings.HasPrefix(n, ".tmp-") {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}

// Set is the open tables of a manifest: the on-disk base of an
// index.Index. Lookups read one or two blocks of each table.
type Set struct {
	tables []*Table
	n      int
	once   sync.Once
	damage func(error)
}

// OpenSet opens the tables. damage is called once when a table turns out
// to be damaged while in use (lookups then answer "not found", which makes
// a backup store data again and never skip it).
func OpenSet(dir string, key []byte, infos []Info, damage func(error)) (*Set, error) {
	s := &Set{damage: damage}
	for _, in := range infos {
		t, err := Open(filepath.Join(dir, in.Name), key, in.Nonce)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.tables = append(s.tables, t)
		s.n += t.Len()
	}
	return s, nil
}

// Pin pins every table's packs and, up to maxDir bytes each, dirs (see
// Table.Pin). Not safe while lookups run.
func (s *Set) Pin(maxDir int64) error {
	for _, t := range s.tables {
		if err := t.Pin(maxDir); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every table.
func (s *Set) Close() {
	for _, t := range s.tables {
		_ = t.Close()
	}
}

func (s *Set) fail(err error) {
	s.once.Do(func() { s.damage(err) })
}

// Len is the number of records in all tables (a blob stored in two
// tables counts twice).
func (s *Set) Len() int { return s.n }

// Lookup finds a blob in the tables, newest first.
func (s *Set) Lookup(id blob.ID) (index.Location, bool) {
	for i := len(s.tables) - 1; i >= 0; i-- {
		t := s.tables[i]
		r, ok, err := t.Find(id)
		if err != nil {
			s.fail(err)
			continue
		}
		if !ok {
			continue
		}
		p, err := t.Pack(r.Pack)
		if err != nil {
			s.fail(err)
			continue
		}
		return index.Location{Pack: p.ID, Entry: r.Entry()}, true
	}
	return index.Location{}, false
}

// Has reports whether a blob is in a table.
func (s *Set) Has(id blob.ID) bool {
	for i := len(s.tables) - 1; i >= 0; i-- {
		_, ok, err := s.tables[i].Find(id)
		if err != nil {
			s.fail(err)
			continue
		}
		if ok {
			return true
		}
	}
	return false
}

// Missing returns the ids of ids that no table holds, sorted and each
// once. It looks them up in ascending order, table by table, so that ids
// whose records share a block (the blobs of a large file, or of a
// directory's files, in a table small enough) cost one read and one
// authentication of that block, not one each.
func (s *Set) Missing(ids []blob.ID) []blob.ID {
	left := slices.Clone(ids)
	slices.SortFunc(left, compareIDs)
	left = slices.Compact(left)
	for i := len(s.tables) - 1; i >= 0 && len(left) > 0; i-- {
		rd := reader{t: s.tables[i]}
		kept := left[:0]
		for _, id := range left {
			_, ok, err := rd.find(&id)
			if err != nil {
				s.fail(err)
			}
			if !ok {
				kept = append(kept, id)
			}
		}
		left = kept
	}
	return left
}

// LookupMany finds, for every i with found[i] false, the location of
// ids[i]; it sets locs[i] and found[i] for each one a table holds. Like
// Missing it reads each table's records in ascending order of id (an id
// asked for twice is found twice, from the blocks just read), then their
// packs in ascending order: a file's blobs are usually in a few packs,
// whose blocks are then read once.
func (s *Set) LookupMany(ids []blob.ID, locs []index.Location, found []bool) {
	var order []int
	for i := range ids {
		if !found[i] {
			order = append(order, i)
		}
	}
	byID := func(a, b int) int { return compareIDs(ids[a], ids[b]) }
	slices.SortFunc(order, byID)
	type hit struct {
		i int
		r Record
	}
	var hits []hit
	for ti := len(s.tables) - 1; ti >= 0 && len(order) > 0; ti-- {
		rd := reader{t: s.tables[ti]}
		kept := order[:0]
		hits = hits[:0]
		for _, i := range order {
			r, ok, err := rd.find(&ids[i])
			if err != nil {
				s.fail(err)
			}
			if ok {
				hits = append(hits, hit{i, r})
			} else {
				kept = append(kept, i)
			}
		}
		slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.r.Pack, b.r.Pack) })
		rd = reader{t: s.tables[ti]}
		failed := false
		for _, h := range hits {
			p, err := rd.pack(h.r.Pack)
			if err != nil {
				s.fail(err)
				kept, failed = append(kept, h.i), true // perhaps in an older table
				continue
			}
			locs[h.i], found[h.i] = index.Location{Pack: p.ID, Entry: h.r.Entry()}, true
		}
		if failed {
			slices.SortFunc(kept, byID)
		}
		order = kept
	}
}

func compareIDs(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }

// HasPack reports whether a pack is in a table.
func (s *Set) HasPack(id blob.ID) bool {
	for _, t := range s.tables {
		ok, err := t.HasPack(id)
		if err != nil {
			s.fail(err)
			continue
		}
		if ok {
			return true
		}
	}
	return false
}

// FromFiles turns index files into packs and records for Build.
func FromFiles(files []*index.File) ([]Pack, []Record) {
	var packs []Pack
	var recs []Record
	for _, f := range files {
		packs, recs = AppendFile(packs, recs, f)
	}
	return packs, recs
}

// AppendFile appends the packs and records of one index file.
func AppendFile(packs []Pack, recs []Record, f *index.File) ([]Pack, []Record) {
	for _, p := range f.Packs {
		no := uint32(len(packs))
		packs = append(packs, Pack{ID: p.ID, Size: p.Size})
		for _, e := range p.Blobs {
			recs = append(recs, Record{ID: e.ID, Pack: no, Type: e.Type, Compression: e.Compression, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength})
		}
	}
	return packs, recs
}
