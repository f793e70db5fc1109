package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/index/table"
)

// The index of a repository with a cache directory lives in sorted tables
// there (package repo/index/table, docs/design.md §24). Loading it reads
// only the index files that the tables do not hold yet; the tables are
// read a block at a time while the command runs.

// Table build limits: records per table built at once (its sort runs in
// memory, 56 bytes a record), and tables before the smallest are merged.
var (
	tableRunRecords = 1 << 21
	maxTables       = 8
)

// cacheError is a failure of the local cache (full, read-only, damaged),
// after which the index is loaded into memory instead.
type cacheError struct{ err error }

func (e cacheError) Error() string { return "index cache: " + e.err.Error() }
func (e cacheError) Unwrap() error { return e.err }

func (r *Repository) tableDir() string {
	if d := r.StateDir(); d != "" {
		return filepath.Join(d, "itables")
	}
	return ""
}

// tableKey authenticates the tables: derived from the master key, so only
// password holders can make an entry that a backup would trust.
func (r *Repository) tableKey() []byte {
	out := make([]byte, 32)
	blake3.DeriveKey("courtbak 2026-12 local index tables v1", r.key.Bytes(), out)
	return out
}

// loadIndexTables brings the tables up to date with the index files listed
// now and makes them the base of the in-memory index.
func (r *Repository) loadIndexTables(ctx context.Context) error {
	dir := r.tableDir()
	lock, err := lockWait(filepath.Join(dir, "lock"))
	if err != nil {
		return cacheError{err}
	}
	defer lock.Close()
	key := r.tableKey()
	m, err := table.ReadManifest(dir, key)
	if err != nil {
		r.Warn("index cache in %s is damaged, rebuilding it: %v", dir, err)
		m = &table.Manifest{Files: map[string]table.File{}}
	}

	infos, err := r.List(ctx, remote.Index)
	if err != nil {
		return fmt.Errorf("list index: %w", err)
	}
	r.pruneCache(remote.Index, infos)
	listed := make(map[string]bool, len(infos))
	var fresh []remote.ObjectInfo
	for _, fi := range infos {
		listed[fi.Name] = true
		if _, ok := m.Files[fi.Name]; !ok {
			fresh = append(fresh, fi)
		}
	}
	files := make(map[string]*index.File, len(fresh))
	if err := r.loadIndexFiles(ctx, fresh, files); err != nil {
		return err
	}
	supersedesOf := func(name string) []blob.ID {
		if f, ok := files[name]; ok {
			return f.Supersedes
		}
		return m.Files[name].Supersedes
	}
	if err := r.settleListing(ctx, listed, files, m.Files, supersedesOf); err != nil {
		return err
	}

	// Which listed files are in effect: the rule of design.md §13 over the
	// supersedes lists of new files and of files the manifest knows.
	superseded := map[string]bool{}
	for name := range listed {
		for _, s := range supersedesOf(name) {
			superseded[s.String()] = true
		}
	}
	inEffect := func(name string) bool { return listed[name] && !superseded[name] }

	// A table stays only if every file it holds is still in effect (a
	// prune's mark supersedes them all, and the tables are built again).
	next := &table.Manifest{Files: map[string]table.File{}}
	var reread []remote.ObjectInfo
	for _, t := range m.Tables {
		keep := true
		for _, name := range t.Files {
			keep = keep && inEffect(name)
		}
		if keep {
			// A table that does not authenticate is built again.
			tb, err := table.Open(filepath.Join(dir, t.Name), key, t.Nonce)
			if err != nil {
				r.Warn("index cache: rebuilding a damaged table: %v", err)
				keep = false
			} else {
				_ = tb.Close()
			}
		}
		if keep {
			next.Tables = append(next.Tables, t)
			continue
		}
		for _, name := range t.Files {
			if inEffect(name) {
				reread = append(reread, remote.ObjectInfo{Handle: remote.Handle{Type: remote.Index, Name: name}})
			}
		}
	}
	for name := range listed {
		if f, ok := m.Files[name]; ok && f.Table < 0 && inEffect(name) {
			// in effect again: its superseding file is gone
			reread = append(reread, remote.ObjectInfo{Handle: remote.Handle{Type: remote.Index, Name: name}})
		}
	}
	if err := r.loadIndexFiles(ctx, reread, files); err != nil {
		return err
	}
	var build []string
	for name := range files {
		if inEffect(name) {
			build = append(build, name)
		}
	}
	slices.Sort(build)
	if err := r.buildTables(dir, key, next, files, build); err != nil {
		return cacheError{err}
	}
	for i, t := range next.Tables {
		for _, name := range t.Files {
			next.Files[name] = table.File{Table: i}
		}
	}
	for name := range listed {
		f, ok := next.Files[name]
		if !ok {
			f.Table = -1 // superseded: in no table
		}
		f.Supersedes = supersedesOf(name)
		next.Files[name] = f
	}
	if err := table.WriteManifest(dir, key, next); err != nil {
		return cacheError{err}
	}
	table.RemoveUnlisted(dir, next)

	set, err := table.OpenSet(dir, key, next.Tables, func(err error) {
		r.Warn("index cache in %s is damaged (%v): it is rebuilt by the next run; blobs it should know are stored again", dir, err)
		_ = table.RemoveManifest(dir)
	})
	if err != nil {
		_ = table.RemoveManifest(dir)
		return cacheError{err}
	}
	r.index.SetBase(set)
	for name := range listed {
		r.noteIndexFile(name, inEffect(name))
	}
	return nil
}

// settleListing applies the rule of LoadIndexFiles for listings that are
// not snapshots in time: when a listed file supersedes another listed one,
// list again and add the files only the second listing shows, except those
// that supersede others. Files the manifest knows are not read again.
func (r *Repository) settleListing(ctx context.Context, listed map[string]bool, files map[string]*index.File, known map[string]table.File, supersedesOf func(string) []blob.ID) error {
	supersedesListed := false
	for name := range listed {
		for _, s := range supersedesOf(name) {
			supersedesListed = supersedesListed || listed[s.String()]
		}
	}
	if !supersedesListed {
		return nil
	}
	again, err := r.List(ctx, remote.Index)
	if err != nil {
		return fmt.Errorf("list index: %w", err)
	}
	var more []remote.ObjectInfo
	for _, fi := range again {
		if listed[fi.Name] {
			continue
		}
		if k, ok := known[fi.Name]; ok {
			if len(k.Supersedes) == 0 {
				listed[fi.Name] = true
			}
			continue
		}
		more = append(more, fi)
	}
	added := make(map[string]*index.File, len(more))
	if err := r.loadIndexFiles(ctx, more, added); err != nil {
		return err
	}
	for name, f := range added {
		if len(f.Supersedes) == 0 {
			files[name] = f
			listed[name] = true
		}
	}
	return nil
}

// buildTables adds tables holding the named files to m: one per run of
// files, merged into one if there are several, then merged with the
// smallest tables while the newest is at least half as large as the one
// before it or there are too many (amortised: each record is rewritten
// about log2 of the repository's growth times).
func (r *Repository) buildTables(dir string, key []byte, m *table.Manifest, files map[string]*index.File, names []string) error {
	var runs []table.Info
	for len(names) > 0 {
		var batch []*index.File
		var batchNames []string
		n := 0
		for len(names) > 0 && (n == 0 || n+blobCount(files[names[0]]) <= tableRunRecords) {
			f := files[names[0]]
			n += blobCount(f)
			batch = append(batch, f)
			batchNames = append(batchNames, names[0])
			names = names[1:]
		}
		packs, recs := table.FromFiles(batch)
		name, nonce, err := table.Build(dir, key, packs, recs)
		if err != nil {
			return err
		}
		runs = append(runs, table.Info{Name: name, Nonce: nonce, Records: uint64(len(recs)), Files: batchNames})
		for _, f := range batch {
			f.Packs = nil // the memory of a run is freed as soon as it is written
		}
	}
	if len(runs) > 1 {
		merged, err := r.mergeTables(dir, key, runs)
		if err != nil {
			return err
		}
		runs = []table.Info{merged}
	}
	m.Tables = append(m.Tables, runs...)
	for k := len(m.Tables); k >= 2; k = len(m.Tables) {
		last, prev := m.Tables[k-1], m.Tables[k-2]
		if last.Records*2 < prev.Records && k <= maxTables {
			break
		}
		merged, err := r.mergeTables(dir, key, m.Tables[k-2:])
		if err != nil {
			return err
		}
		m.Tables = append(m.Tables[:k-2], merged)
	}
	return nil
}

func blobCount(f *index.File) int {
	n := 0
	for _, p := range f.Packs {
		n += len(p.Blobs)
	}
	return n
}

// mergeTables writes one table holding the given ones.
func (r *Repository) mergeTables(dir string, key []byte, infos []table.Info) (table.Info, error) {
	var ts []*table.Table
	defer func() {
		for _, t := range ts {
			_ = t.Close()
		}
	}()
	out := table.Info{}
	for _, in := range infos {
		t, err := table.Open(filepath.Join(dir, in.Name), key, in.Nonce)
		if err != nil {
			return out, err
		}
		ts = append(ts, t)
		out.Files = append(out.Files, in.Files...)
	}
	name, nonce, err := table.Merge(dir, key, ts)
	if err != nil {
		return out, err
	}
	t, err := table.Open(filepath.Join(dir, name), key, nonce)
	if err != nil {
		return out, err
	}
	out.Name, out.Nonce, out.Records = name, nonce, uint64(t.Len())
	_ = t.Close()
	return out, nil
}

// lockWait creates path if needed and takes an exclusive advisory lock on
// it, waiting for other processes of this host to release it.
func lockWait(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, true); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}
