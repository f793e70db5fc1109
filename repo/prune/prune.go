// Package prune deletes data that no snapshot needs, safely while other
// hosts back up into the same repository, in the two phases of
// docs/design.md §20. A mark replaces the index with one that leaves out
// unused packs and records them in a plan on this host; a sweep at least a
// grace period later deletes those still unused. Each Run sweeps a plan that
// is due and then marks afresh.
package prune

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// DefaultGrace is G: how long unused data stays after a mark before it is
// deleted. It must exceed repo.MaxBackupAge, the longest a backup that
// started before the mark may take to write its snapshot.
const DefaultGrace = 48 * time.Hour

// DefaultRepackUnused repacks packs a tenth or more unused: enough to
// reclaim the space of deleted recordings that share packs with kept ones,
// without rewriting packs for a few small case files.
const DefaultRepackUnused = 0.1

// storeGap is how much later than the index files it relies on the
// superseding index file is stored: more than the one-second resolution of
// S3's LastModified.
const storeGap = 1100 * time.Millisecond

// packsPerIndexFile bounds the index files a mark writes (a few MiB each).
const packsPerIndexFile = 4096

// Options control a Run.
type Options struct {
	// Grace is the grace period. 0 marks and sweeps at once, which is only
	// safe when no backup into the repository is running; otherwise it must
	// be longer than repo.MaxBackupAge.
	Grace time.Duration
	// DryRun reports what would be marked and deleted, and changes nothing.
	DryRun bool
	// RepackUnused repacks a pack when at least this fraction of its
	// blobs' bytes is unused (0 < f <= 1); 0 uses DefaultRepackUnused.
	RepackUnused float64
	// Forgotten snapshots count as removed in a dry run (forget --dry-run
	// --prune), which then shows what forgetting them would free.
	Forgotten []blob.ID
	// Progress, if set, is told when each step of a long run starts.
	Progress func(step string)
	// Adopt takes over a mark that this host has no plan for (its plan was
	// lost, or it came from another host). Only safe when no other prune
	// is running.
	Adopt bool
}

// Result is what a Run did.
type Result struct {
	// Swept is set when a plan was swept (or would have been, in a dry run).
	Swept *Sweep `json:"swept,omitempty"`
	// Marked is set when a mark was made (or planned, in a dry run).
	Marked *Mark `json:"marked,omitempty"`
	// Pending is set when a plan was left waiting for its grace period.
	Pending *Pending `json:"pending,omitempty"`
}

// Sweep reports a sweep.
type Sweep struct {
	PacksDeleted      int   `json:"packs_deleted"`
	BytesDeleted      int64 `json:"bytes_deleted"`
	PacksKept         int   `json:"packs_kept"` // needed again since the mark
	IndexFilesDeleted int   `json:"index_files_deleted"`
	PacksNotDeleted   int   `json:"packs_not_deleted"` // the storage refused; tried again next time
}

// Mark reports a mark.
type Mark struct {
	Snapshots      int   `json:"snapshots"`
	PacksUsed      int   `json:"packs_used"`
	BytesUsed      int64 `json:"bytes_used"`
	PacksUnused    int   `json:"packs_unused"`
	BytesUnused    int64 `json:"bytes_unused"`
	PacksUnindexed int   `json:"packs_unindexed"`
	BytesUnindexed int64 `json:"bytes_unindexed"`
	PacksReindexed int   `json:"packs_reindexed"` // unindexed packs a snapshot needs
	// Packs partly unused are repacked: their used blobs are copied into
	// new packs (BytesMoved of sealed blobs), and they are then unused.
	PacksRepacked int       `json:"packs_repacked"`
	BytesRepacked int64     `json:"bytes_repacked"`
	BytesMoved    int64     `json:"bytes_moved"`
	Due           time.Time `json:"due,omitzero"`
}

// Pending reports a plan whose grace period has not passed.
type Pending struct {
	Marked time.Time `json:"marked"`
	Due    time.Time `json:"due"`
	Packs  int       `json:"packs"`
	Bytes  int64     `json:"bytes"`
}

// ErrNoStateDir means there is no cache directory to keep the plan in.
var ErrNoStateDir = errors.New("prune keeps its plan in the cache directory, and there is none: give --cache-dir")

// ErrForeignMark means index files are superseded by a mark this host has
// no plan for.
var ErrForeignMark = errors.New("another prune's mark is pending")

// ErrIncomplete means snapshots need data the repository lacks; prune
// deletes nothing then.
var ErrIncomplete = errors.New("snapshots need data that is not stored")

// Run sweeps the plan if it is due, then marks. The repository must be
// open; its in-memory index is replaced.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Result, error) {
	if opts.Grace != 0 && opts.Grace <= repo.MaxBackupAge {
		return nil, fmt.Errorf("grace period %s must be 0 or longer than %s, the time a running backup may take to write its snapshot", opts.Grace, repo.MaxBackupAge)
	}
	if opts.RepackUnused == 0 {
		opts.RepackUnused = DefaultRepackUnused
	}
	if opts.RepackUnused < 0 || opts.RepackUnused > 1 {
		return nil, fmt.Errorf("repack threshold %g is not a fraction between 0 and 1", opts.RepackUnused)
	}
	dir := Dir(r)
	if dir == "" {
		return nil, ErrNoStateDir
	}
	lock, err := repo.LockExclusive(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("another prune of this repository is running on this host: %w", err)
	}
	defer lock.Close()

	res := &Result{}
	plan, err := loadPlan(dir)
	if err != nil {
		return nil, err
	}
	if plan != nil {
		due := plan.Due(opts.Grace)
		if r.Now().Before(due) {
			res.Pending = &Pending{Marked: plan.Marked, Due: due,
				Packs: len(plan.Dead) + len(plan.Unindexed), Bytes: Bytes(plan.Dead) + Bytes(plan.Unindexed)}
			return res, nil
		}
		res.Swept, err = sweep(ctx, r, plan, opts)
		switch {
		case errors.Is(err, errStalePlan):
			// Nothing was deleted, and the next mark starts from what is
			// stored now.
			r.Warn("%v: nothing was deleted; marking afresh", err)
			res.Swept = nil
		case err != nil:
			return res, err
		case opts.DryRun:
			return res, nil // the mark would see the repository after the sweep
		}
		if !opts.DryRun {
			if err := removePlan(dir); err != nil {
				return res, err
			}
		}
	}
	plan, res.Marked, err = mark(ctx, r, opts, dir)
	if err != nil || plan == nil || opts.DryRun || opts.Grace > 0 {
		return res, err
	}
	// No grace: the caller vouches that no backup is running.
	sw, err := sweep(ctx, r, plan, opts)
	if res.Swept != nil && sw != nil {
		sw.add(res.Swept)
	}
	res.Swept = sw
	if err != nil {
		return res, err
	}
	return res, removePlan(dir)
}

func (o Options) step(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

func (s *Sweep) add(o *Sweep) {
	s.PacksDeleted += o.PacksDeleted
	s.BytesDeleted += o.BytesDeleted
	s.PacksKept += o.PacksKept
	s.IndexFilesDeleted += o.IndexFilesDeleted
	s.PacksNotDeleted += o.PacksNotDeleted
}

// loadSnapshots lists and loads every snapshot. Unlike readers, prune
// refuses to go on when one cannot be read: the data it needs would look
// unused.
func loadSnapshots(ctx context.Context, r *repo.Repository) ([]*repo.Snapshot, error) {
	infos, err := r.List(ctx, remote.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]*repo.Snapshot, 0, len(infos))
	for _, fi := range infos {
		id, err := blob.ParseID(fi.Name)
		if err != nil {
			return nil, fmt.Errorf("stray object snapshots/%s: remove or explain it before pruning", fi.Name)
		}
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("%w; prune deletes nothing while a snapshot cannot be read: run courtbak verify", err)
		}
		out = append(out, sn)
	}
	return out, nil
}

// effective splits index files into those in effect and the rest.
func effective(files map[string]*index.File) (inEffect map[string]*index.File, superseded []string) {
	sup := index.Superseded(files)
	inEffect = map[string]*index.File{}
	for name, f := range files {
		if sup[name] {
			superseded = append(superseded, name)
		} else {
			inEffect[name] = f
		}
	}
	return inEffect, superseded
}

// mergeListings joins two index listings of one pack: several files in
// effect may list it, each perhaps with only some of its blobs, and the new
// index must keep every blob any of them lists.
func mergeListings(a, b index.PackBlobs) index.PackBlobs {
	if len(a.Blobs) == 0 {
		return b
	}
	type key struct {
		id     blob.ID
		offset uint32
	}
	have := make(map[key]bool, len(a.Blobs))
	out := a
	out.Blobs = slices.Clone(a.Blobs)
	for _, e := range a.Blobs {
		have[key{e.ID, e.Offset}] = true
	}
	for _, e := range b.Blobs {
		if !have[key{e.ID, e.Offset}] {
			out.Blobs = append(out.Blobs, e)
		}
	}
	slices.SortFunc(out.Blobs, func(x, y pack.Entry) int { return cmp.Compare(x.Offset, y.Offset) })
	return out
}

// usedBlobs walks the trees and returns the blobs they reach. A blob that
// idx does not locate makes it fail with ErrIncomplete: whatever it would
// then call unused might not be.
func usedBlobs(ctx context.Context, r *repo.Repository, idx *index.Index, roots []blob.ID) (usedSet, error) {
	used := usedSet{}
	var missing *blob.ID
	err := r.Reachable(ctx, roots, func(id blob.ID) {
		used.add(id)
		if missing == nil && !idx.Has(id) {
			missing = &id
		}
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err == nil && missing != nil {
		err = fmt.Errorf("blob %s: %w", missing.Short(), repo.ErrBlobNotIndexed)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrIncomplete, err)
	}
	return used, nil
}

// errStalePlan means a plan no longer matches the repository.
var errStalePlan = errors.New("the prune plan no longer matches the repository")

// mark is phase 1, which stores its plan in dir. It returns a nil plan when
// there is nothing to prune.
func mark(ctx context.Context, r *repo.Repository, opts Options, dir string) (*Plan, *Mark, error) {
	// Snapshots first, then the index, then the packs: a backup stores its
	// packs, then their index, then its snapshot, so every snapshot listed
	// here has its index files listed below.
	opts.step("mark: loading snapshots and index, listing packs")
	snaps, err := loadSnapshots(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	if opts.DryRun && len(opts.Forgotten) > 0 {
		snaps = slices.DeleteFunc(snaps, func(sn *repo.Snapshot) bool { return slices.Contains(opts.Forgotten, sn.ID) })
	}
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		return nil, nil, err
	}
	inEffect, superseded := effective(files)
	if len(superseded) > 0 && !opts.Adopt {
		return nil, nil, fmt.Errorf("%w: %d index files are superseded but still stored, and this host has no plan for them. "+
			"If a prune runs on another host, let it finish there; if this host lost its plan, or that host is gone, run prune again with --adopt: %w",
			ErrForeignMark, len(superseded), repo.ErrLocked)
	}
	stored := map[blob.ID]int64{}
	if err := r.Backend().List(ctx, remote.Data, func(fi remote.ObjectInfo) error {
		if id, err := blob.ParseID(fi.Name); err == nil {
			stored[id] = fi.Size
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("list packs: %w", err)
	}

	// The in-memory index: the files in effect, plus the headers of packs
	// no file indexes, which a snapshot may still need (an index file lost
	// after a crash).
	r.ResetIndex()
	idx := r.Index()
	indexed := map[blob.ID]index.PackBlobs{}
	for _, f := range inEffect {
		idx.AddFile(f)
		for _, p := range f.Packs {
			indexed[p.ID] = mergeListings(indexed[p.ID], p)
		}
	}
	unindexed := map[blob.ID]index.PackBlobs{}
	var unreadable []Pack
	for id, size := range stored {
		if _, ok := indexed[id]; ok {
			continue
		}
		entries, err := r.ReadPackHeader(ctx, id, size)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			r.Warn("pack %s is in no index and its header cannot be read (%v): it is garbage and will be deleted", id.Short(), err)
			unreadable = append(unreadable, Pack{ID: id, Size: size})
			continue
		}
		unindexed[id] = index.PackBlobs{ID: id, Size: size, Blobs: entries}
		idx.AddPack(id, entries)
	}

	opts.step("mark: finding the data %d snapshots need", len(snaps))
	roots := make([]blob.ID, 0, len(snaps))
	for _, sn := range snaps {
		roots = append(roots, sn.Tree)
	}
	used, err := usedBlobs(ctx, r, idx, roots)
	if err != nil {
		return nil, nil, fmt.Errorf("%w; prune deletes nothing until courtbak verify finds the repository healthy (verify --repair can restore data from a replica)", err)
	}

	m := &Mark{Snapshots: len(snaps)}
	plan := &Plan{Location: r.Backend().Location()}
	for _, sn := range snaps {
		plan.Snapshots = append(plan.Snapshots, sn.ID)
	}
	for name := range files {
		id, err := blob.ParseID(name)
		if err == nil {
			plan.Superseded = append(plan.Superseded, id)
		}
	}
	// Each used blob counts in the pack the index returns for it; another
	// copy of it elsewhere (two hosts stored the same chunk) is unused.
	owns := func(p blob.ID, e pack.Entry) bool {
		if !used.has(e.ID) {
			return false
		}
		loc, _ := idx.Lookup(e.ID)
		return loc.Pack == p
	}
	usedBytes := func(p index.PackBlobs) (usedB, unusedB int64) {
		for _, e := range p.Blobs {
			if owns(p.ID, e) {
				usedB += int64(e.Length)
			} else {
				unusedB += int64(e.Length)
			}
		}
		return usedB, unusedB
	}
	var keep, repack []index.PackBlobs
	for id, p := range indexed {
		size, ok := stored[id]
		usedB, unusedB := usedBytes(p)
		switch {
		case usedB > 0 && !ok:
			return nil, nil, fmt.Errorf("%w (pack %s is indexed and needed, but not stored)", ErrIncomplete, id.Short())
		case !ok:
			// Indexed, unused and already gone: leaving it out of the new
			// index is all there is to do.
		case usedB == 0:
			plan.Dead = append(plan.Dead, Pack{ID: id, Size: size})
		case float64(unusedB) >= opts.RepackUnused*float64(usedB+unusedB):
			p.Size = size
			repack = append(repack, p)
		default:
			keep = append(keep, p)
			m.PacksUsed++
			m.BytesUsed += size
		}
	}
	for id, p := range unindexed {
		if usedB, _ := usedBytes(p); usedB > 0 {
			keep = append(keep, p)
			m.PacksReindexed++
			m.PacksUsed++
			m.BytesUsed += p.Size
			continue
		}
		plan.Unindexed = append(plan.Unindexed, Pack{ID: id, Size: p.Size})
	}
	plan.Unindexed = append(plan.Unindexed, unreadable...)
	m.PacksUnused, m.BytesUnused = len(plan.Dead), Bytes(plan.Dead)
	m.PacksUnindexed, m.BytesUnindexed = len(plan.Unindexed), Bytes(plan.Unindexed)
	m.PacksRepacked = len(repack)
	for _, p := range repack {
		m.BytesRepacked += p.Size
		usedB, _ := usedBytes(p)
		m.BytesMoved += usedB
	}
	if len(plan.Dead) == 0 && len(plan.Unindexed) == 0 && len(repack) == 0 && m.PacksReindexed == 0 && len(superseded) == 0 {
		return nil, m, nil // nothing to prune: leave the index alone
	}
	if opts.DryRun {
		m.Due = r.Now().Add(opts.Grace)
		return plan, m, nil
	}
	var lastStored time.Time // when the last index file was stored
	if len(repack) > 0 {
		opts.step("mark: repacking %d partly unused packs", len(repack))
		if err := repackPacks(ctx, r, keep, repack, owns); err != nil {
			return nil, nil, err
		}
		crashpoint.Hit(crashpoint.PruneMarkRepack)
		lastStored = time.Now()
		for _, p := range repack {
			plan.Dead = append(plan.Dead, Pack{ID: p.ID, Size: p.Size})
		}
	}

	opts.step("mark: writing the new index")
	// The new index, in bounded files, then one file that supersedes every
	// file listed above: readers switch to the new index all at once.
	slices.SortFunc(keep, func(a, b index.PackBlobs) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for len(keep) > 0 {
		n := min(len(keep), packsPerIndexFile)
		id, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: keep[:n]}))
		if err != nil {
			return nil, nil, fmt.Errorf("write the new index: %w", err)
		}
		crashpoint.Hit(crashpoint.PruneMarkIndex)
		plan.Written = append(plan.Written, id)
		lastStored = time.Now()
		keep = keep[n:]
	}
	// Replicas copy index files in the order storage dated them, to the
	// second (repo/replicate): the superseding file must be dated after
	// every file it relies on.
	if wait := storeGap - time.Since(lastStored); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	// The plan is stored before the superseding file, so that no mark
	// takes effect without one; were the superseding file then not
	// stored, the sweep finds the plan stale and deletes nothing.
	plan.Marked = r.Now()
	if err := savePlan(dir, plan); err != nil {
		return nil, nil, err
	}
	crashpoint.Hit(crashpoint.PruneMarkPlan)
	id, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Supersedes: plan.Superseded}))
	if err != nil {
		return nil, nil, fmt.Errorf("write the superseding index file: %w", err)
	}
	crashpoint.Hit(crashpoint.PruneMarkSupersede)
	plan.Written = append(plan.Written, id)
	plan.Marked = r.Now()
	m.Due = plan.Due(opts.Grace)
	return plan, m, savePlan(dir, plan)
}

// sweep is phase 2.
func sweep(ctx context.Context, r *repo.Repository, plan *Plan, opts Options) (*Sweep, error) {
	dryRun := opts.DryRun
	opts.step("sweep: checking the packs marked at %s", plan.Marked.Local().Format("2006-01-02 15:04"))
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		return nil, err
	}
	inEffect, _ := effective(files)
	for _, id := range plan.Written {
		if _, ok := files[id.String()]; !ok {
			return nil, fmt.Errorf("%w: index file %s that the mark wrote is gone", errStalePlan, id.Short())
		}
	}
	for _, id := range plan.Superseded {
		if _, ok := inEffect[id.String()]; ok {
			return nil, fmt.Errorf("%w: index file %s that the mark superseded is in effect", errStalePlan, id.Short())
		}
	}

	// Packs that an index file written since the mark names were taken
	// back into use by someone else (a backup after a prune, a journal
	// recovery, verify --repair): they stay.
	r.ResetIndex()
	idx := r.Index()
	inUseNow := index.New()
	live := map[blob.ID]bool{}
	for _, f := range inEffect {
		idx.AddFile(f)
		inUseNow.AddFile(f)
		for _, p := range f.Packs {
			live[p.ID] = true
		}
	}
	candidates := map[blob.ID]index.PackBlobs{}
	for _, p := range append(slices.Clone(plan.Dead), plan.Unindexed...) {
		if !live[p.ID] {
			candidates[p.ID] = index.PackBlobs{ID: p.ID, Size: p.Size}
		}
	}
	sw := &Sweep{PacksKept: len(plan.Dead) + len(plan.Unindexed) - len(candidates)}

	// Snapshots stored since the mark may need candidates (a backup that
	// started before the mark and deduplicated against them): read the
	// candidates' headers so their trees can be walked, and keep every
	// candidate such a snapshot needs.
	seen := map[blob.ID]bool{}
	for _, id := range plan.Snapshots {
		seen[id] = true
	}
	snaps, err := loadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	var roots []blob.ID
	for _, sn := range snaps {
		if !seen[sn.ID] {
			roots = append(roots, sn.Tree)
		}
	}
	if len(roots) > 0 {
		for id, p := range candidates {
			entries, err := r.ReadPackHeader(ctx, id, p.Size)
			switch {
			case errors.Is(err, remote.ErrNotFound):
				continue // already gone: no snapshot can use it
			case err != nil:
				// Perhaps a passing failure: a snapshot may need it, so
				// keep it. It is unindexed, and the next mark decides.
				r.Warn("keeping marked pack %s: its header cannot be read (%v)", id.Short(), err)
				delete(candidates, id)
				sw.PacksKept++
				continue
			}
			p.Blobs = entries
			candidates[id] = p
			idx.AddPack(id, entries)
		}
		used, err := usedBlobs(ctx, r, idx, roots)
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was deleted: run courtbak verify", err)
		}
		// A candidate is needed if it holds a blob that a new snapshot uses
		// and no pack in the index in effect has.
		needed := func(p index.PackBlobs) bool {
			for _, e := range p.Blobs {
				if used.has(e.ID) && !inUseNow.Has(e.ID) {
					return true
				}
			}
			return false
		}
		var back []index.PackBlobs
		for id, p := range candidates {
			if needed(p) {
				back = append(back, p)
				delete(candidates, id)
			}
		}
		if len(back) > 0 && !dryRun {
			if _, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Packs: back})); err != nil {
				return nil, fmt.Errorf("index packs needed since the mark: %w", err)
			}
		}
		sw.PacksKept += len(back)
	}

	if dryRun {
		for _, p := range candidates {
			sw.PacksDeleted++
			sw.BytesDeleted += p.Size
		}
		sw.IndexFilesDeleted = len(plan.Superseded)
		return sw, nil
	}
	opts.step("sweep: deleting %d packs", len(candidates))
	for id, p := range candidates {
		err := r.Backend().Remove(ctx, remote.Handle{Type: remote.Data, Name: id.String()})
		switch {
		case err == nil || errors.Is(err, remote.ErrNotFound):
			crashpoint.Hit(crashpoint.PruneSweepPack)
			sw.PacksDeleted++
			sw.BytesDeleted += p.Size
		case ctx.Err() != nil:
			return sw, ctx.Err()
		default:
			// Object Lock, or a transient failure: the pack stays unindexed
			// and the next prune tries again.
			r.Warn("could not delete pack %s (%v): the next prune tries again", id.Short(), err)
			sw.PacksNotDeleted++
		}
	}
	// Index files last, those that supersede others after the rest, so that
	// a superseded file never comes back into effect.
	supersedes := map[string]bool{}
	for name, f := range files {
		if len(f.Supersedes) > 0 {
			supersedes[name] = true
		}
	}
	order := slices.Clone(plan.Superseded)
	slices.SortStableFunc(order, func(a, b blob.ID) int {
		switch sa, sb := supersedes[a.String()], supersedes[b.String()]; {
		case sa == sb:
			return 0
		case sb:
			return -1
		default:
			return 1
		}
	})
	for _, id := range order {
		err := r.Backend().Remove(ctx, remote.Handle{Type: remote.Index, Name: id.String()})
		switch {
		case err == nil || errors.Is(err, remote.ErrNotFound):
			crashpoint.Hit(crashpoint.PruneSweepIndex)
			sw.IndexFilesDeleted++
		case ctx.Err() != nil:
			return sw, ctx.Err()
		default:
			return sw, fmt.Errorf("delete superseded index file %s: %w", id.Short(), err)
		}
	}
	return sw, nil
}

// repackPacks copies the blobs each pack in repack owns into new packs,
// which the saver uploads and indexes. The saver deduplicates against an
// index of the kept packs only, so that no blob is skipped because the pack
// it is being moved out of still holds it.
func repackPacks(ctx context.Context, r *repo.Repository, keep, repack []index.PackBlobs, owns func(blob.ID, pack.Entry) bool) error {
	r.ResetIndex()
	for _, p := range keep {
		r.Index().AddPack(p.ID, p.Blobs)
	}
	s := r.NewSaver(ctx, 0)
	for _, p := range repack {
		h := remote.Handle{Type: remote.Data, Name: p.ID.String()}
		data, err := remote.ReadAll(ctx, r.Backend(), h)
		if err == nil {
			err = repo.CheckName(h, data)
		}
		if err != nil {
			_ = s.Flush(ctx)
			return fmt.Errorf("repack %s: %w; nothing was deleted: run courtbak verify", h, err)
		}
		for _, e := range p.Blobs {
			if !owns(p.ID, e) {
				continue
			}
			end := int64(e.Offset) + int64(e.Length)
			if end > int64(len(data)) {
				_ = s.Flush(ctx)
				return fmt.Errorf("repack %s: blob %s lies past the end of the pack: %w; nothing was deleted: run courtbak verify", h, e.ID.Short(), repo.ErrDamaged)
			}
			plain, err := r.OpenBlob(index.Location{Pack: p.ID, Entry: e}, data[e.Offset:end])
			if err != nil {
				_ = s.Flush(ctx)
				return fmt.Errorf("repack %s: blob %s: %w; nothing was deleted: run courtbak verify", h, e.ID.Short(), err)
			}
			if _, err := s.SaveBlob(e.Type, e.ID, plain); err != nil {
				_ = s.Flush(ctx)
				return fmt.Errorf("repack %s: %w", h, err)
			}
		}
	}
	if err := s.Flush(ctx); err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	return nil
}
