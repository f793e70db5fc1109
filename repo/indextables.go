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

// maxTables is the most tables a lookup reads.
var maxTables = 8

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
//
// New index files are read a group at a time and each group becomes a
// table at once, so memory holds one group, not every new file: a fresh
// host builds the tables of any repository in bounded memory. Whether a
// file is in effect is known only once every supersedes list has been
// read; a group holding a file that turns out superseded (rare: a prune
// marked recently) is built again without it.
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
	if ok := r.openUnchangedTables(dir, key, m, infos); ok {
		return nil
	}
	r.pruneCache(remote.Index, infos)
	listed := make(map[string]bool, len(infos))
	var fresh []string
	for _, fi := range infos {
		listed[fi.Name] = true
		if _, ok := m.Files[fi.Name]; !ok {
			fresh = append(fresh, fi.Name)
		}
	}
	b := &tableBuild{r: r, dir: dir, key: key, sup: map[string][]blob.ID{}, damaged: map[string]error{}, sizes: map[string]int64{}}
	for _, fi := range infos {
		b.sizes[fi.Name] = fi.Size
	}
	defer b.abort()
	if err := b.read(ctx, fresh); err != nil {
		return err
	}
	// A damaged file (no intact copy found) is left out as if it were
	// missing, as LoadIndex does without tables (indexdamage.go); not in
	// the manifest, it is read again by the next run.
	forgetDamaged := func() {
		for name := range b.damaged {
			delete(listed, name)
		}
	}
	forgetDamaged()
	supersedesOf := func(name string) []blob.ID {
		if s, ok := b.sup[name]; ok {
			return s
		}
		return m.Files[name].Supersedes
	}
	if err := r.settleListing(ctx, listed, b, m.Files, supersedesOf); err != nil {
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
	// prune's mark supersedes them all, and the tables are built again)
	// and it authenticates.
	var keep []table.Info
	var reread []string
	for _, t := range m.Tables {
		ok := true
		for _, name := range t.Files {
			ok = ok && inEffect(name)
		}
		if ok {
			tb, err := table.Open(filepath.Join(dir, t.Name), key, t.Nonce)
			if err != nil {
				r.Warn("index cache: rebuilding a damaged table: %v", err)
				ok = false
			} else {
				_ = tb.Close()
			}
		}
		if ok {
			keep = append(keep, t)
			continue
		}
		for _, name := range t.Files {
			if inEffect(name) {
				reread = append(reread, name)
			}
		}
	}
	for name := range listed {
		if f, ok := m.Files[name]; ok && f.Table < 0 && inEffect(name) {
			reread = append(reread, name) // in effect again: its superseding file is gone
		}
	}
	runs := b.runs[:0:0]
	for _, run := range b.runs {
		ok := true
		for _, name := range run.Files {
			ok = ok && inEffect(name)
		}
		if ok {
			runs = append(runs, run)
			continue
		}
		for _, name := range run.Files {
			if inEffect(name) {
				reread = append(reread, name)
			}
		}
	}
	b.runs = runs
	slices.Sort(reread)
	if err := b.read(ctx, reread); err != nil {
		return err
	}
	// Files damaged on a second reading were in effect: leaving them out
	// now only loses what the next run finds again.
	forgetDamaged()

	next := &table.Manifest{Tables: keep, Files: map[string]table.File{}}
	if err := b.finish(next); err != nil {
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
	// The usual warm start changes nothing: the manifest stays as it is.
	unchanged := len(fresh) == 0 && len(reread) == 0 && len(b.created) == 0 &&
		len(keep) == len(m.Tables) && len(listed) == len(m.Files)
	if !unchanged {
		if err := table.WriteManifest(dir, key, next); err != nil {
			return cacheError{err}
		}
		b.created = nil // now the manifest's (RemoveUnlisted drops merged runs)
		table.RemoveUnlisted(dir, next)
	}

	set, err := table.OpenSet(dir, key, next.Tables, func(err error) {
		r.Warn("index cache in %s is damaged (%v): it is rebuilt by the next run; blobs it should know are stored again", dir, err)
		_ = table.RemoveManifest(dir)
	})
	if err != nil {
		_ = table.RemoveManifest(dir)
		return cacheError{err}
	}
	r.index.SetBase(set)
	r.noteIndexFiles(func(yield func(string, bool) bool) {
		for name := range listed {
			if !yield(name, inEffect(name)) {
				return
			}
		}
	})
	r.noteDamagedIndex(b.damaged)
	return nil
}

// openUnchangedTables is the usual warm start: index/ lists exactly the
// files the manifest knows, so nothing changed since the manifest was
// written and the steps below would keep every table and write the same
// manifest again. It opens the manifest's tables, notes which files are in
// effect (those in a table; the others are superseded) and reports true.
// It reports false, and does nothing, where the full start-up is needed:
// a listed file is new or a known one is gone, a listed file supersedes
// another listed one (a prune's mark whose sweep is pending: the full
// start-up lists again, design.md §20.3), or a table fails to open (it is
// rebuilt). The local copies of index files are pruned against the
// manifest's names, which are the listed ones.
func (r *Repository) openUnchangedTables(dir string, key []byte, m *table.Manifest, infos []remote.ObjectInfo) bool {
	if len(infos) != len(m.Files) || len(m.Tables) == 0 {
		return false
	}
	for _, fi := range infos {
		if _, ok := m.Files[fi.Name]; !ok {
			return false
		}
	}
	for _, f := range m.Files {
		for _, s := range f.Supersedes {
			if _, ok := m.Files[s.String()]; ok {
				return false
			}
		}
	}
	set, err := table.OpenSet(dir, key, m.Tables, func(err error) {
		r.Warn("index cache in %s is damaged (%v): it is rebuilt by the next run; blobs it should know are stored again", dir, err)
		_ = table.RemoveManifest(dir)
	})
	if err != nil {
		return false
	}
	r.pruneCacheExcept(remote.Index, func(name string) bool { _, ok := m.Files[name]; return ok })
	r.index.SetBase(set)
	r.noteIndexFiles(func(yield func(string, bool) bool) {
		for name, f := range m.Files {
			if !yield(name, f.Table >= 0) {
				return
			}
		}
	})
	r.noteDamagedIndex(nil)
	return true
}

// settleListing applies the rule of LoadIndexFiles for listings that are
// not snapshots in time: when a listed file supersedes another listed one,
// list again and add the files only the second listing shows, except those
// that supersede others. Files the manifest knows are not read again.
func (r *Repository) settleListing(ctx context.Context, listed map[string]bool, b *tableBuild, known map[string]table.File, supersedesOf func(string) []blob.ID) error {
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
	var more []string
	for _, fi := range again {
		b.sizes[fi.Name] = fi.Size
		if listed[fi.Name] {
			continue
		}
		if k, ok := known[fi.Name]; ok {
			if len(k.Supersedes) == 0 {
				listed[fi.Name] = true
			}
			continue
		}
		more = append(more, fi.Name)
	}
	b.skipSuperseding = true
	defer func() { b.skipSuperseding = false }()
	if err := b.read(ctx, more); err != nil {
		return err
	}
	for _, name := range more {
		if s, ok := b.sup[name]; ok && len(s) == 0 {
			listed[name] = true
		}
	}
	return nil
}

// tableBuild reads index files a group at a time into new tables (runs).
type tableBuild struct {
	r    *Repository
	dir  string
	key  []byte
	runs []table.Info
	// created are the table files written, removed unless a manifest
	// names them.
	created []string
	// sup is the supersedes list of every file read.
	sup map[string][]blob.ID
	// damaged are the files that could not be read intact.
	damaged map[string]error
	// sizes are the stored sizes of the listed files.
	sizes map[string]int64
	// skipSuperseding leaves files that supersede others out of the runs.
	skipSuperseding bool
}

// Reading new index files: up to loadBatch files, and at most
// loadBatchBytes of them as stored (one file may exceed it), are read at
// once (in parallel), and their entries are collected until a run holds
// runRecords, when it is written as a table. The sort of a run is the
// largest memory a start-up needs: 56 bytes a record, plus one batch of
// decoded files (about 3 times their stored size).
var (
	loadBatch      = 16
	loadBatchBytes = int64(32 << 20)
	runRecords     = 1 << 20
)

// read reads the named index files into runs.
func (b *tableBuild) read(ctx context.Context, names []string) error {
	var packs []table.Pack
	var recs []table.Record
	var runNames []string
	flush := func() error {
		if len(runNames) == 0 {
			return nil
		}
		name, nonce, err := table.Build(b.dir, b.key, packs, recs)
		if err != nil {
			return cacheError{err}
		}
		b.created = append(b.created, name)
		b.runs = append(b.runs, table.Info{Name: name, Nonce: nonce, Records: uint64(len(recs)), Files: runNames})
		packs, recs, runNames = nil, nil, nil
		return nil
	}
	for len(names) > 0 {
		n, size := 1, b.sizes[names[0]]
		for n < len(names) && n < loadBatch && size+b.sizes[names[n]] <= loadBatchBytes {
			size += b.sizes[names[n]]
			n++
		}
		group := make([]remote.ObjectInfo, n)
		for i, name := range names[:n] {
			group[i] = remote.ObjectInfo{Handle: remote.Handle{Type: remote.Index, Name: name}}
		}
		names = names[n:]
		files := make(map[string]*index.File, n)
		if err := b.r.loadIndexFiles(ctx, group, files, b.damaged, false); err != nil {
			return err
		}
		for _, g := range group {
			f, ok := files[g.Name]
			if !ok {
				continue // damaged
			}
			b.sup[g.Name] = f.Supersedes
			if b.skipSuperseding && len(f.Supersedes) > 0 {
				continue
			}
			packs, recs = table.AppendFile(packs, recs, f)
			runNames = append(runNames, g.Name)
		}
		if len(recs) >= runRecords {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// abort removes the tables written unless a manifest took them.
func (b *tableBuild) abort() {
	for _, name := range b.created {
		_ = os.Remove(filepath.Join(b.dir, name))
	}
}

// finish adds the runs to m's tables: merged into one if there are
// several, then merged with the newest tables while the newest is at
// least half as large as the one before it, or while there are too many
// (so each record is rewritten about log2 of the repository's growth
// times, and a lookup reads a few tables at most).
func (b *tableBuild) finish(m *table.Manifest) error {
	if len(b.runs) > 1 {
		merged, err := mergeTables(b.dir, b.key, b.runs)
		if err != nil {
			return err
		}
		b.created = append(b.created, merged.Name)
		b.runs = []table.Info{merged}
	}
	m.Tables = append(m.Tables, b.runs...)
	for k := len(m.Tables); k >= 2; k = len(m.Tables) {
		last, prev := m.Tables[k-1], m.Tables[k-2]
		if last.Records*2 < prev.Records && k <= maxTables {
			break
		}
		merged, err := mergeTables(b.dir, b.key, m.Tables[k-2:])
		if err != nil {
			return err
		}
		b.created = append(b.created, merged.Name)
		m.Tables = append(m.Tables[:k-2], merged)
	}
	return nil
}

// mergeTables writes one table holding the given ones.
func mergeTables(dir string, key []byte, infos []table.Info) (table.Info, error) {
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
