package checker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// checkKeyed checks the primary with the key: keys, index, packs, data
// (when asked) and every snapshot's trees and blobs.
func (c *checker) checkKeyed(ctx context.Context) error {
	c.rep.ManifestAvailable = true
	if err := c.checkConfig(ctx); err != nil {
		return err
	}
	if err := c.checkKeys(ctx); err != nil {
		return err
	}
	if err := c.checkIndex(ctx); err != nil {
		return err
	}
	if err := c.checkPacks(ctx); err != nil {
		return err
	}
	toRead := c.packsToRead()
	c.plan(toRead)
	if err := c.readPacks(ctx, toRead); err != nil {
		return err
	}
	return c.checkSnapshots(ctx)
}

// plan announces how many bytes will be read: the packs read with the key,
// or, keyless, the primary's objects; and what the replicas hash.
func (c *checker) plan(packs []blob.ID) {
	if c.opts.OnPlan == nil {
		return
	}
	var total int64
	for _, id := range packs {
		total += c.primary.objects[remote.Handle{Type: remote.Data, Name: id.String()}]
	}
	if c.r == nil {
		for h, size := range c.primary.objects {
			if c.readsData(h) {
				total += size
			}
		}
	}
	for _, cs := range c.replicas {
		for h, size := range cs.objects {
			if _, ok := c.primary.objects[h]; ok && c.readsData(h) {
				total += size
			}
		}
	}
	c.opts.OnPlan(total)
}

// load reads a whole object of the primary and checks it against its name;
// a mismatch marks it for repair.
func (c *checker) load(ctx context.Context, h remote.Handle) ([]byte, error) {
	data, err := remote.ReadAll(ctx, c.primary.Backend, h)
	if err != nil {
		if errors.Is(err, remote.ErrNotFound) {
			c.markDamaged(h, true)
		}
		return nil, err
	}
	c.read(c.primary, h, int64(len(data)), true)
	if err := repo.CheckName(h, data); err != nil {
		c.markDamaged(h, false)
		return nil, err
	}
	return data, nil
}

// loadProblem describes an object that could not be loaded or opened.
func (c *checker) loadProblem(kind string, h remote.Handle, err error) report.Problem {
	p := report.Problem{Copy: c.primary.Location, Kind: kind, Object: h.String(), Message: err.Error()}
	c.mu.Lock()
	damaged := c.damaged[h]
	c.mu.Unlock()
	if damaged {
		p.Action = c.repairAction()
	} else {
		p.Action = "the stored bytes match their name but cannot be read: check the same object at the replicas, and report it"
	}
	return p
}

// checkConfig checks the primary's config with the key: it must be this
// repository's, and its secrets must open with the master key (the
// repository may have been opened with a replica's config, see
// repo.Options.KeySource).
func (c *checker) checkConfig(ctx context.Context) error {
	data, err := remote.ReadAll(ctx, c.primary.Backend, configHandle)
	switch {
	case errors.Is(err, remote.ErrNotFound):
		c.markDamaged(configHandle, true)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindConfigDamaged, Object: "config",
			Message: "the config is missing", Action: c.repairAction()})
		return nil
	case err != nil:
		return c.unreadable(ctx, c.primary, configHandle, err)
	}
	c.read(c.primary, configHandle, int64(len(data)), true)
	if err := c.r.CheckConfig(data); err != nil {
		c.markDamaged(configHandle, false)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindConfigDamaged, Object: "config",
			Message: fmt.Sprintf("the config is damaged: %v", err), Action: c.repairAction()})
	}
	return nil
}

func (c *checker) checkKeys(ctx context.Context) error {
	keys := handles(c.primary.objects, remote.Keys)
	c.rep.Checked.Keys = len(keys)
	if len(keys) == 0 {
		// Opened with a replica's key (repo.Options.KeySource): that is
		// the key repair restores; see checkKeySet for why not all.
		if id := c.r.KeyID(); id != "" {
			c.markDamaged(remote.Handle{Type: remote.Keys, Name: id}, true)
		}
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindKeyDamaged, Object: "keys/",
			Message: "the repository has no key files: no password can open it", Action: c.repairAction()})
	}
	return parallel(ctx, c.opts.Workers, keys, func(h remote.Handle) {
		data, err := c.load(ctx, h)
		if err == nil {
			_, err = crypto.ParseKeyFile(data)
		}
		if err != nil {
			c.problem(c.loadProblem(KindKeyDamaged, h, fmt.Errorf("key file cannot be read: %w", err)))
		}
	})
}

// checkIndex loads every index file, reports the unreadable ones, and fills
// the in-memory index with the files no other present file supersedes.
func (c *checker) checkIndex(ctx context.Context) error {
	names := handles(c.primary.objects, remote.Index)
	c.rep.Checked.IndexFiles = len(names)
	files := map[string]*index.File{}
	var mu sync.Mutex
	err := parallel(ctx, c.opts.Workers, names, func(h remote.Handle) {
		data, err := c.load(ctx, h)
		var f *index.File
		if err == nil {
			var plain []byte
			if plain, err = c.r.OpenFile(h, data); err == nil {
				f, err = index.Decode(plain)
			}
		}
		if err != nil {
			c.problem(c.loadProblem(KindIndexDamaged, h, fmt.Errorf("index file cannot be read: %w", err)))
			return
		}
		mu.Lock()
		files[h.Name] = f
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	superseded := index.Superseded(files)
	for _, h := range names {
		f := files[h.Name]
		if f == nil || superseded[h.Name] {
			continue
		}
		for _, p := range f.Packs {
			if _, dup := c.packs[p.ID]; dup {
				continue
			}
			c.packs[p.ID] = p.Blobs
			c.packSizes[p.ID] = p.Size
			c.packIndex[p.ID] = h.String()
			var off uint32
			for _, e := range p.Blobs {
				if e.Offset != off {
					c.problem(report.Problem{Copy: c.primary.Location, Kind: KindIndexInconsistent, Object: h.String(), Blob: e.ID.String(),
						Message: fmt.Sprintf("the index places blob %s of pack %s at offset %d, but the blobs before it end at %d", e.ID.Short(), p.ID.Short(), e.Offset, off),
						Action:  "the index file was written wrong: report it; the data may still be intact"})
					break
				}
				off += e.Length
			}
		}
		c.r.Index().AddFile(f)
	}
	return nil
}

// checkPacks checks that every indexed pack is stored with the size its
// index records, and reads the headers of packs no index lists, so that a
// lost index file can be told from packs an interrupted backup left.
func (c *checker) checkPacks(ctx context.Context) error {
	c.rep.Checked.Packs = len(c.packs)
	for _, id := range sortedIDs(c.packs) {
		entries := c.packs[id]
		h := remote.Handle{Type: remote.Data, Name: id.String()}
		size, ok := c.primary.objects[h]
		var kind, msg string
		switch want := c.packSizes[id]; {
		case !ok:
			kind, msg = KindPackMissing, fmt.Sprintf("the pack is missing, but %s lists %d blobs in it", c.packIndex[id], len(entries))
		case size != want:
			kind, msg = KindPackSize, fmt.Sprintf("the pack has %d bytes, the index records %d: it was truncated or altered", size, want)
		default:
			continue
		}
		c.markDamaged(h, !ok)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: kind, Object: h.String(), Message: msg, Action: c.repairAction()})
		why := fmt.Sprintf("pack %s is damaged", id.Short())
		if !ok {
			why = fmt.Sprintf("pack %s is missing", id.Short())
		}
		for _, e := range entries {
			c.badBlobs[e.ID] = why
		}
	}
	var orphans []remote.Handle
	for _, h := range handles(c.primary.objects, remote.Data) {
		id, err := blob.ParseID(h.Name)
		if err != nil {
			c.notice(report.Problem{Copy: c.primary.Location, Kind: KindPackUnindexed, Object: h.String(),
				Message: "a stray object that is not a courtbak pack", Action: "remove it by hand once you know where it came from"})
			continue
		}
		if _, ok := c.packs[id]; !ok {
			orphans = append(orphans, h)
		}
	}
	var mu sync.Mutex
	return parallel(ctx, c.opts.Workers, orphans, func(h remote.Handle) {
		id, _ := blob.ParseID(h.Name)
		entries, err := c.r.ReadPackHeader(ctx, id, c.primary.objects[h])
		msg := fmt.Sprintf("the pack is in no index (%d blobs): a prune marked it unused, an interrupted backup left it, or its index file is lost", len(entries))
		if err != nil {
			msg = fmt.Sprintf("the pack is in no index and its header cannot be read: %v", err)
		}
		c.notice(report.Problem{Copy: c.primary.Location, Kind: KindPackUnindexed, Object: h.String(), Message: msg,
			Action: "nothing, unless a snapshot needs its blobs (then it is listed under Problems); courtbak prune removes it"})
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			c.orphans[e.ID] = id
		}
	})
}

func sortedIDs[V any](m map[blob.ID]V) []blob.ID {
	ids := make([]blob.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// packsToRead are the indexed packs, stored with the right size, that this
// run reads in full.
func (c *checker) packsToRead() []blob.ID {
	if !c.opts.ReadData {
		return nil
	}
	var (
		out   []blob.ID
		names []string
	)
	for _, id := range sortedIDs(c.packs) {
		h := remote.Handle{Type: remote.Data, Name: id.String()}
		if _, bad := c.damaged[h]; !bad {
			names = append(names, h.Name)
		}
	}
	c.ensureSubsetReads(names)
	for _, name := range names {
		if c.inSubset(name) {
			id, _ := blob.ParseID(name)
			out = append(out, id)
		}
	}
	return out
}

func (c *checker) readPacks(ctx context.Context, ids []blob.ID) error {
	c.rep.Checked.PacksRead = len(ids)
	for _, size := range c.packSizes {
		c.rep.Checked.PackBytes += size
	}
	for _, id := range ids {
		c.rep.Checked.PackBytesRead += c.packSizes[id]
	}
	return parallel(ctx, c.opts.Workers, ids, func(id blob.ID) { c.readPack(ctx, id) })
}

// readPack reads a whole pack, checks it against its name, compares its
// header with the index, and authenticates and hashes every blob.
func (c *checker) readPack(ctx context.Context, id blob.ID) {
	entries := c.packs[id]
	h := remote.Handle{Type: remote.Data, Name: id.String()}
	obj := h.String()
	bad := func(e pack.Entry, why string) {
		c.mu.Lock()
		c.badBlobs[e.ID] = why
		c.mu.Unlock()
	}
	data, err := remote.ReadAll(ctx, c.primary.Backend, h)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindObjectUnreadable, Object: obj,
			Message: fmt.Sprintf("the pack cannot be read: %v", err), Action: "check the storage, then verify again"})
		for _, e := range entries {
			bad(e, fmt.Sprintf("pack %s cannot be read", id.Short()))
		}
		return
	}
	c.read(c.primary, h, int64(len(data)), true)
	if err := repo.CheckName(h, data); err != nil {
		c.markDamaged(h, false)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackDamaged, Object: obj,
			Message: "the pack's bytes do not match its name: it was altered or damaged in storage", Action: c.repairAction()})
	}
	hdr, err := c.r.ParsePackHeader(data)
	switch {
	case err != nil:
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackHeader, Object: obj,
			Message: fmt.Sprintf("the pack header cannot be read: %v", err), Action: c.repairAction()})
	case !sameEntries(hdr, entries):
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackHeader, Object: obj,
			Message: fmt.Sprintf("the pack header lists %d blobs that do not match the %d blobs %s lists", len(hdr), len(entries), c.packIndex[id]),
			Action:  "the index does not describe this pack: report it"})
	}
	for _, e := range entries {
		end := int(e.Offset) + int(e.Length)
		var err error
		if end > len(data) {
			err = fmt.Errorf("it would end at byte %d of a %d-byte pack", end, len(data))
		} else {
			var plain []byte
			plain, err = c.r.OpenBlob(index.Location{Pack: id, Entry: e}, data[e.Offset:end])
			if err == nil && c.r.BlobID(plain) != e.ID {
				err = errors.New("its content does not hash to its id")
			}
		}
		c.mu.Lock()
		c.rep.Checked.BlobsRead++
		c.mu.Unlock()
		if err != nil {
			c.problem(report.Problem{Copy: c.primary.Location, Kind: KindBlobDamaged, Object: obj, Blob: e.ID.String(),
				Message: fmt.Sprintf("%s blob %s fails verification: %v", e.Type, e.ID.Short(), err), Action: c.repairAction()})
			bad(e, fmt.Sprintf("blob %s in pack %s is damaged", e.ID.Short(), id.Short()))
		}
	}
}

// sameEntries compares a pack header with the index's entries for it.
func sameEntries(a, b []pack.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	byID := make(map[blob.ID]pack.Entry, len(a))
	for _, e := range a {
		byID[e.ID] = e
	}
	for _, e := range b {
		if byID[e.ID] != e {
			return false
		}
	}
	return true
}

// treeResult is a loaded tree, or the problem that stopped it loading
// (Snapshot and Path filled per walk).
type treeResult struct {
	tree    *snapshot.Tree
	problem *report.Problem
}

// walk is the state of one snapshot's walk.
type walk struct {
	sn       *snapshot.Snapshot
	out      *report.Snapshot
	problems int
	// bud bounds the walk (--max-tree-depth, --max-entries): a forged
	// tree can reuse a directory without end. stopped is set once it is
	// spent, and the rest of the snapshot is not walked.
	bud     *snapshot.Budget
	stopped bool
}

// checkSnapshots reads every snapshot, chooses the manifests the report
// carries (Options.Manifest), then walks each snapshot's trees. Every
// snapshot is walked, so every file's blobs are checked; only the chosen
// ones keep their file lists, so memory follows the report's size.
func (c *checker) checkSnapshots(ctx context.Context) error {
	names := handles(c.primary.objects, remote.Snapshot)
	c.rep.Checked.Snapshots = len(names)
	out := make([]report.Snapshot, len(names))
	sns := make([]*snapshot.Snapshot, len(names))
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	err := parallel(ctx, c.opts.Workers, idx, func(i int) {
		h := names[i]
		out[i] = report.Snapshot{ID: h.Name, Status: report.SnapshotUnreadable}
		sn, err := c.loadSnapshot(ctx, h)
		if err != nil {
			c.problem(c.loadProblem(KindSnapshotDamaged, h, fmt.Errorf("snapshot cannot be read: %w", err)))
			return
		}
		sns[i] = sn
		out[i] = report.Snapshot{ID: h.Name, Time: sn.Time.UTC(), Host: sn.Hostname, Paths: sn.Paths, Tags: sn.Tags, Status: report.SnapshotIntact}
	})
	if err != nil {
		return err
	}
	keep, err := c.opts.Manifest.Select(out)
	if err != nil {
		return err
	}
	c.rep.ManifestSelection = c.opts.Manifest.Selection()
	err = parallel(ctx, c.opts.Workers, idx, func(i int) {
		if sns[i] == nil {
			return
		}
		if c.forgotten[sns[i].ID.String()] {
			// Its data may be pruned already: nothing to check, and
			// nothing a restore may rely on (a notice says so).
			out[i].Status = report.SnapshotForgotten
			return
		}
		w := &walk{sn: sns[i], out: &out[i], bud: snapshot.NewBudget(c.r)}
		if keep[i] {
			w.out.ManifestIncluded, w.out.Manifest = true, []report.File{}
		}
		c.walkTree(ctx, w, sns[i].Tree, "/", 0)
		if w.problems > 0 {
			w.out.Status = report.SnapshotDamaged
		}
	})
	if err != nil {
		return err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	for _, s := range out {
		c.rep.Checked.Files += s.Files
		c.rep.Checked.FileBytes += s.Bytes
	}
	c.rep.Snapshots = out
	c.rep.Checked.Trees = len(c.trees)
	return nil
}

func (c *checker) loadSnapshot(ctx context.Context, h remote.Handle) (*snapshot.Snapshot, error) {
	data, err := c.load(ctx, h)
	if err != nil {
		return nil, err
	}
	plain, err := c.r.OpenFile(h, data)
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.Decode(plain, blob.ID{})
	if err != nil {
		return nil, fmt.Errorf("decode: %v: %w", err, repo.ErrDamaged)
	}
	sn.ID, err = blob.ParseID(h.Name)
	return sn, err
}

// snapshotProblem records a problem of the snapshot being walked.
func (c *checker) snapshotProblem(w *walk, p report.Problem) {
	w.problems++
	p.Copy = c.primary.Location
	p.Snapshot = w.sn.ID.String()
	c.problem(p)
}

// blobProblem explains why a blob a snapshot needs cannot be used, or
// returns nil when it is indexed, of type t and not known damaged.
func (c *checker) blobProblem(id blob.ID, t blob.Type) *report.Problem {
	loc, ok := c.r.Index().Lookup(id)
	if !ok {
		c.mu.Lock()
		c.unindexed[id] = true
		orphan, inPack := c.orphans[id]
		c.mu.Unlock()
		p := &report.Problem{Kind: KindBlobNotIndexed, Blob: id.String(),
			Message: fmt.Sprintf("%s blob %s is in no index", t, id.Short()),
			Action:  "an index file was lost: restore it from a replica: courtbak verify --repair --replica URL"}
		if inPack {
			p.Object = remote.Handle{Type: remote.Data, Name: orphan.String()}.String()
			p.Message += fmt.Sprintf("; pack %s holds it", orphan.Short())
		} else {
			p.Message += " and no stored pack holds it"
		}
		return p
	}
	obj := remote.Handle{Type: remote.Data, Name: loc.Pack.String()}.String()
	if loc.Type != t {
		return &report.Problem{Kind: KindTreeDamaged, Object: obj, Blob: id.String(),
			Message: fmt.Sprintf("blob %s is a %s blob where a %s blob belongs", id.Short(), loc.Type, t), Action: "report it"}
	}
	c.mu.Lock()
	why, bad := c.badBlobs[id]
	c.mu.Unlock()
	if bad {
		return &report.Problem{Kind: KindFileDamaged, Object: obj, Blob: id.String(),
			Message: fmt.Sprintf("%s blob %s cannot be used: %s", t, id.Short(), why), Action: c.repairAction()}
	}
	return nil
}

// tree loads a tree once per run; a problem is reported for every snapshot
// that reaches the tree.
func (c *checker) tree(ctx context.Context, w *walk, id blob.ID, dir string) *snapshot.Tree {
	c.mu.Lock()
	res, ok := c.trees[id]
	c.mu.Unlock()
	if !ok {
		res = &treeResult{problem: c.blobProblem(id, blob.Tree)}
		if res.problem == nil {
			t, err := c.r.LoadTree(ctx, id)
			if err != nil {
				loc, _ := c.r.Index().Lookup(id)
				res.problem = &report.Problem{Kind: KindTreeDamaged, Blob: id.String(),
					Object:  remote.Handle{Type: remote.Data, Name: loc.Pack.String()}.String(),
					Message: fmt.Sprintf("directory tree cannot be read: %v", err), Action: c.repairAction()}
				c.checkPackName(ctx, loc.Pack)
			}
			res.tree = t
		}
		if ctx.Err() != nil {
			return nil // not cached: a cancelled read says nothing about the tree
		}
		c.mu.Lock()
		c.trees[id] = res
		c.mu.Unlock()
	}
	if res.problem != nil {
		p := *res.problem
		p.Path = dir
		if p.Kind == KindFileDamaged {
			p.Kind = KindTreeDamaged
		}
		c.snapshotProblem(w, p)
		return nil
	}
	return res.tree
}

func (c *checker) walkTree(ctx context.Context, w *walk, id blob.ID, dir string, depth int) {
	if w.stopped || ctx.Err() != nil {
		return
	}
	t := c.tree(ctx, w, id, dir)
	if t == nil {
		return
	}
	if err := w.bud.Tree(dir, depth, len(t.Nodes)); err != nil {
		w.stopped = true
		c.snapshotProblem(w, report.Problem{Kind: KindTreeDamaged, Path: dir, Blob: id.String(),
			Message: fmt.Sprintf("the snapshot was not walked further: %v", err),
			Action:  "if the tree is real, verify again with the limit raised; otherwise report it"})
		return
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if !snapshot.ValidName(n.Name) {
			c.snapshotProblem(w, report.Problem{Kind: KindTreeDamaged, Path: dir, Blob: id.String(),
				Message: fmt.Sprintf("the directory has an invalid entry name %q", n.Name), Action: "report it"})
			continue
		}
		p := path.Join(dir, n.Name)
		switch n.Type {
		case snapshot.NodeFile:
			c.checkFile(w, p, n)
		case snapshot.NodeDir:
			if n.Subtree == nil {
				c.snapshotProblem(w, report.Problem{Kind: KindTreeDamaged, Path: p, Blob: id.String(),
					Message: "the directory has no tree", Action: "report it"})
				continue
			}
			c.walkTree(ctx, w, *n.Subtree, p, depth+1)
		}
	}
}

// checkFile adds a file to the manifest and reports the first problem of
// its content, if any.
func (c *checker) checkFile(w *walk, p string, n *snapshot.Node) {
	w.out.Files++
	w.out.Bytes += int64(n.Size)
	f := report.File{Path: p, Size: n.Size, MTime: n.ModTime.UTC()}
	if n.BLAKE3 != nil {
		f.BLAKE3 = n.BLAKE3.String()
	} else {
		c.snapshotProblem(w, report.Problem{Kind: KindFileUnhashed, Path: p,
			Message: "no whole-file hash is recorded for this file", Action: "back it up again with this courtbak version"})
	}
	if w.out.ManifestIncluded {
		w.out.Manifest = append(w.out.Manifest, f)
	}
	for _, id := range n.Content {
		if pr := c.blobProblem(id, blob.Data); pr != nil {
			pr.Path = p
			c.snapshotProblem(w, *pr)
			return
		}
	}
}

// checkPackName hashes a pack whose tree failed to load, once, so that
// even a structure-only run can tell a damaged pack, which repair replaces,
// from one written wrong.
func (c *checker) checkPackName(ctx context.Context, id blob.ID) {
	h := remote.Handle{Type: remote.Data, Name: id.String()}
	c.mu.Lock()
	done := c.damaged[h] || c.nameChecked[id]
	c.nameChecked[id] = true
	c.mu.Unlock()
	if done {
		return
	}
	if err := c.hashObject(ctx, c.primary, h); errors.Is(err, errMismatch) {
		c.markDamaged(h, false)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackDamaged, Object: h.String(),
			Message: "the pack's bytes do not match its name: it was altered or damaged in storage", Action: c.repairAction()})
	}
}
