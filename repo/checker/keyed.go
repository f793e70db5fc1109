package checker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/index/table"
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
	if err := c.checkSnapshots(ctx); err != nil {
		return err
	}
	// A temporary index damaged on this host's disk while in use answered
	// "not found": what the walk reported cannot be trusted.
	if err := c.idx.spill.Err(); err != nil {
		return err
	}
	return c.idx.orphans.Err()
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

// checkPacks checks that every indexed pack is stored with the size its
// index records, and reads the headers of packs no index lists, so that a
// lost index file can be told from packs an interrupted backup left.
func (c *checker) checkPacks(ctx context.Context) error {
	c.rep.Checked.Packs = len(c.idx.packs)
	for i := range c.idx.packs {
		ip := &c.idx.packs[i]
		h := remote.Handle{Type: remote.Data, Name: ip.id.String()}
		size, ok := c.primary.objects[h]
		var kind, msg string
		switch {
		case !ok:
			kind, msg = KindPackMissing, fmt.Sprintf("the pack is missing, but %s lists %d blobs in it", c.idx.files[ip.file], ip.blobs)
		case size != ip.size:
			kind, msg = KindPackSize, fmt.Sprintf("the pack has %d bytes, the index records %d: it was truncated or altered", size, ip.size)
		default:
			continue
		}
		c.markDamaged(h, !ok)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: kind, Object: h.String(), Message: msg, Action: c.repairAction()})
		why := fmt.Sprintf("pack %s is damaged", ip.id.Short())
		if !ok {
			why = fmt.Sprintf("pack %s is missing", ip.id.Short())
		}
		c.badPacks[ip.id] = why
		for _, e := range c.idx.badListings[ip.id] {
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
		if c.idx.pack(id) == nil {
			orphans = append(orphans, h)
		}
	}
	// Their blobs go to a temporary index of their own, looked up only for
	// a blob no index lists: after a prune's mark, until its sweep, half a
	// repository's blobs can be in such packs.
	if len(orphans) == 0 {
		return nil
	}
	var (
		mu       sync.Mutex
		spillErr error
	)
	spill, lock, err := c.newSpill()
	if err != nil {
		return err
	}
	c.idx.orphans, c.idx.orphansLock = spill, lock
	err = parallel(ctx, c.opts.Workers, orphans, func(h remote.Handle) {
		id, _ := blob.ParseID(h.Name)
		entries, err := c.r.ReadPackHeader(ctx, id, c.primary.objects[h])
		msg := fmt.Sprintf("the pack is in no index (%d blobs): a prune marked it unused, an interrupted backup left it, or its index file is lost", len(entries))
		if err != nil {
			msg = fmt.Sprintf("the pack is in no index and its header cannot be read: %v", err)
		}
		c.notice(report.Problem{Copy: c.primary.Location, Kind: KindPackUnindexed, Object: h.String(), Message: msg,
			Action: "nothing, unless a snapshot needs its blobs (then it is listed under Problems); courtbak prune removes it"})
		entries = slices.DeleteFunc(entries, func(e pack.Entry) bool { return !table.Fits(&e) })
		mu.Lock()
		defer mu.Unlock()
		if err := spill.AddPack(id, c.primary.objects[h], entries); err != nil && spillErr == nil {
			spillErr = err
		}
	})
	if err != nil {
		return err
	}
	if spillErr != nil {
		return spillErr
	}
	c.idx.orphanSet, err = spill.Finish()
	return err
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
	for i := range c.idx.packs {
		h := remote.Handle{Type: remote.Data, Name: c.idx.packs[i].id.String()}
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
	for i := range c.idx.packs {
		c.rep.Checked.PackBytes += c.idx.packs[i].size
	}
	for _, id := range ids {
		c.rep.Checked.PackBytesRead += c.idx.pack(id).size
	}
	return parallel(ctx, c.opts.Workers, ids, func(id blob.ID) { c.readPack(ctx, id) })
}

// readPack reads a whole pack, checks it against its name, compares its
// header with the index, and authenticates and hashes every blob the
// index lists. The header, once it matches the listing's digest, stands
// for the listing; otherwise the listing is read again from its index
// file.
func (c *checker) readPack(ctx context.Context, id blob.ID) {
	ip := c.idx.pack(id)
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
		c.badPack(ctx, ip, fmt.Sprintf("pack %s cannot be read", id.Short()))
		return
	}
	c.read(c.primary, h, int64(len(data)), true)
	if err := repo.CheckName(h, data); err != nil {
		c.markDamaged(h, false)
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackDamaged, Object: obj,
			Message: "the pack's bytes do not match its name: it was altered or damaged in storage", Action: c.repairAction()})
	}
	hdr, err := c.r.ParsePackHeader(data)
	entries := hdr
	switch {
	case err != nil:
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackHeader, Object: obj,
			Message: fmt.Sprintf("the pack header cannot be read: %v", err), Action: c.repairAction()})
		entries = c.listingOf(ctx, ip, nil)
	case len(hdr) != int(ip.blobs) || listingDigest(hdr) != ip.digest:
		c.problem(report.Problem{Copy: c.primary.Location, Kind: KindPackHeader, Object: obj,
			Message: fmt.Sprintf("the pack header lists %d blobs that do not match the %d blobs %s lists", len(hdr), ip.blobs, c.idx.files[ip.file]),
			Action:  "the index does not describe this pack: report it"})
		entries = c.listingOf(ctx, ip, hdr)
	}
	entries = withLater(entries, c.idx.later[id])
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

// withLater adds to the entries of a pack those of its later listings
// that are not among them. Safety: the index places a blob through any
// listing of a pack in effect, so every such place is checked, not only
// the first listing's (a blob only a later listing names, damaged, would
// otherwise be reported usable).
func withLater(entries, later []pack.Entry) []pack.Entry {
	if len(later) == 0 {
		return entries
	}
	have := make(map[pack.Entry]bool, len(entries))
	for _, e := range entries {
		have[e] = true
	}
	out := slices.Clip(entries)
	for _, e := range later {
		if !have[e] {
			have[e] = true
			out = append(out, e)
		}
	}
	return out
}

// listingOf returns the index's listing of a pack whose header does not
// match it, read again from its index file. If that file cannot be read
// now, the header's entries (hdr, possibly nil) are checked instead, and
// every blob the index places in the pack is taken as unusable.
func (c *checker) listingOf(ctx context.Context, ip *indexedPack, hdr []pack.Entry) []pack.Entry {
	if entries := c.listing(ctx, ip); entries != nil {
		return entries
	}
	c.mu.Lock()
	c.badPacks[ip.id] = fmt.Sprintf("pack %s does not match its index", ip.id.Short())
	c.mu.Unlock()
	return hdr
}

// badPack marks every blob of an indexed pack unusable.
func (c *checker) badPack(ctx context.Context, ip *indexedPack, why string) {
	entries := c.listing(ctx, ip)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.badPacks[ip.id] = why
	for _, e := range entries {
		c.badBlobs[e.ID] = why
	}
}

// treeResult is the outcome of loading a tree: nil problem when it
// loaded (the tree itself is in treeCache while it fits), else the
// problem that stopped it (Snapshot and Path filled per walk).
type treeResult struct {
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
	// lim are bud's limits and entries what it has counted, so that a
	// clean subtree's sum is added only when it fits (see walkTree).
	lim     snapshot.Limits
	entries int64
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
		w := &walk{sn: sns[i], out: &out[i], bud: snapshot.NewBudget(c.r), lim: snapshot.LimitsOf(c.r)}
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
		c.mu.Unlock()
		var orphan blob.ID
		inPack := false
		if c.idx.orphanSet != nil {
			var loc index.Location
			loc, inPack = c.idx.orphanSet.Lookup(id)
			orphan = loc.Pack
		}
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
	if !bad {
		why, bad = c.badPacks[loc.Pack]
	}
	c.mu.Unlock()
	if bad {
		return &report.Problem{Kind: KindFileDamaged, Object: obj, Blob: id.String(),
			Message: fmt.Sprintf("%s blob %s cannot be used: %s", t, id.Short(), why), Action: c.repairAction()}
	}
	return nil
}

// tree loads a tree once per run; a problem is reported for every snapshot
// that reaches the tree.
//
// A tree that loaded is kept in a bounded cache (treeCache); one that has
// dropped out of it is loaded again when another snapshot reaches it.
// Should that second load fail, the tree's problem is reported from then
// on, as for a first load.
func (c *checker) tree(ctx context.Context, w *walk, id blob.ID, dir string) *snapshot.Tree {
	c.mu.Lock()
	res, ok := c.trees[id]
	c.mu.Unlock()
	var t *snapshot.Tree
	if ok && res.problem == nil {
		if t = c.treeCache.get(id); t == nil {
			ok = false // loaded before, but no longer cached
		}
	}
	if !ok {
		res = &treeResult{problem: c.blobProblem(id, blob.Tree)}
		if res.problem == nil {
			var err error
			if t, err = c.r.LoadTree(ctx, id); err != nil {
				loc, _ := c.r.Index().Lookup(id)
				res.problem = &report.Problem{Kind: KindTreeDamaged, Blob: id.String(),
					Object:  remote.Handle{Type: remote.Data, Name: loc.Pack.String()}.String(),
					Message: fmt.Sprintf("directory tree cannot be read: %v", err), Action: c.repairAction()}
				c.checkPackName(ctx, loc.Pack)
			}
		}
		if ctx.Err() != nil {
			return nil // not cached: a cancelled read says nothing about the tree
		}
		c.mu.Lock()
		c.trees[id] = res
		c.mu.Unlock()
		if res.problem == nil {
			c.treeCache.put(id, t)
		}
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
	return t
}

// treeSum is what walking a subtree adds to a snapshot's walk: its files
// and their bytes, the entries of all its trees (what the walk's budget
// counts) and its height (0 for a tree without subdirectories).
type treeSum struct {
	files, bytes, entries int64
	height                int
}

// walkTree walks a tree and everything below it, and returns its sum and
// whether the subtree is clean: walked in full without any problem.
//
// A clean subtree is walked once per run. When another snapshot (or
// another place) reaches it again, its sum is added instead, unless the
// snapshot's manifest is kept (which lists its files) or the sum would
// cross a walk limit (then it is walked, so that the limit is met at the
// same directory as always). Skipping it finds nothing less: a clean
// subtree's problems would be the same as the first time, none, since
// nothing that makes a blob usable changes while snapshots are walked.
// This is what keeps verify from loading every tree again for each of a
// court's daily snapshots, whose trees are nearly all shared, now that
// trees are no longer all kept in memory (treeCache).
func (c *checker) walkTree(ctx context.Context, w *walk, id blob.ID, dir string, depth int) (treeSum, bool) {
	if w.stopped || ctx.Err() != nil {
		return treeSum{}, false
	}
	if !w.out.ManifestIncluded {
		c.mu.Lock()
		sum, ok := c.clean[id]
		c.mu.Unlock()
		if ok && depth+sum.height <= w.lim.MaxDepth && w.entries+sum.entries <= w.lim.MaxEntries {
			if err := w.bud.Tree(dir, depth, int(sum.entries)); err == nil {
				w.entries += sum.entries
				w.out.Files += sum.files
				w.out.Bytes += sum.bytes
				return sum, true
			}
		}
	}
	before := w.problems
	t := c.tree(ctx, w, id, dir)
	if t == nil {
		return treeSum{}, false
	}
	if err := w.bud.Tree(dir, depth, len(t.Nodes)); err != nil {
		w.stopped = true
		c.snapshotProblem(w, report.Problem{Kind: KindTreeDamaged, Path: dir, Blob: id.String(),
			Message: fmt.Sprintf("the snapshot was not walked further: %v", err),
			Action:  "if the tree is real, verify again with the limit raised; otherwise report it"})
		return treeSum{}, false
	}
	w.entries += int64(len(t.Nodes))
	sum := treeSum{entries: int64(len(t.Nodes))}
	clean := true
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
			sum.files++
			sum.bytes += int64(n.Size)
		case snapshot.NodeDir:
			if n.Subtree == nil {
				c.snapshotProblem(w, report.Problem{Kind: KindTreeDamaged, Path: p, Blob: id.String(),
					Message: "the directory has no tree", Action: "report it"})
				continue
			}
			sub, ok := c.walkTree(ctx, w, *n.Subtree, p, depth+1)
			clean = clean && ok
			sum.files += sub.files
			sum.bytes += sub.bytes
			sum.entries += sub.entries
			sum.height = max(sum.height, sub.height+1)
		}
	}
	if !clean || w.problems != before || w.stopped || ctx.Err() != nil {
		return treeSum{}, false
	}
	c.mu.Lock()
	c.clean[id] = sum
	c.mu.Unlock()
	return sum, true
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
	if c.contentOK.has(n.Content) {
		return
	}
	for _, id := range n.Content {
		if pr := c.blobProblem(id, blob.Data); pr != nil {
			pr.Path = p
			c.snapshotProblem(w, *pr)
			return
		}
	}
	c.contentOK.add(n.Content)
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
