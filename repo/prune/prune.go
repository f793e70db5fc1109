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
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
	"github.com/courtbak/courtbak/repo/snapshot"
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

// The index files a mark writes are bounded (a few MiB each): at most
// packsPerIndexFile packs and, once a file has a pack, blobsPerIndexFile
// blobs, so that packs of many small blobs do not make one huge object.
const (
	packsPerIndexFile = 4096
	blobsPerIndexFile = 65536
)

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
	PacksRepacked int `json:"packs_repacked"`
	// IndexFilesRead is set when the mark rewrites the index: the files
	// in effect it replaces with bounded ones (also when nothing is
	// unused, to keep their number bounded: consolidate).
	IndexFilesRead int       `json:"index_files_read,omitempty"`
	BytesRepacked  int64     `json:"bytes_repacked"`
	BytesMoved     int64     `json:"bytes_moved"`
	Due            time.Time `json:"due,omitzero"`
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
	// Safety: the lock keeps every other prune of this location on this
	// host out, so any sort directory here is a killed run's, and no
	// decision reads it. Removed before the sweep (not only at the mark)
	// so that a sweep that keeps stopping does not also keep the disk
	// full of old runs and fail for that reason.
	removeStaleSorts(dir)

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
func loadSnapshots(ctx context.Context, r *repo.Repository) ([]*snapshot.Snapshot, error) {
	infos, err := r.List(ctx, remote.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]*snapshot.Snapshot, 0, len(infos))
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

// consolidate reports whether a mark that finds nothing unused should
// still rewrite the index, because the files in effect (backups write one
// per 64 packs, so a court that keeps every recording gains about 300 a
// night) are more than minConsolidate and four times the bounded files
// the mark would write. Listing index/ and a start-up then cost what the
// mark's files cost. Safety: the same as any mark's; nothing is unused, so
// the plan deletes only the superseded index files, after the grace
// period.
func consolidate(files int, d *markDecision, entries uint64) bool {
	if files <= minConsolidate {
		return false
	}
	wouldWrite := max((d.usedPacks+packsPerIndexFile-1)/packsPerIndexFile, int((entries+blobsPerIndexFile-1)/blobsPerIndexFile), 1)
	return files > 4*wouldWrite
}

// minConsolidate is the number of index files in effect up to which a
// mark with nothing unused leaves the index as it is.
var minConsolidate = 256

// errStalePlan means a plan no longer matches the repository.
var errStalePlan = errors.New("the prune plan no longer matches the repository")

// mark is phase 1, which stores its plan in dir. It returns a nil plan when
// there is nothing to prune. Each step below states why it is safe; the
// steps that see every blob keep no more than a few bytes per pack in
// memory (markview.go, design.md §20.5).
func mark(ctx context.Context, r *repo.Repository, opts Options, dir string) (*Plan, *Mark, error) {
	opts.step("mark: loading snapshots and index, listing packs")
	in, err := readSnapshotsAndIndex(ctx, r, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := refuseForeignMark(in.superseded, opts.Adopt); err != nil {
		return nil, nil, err
	}
	stored, err := listPacks(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	names := slices.Sorted(maps.Keys(in.inEffect))
	listed, err := listedPacks(ctx, r, names)
	if err != nil {
		return nil, nil, err
	}
	pt := newPackTable(listed, stored)
	if err := readUnindexed(ctx, r, pt); err != nil {
		return nil, nil, err
	}
	if err := pt.findAlike(ctx, r, names); err != nil {
		return nil, nil, err
	}
	if err := loadWalkIndex(ctx, r, pt); err != nil {
		return nil, nil, err
	}
	opts.step("mark: finding the data %d snapshots need", len(in.snaps))
	if err := findOwners(ctx, r, names, treesOf(in.snaps), pt, dir); err != nil {
		if errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w; prune deletes nothing until courtbak verify finds the repository healthy (verify --repair can restore data from a replica)", err)
		}
		return nil, nil, err
	}
	d, err := classify(pt, opts.RepackUnused)
	if err != nil {
		return nil, nil, err
	}
	plan := newPlan(r.Backend().Location(), in, d)
	m := d.summary(len(in.snaps))
	if d.nothingToDo() && len(in.superseded) == 0 && !consolidate(len(names), d, pt.keptEntries()) {
		return nil, m, nil // nothing to prune: leave the index alone
	}
	m.IndexFilesRead = len(names)
	if opts.DryRun {
		m.Due = r.Now().Add(opts.Grace)
		return plan, m, nil
	}
	var lastStored time.Time // when the last index file was stored
	if len(d.repack) > 0 {
		opts.step("mark: repacking %d partly unused packs", len(d.repack))
		if err := repackOwned(ctx, r, names, pt); err != nil {
			return nil, nil, err
		}
		crashpoint.Hit(crashpoint.PruneMarkRepack)
		lastStored = time.Now()
		plan.Dead = append(plan.Dead, d.repack...)
	}
	opts.step("mark: writing the new index")
	written, last, err := writeKept(ctx, r, names, pt)
	if err != nil {
		return nil, nil, err
	}
	plan.Written = written
	if !last.IsZero() {
		lastStored = last
	}
	if err := waitStoreGap(ctx, lastStored); err != nil {
		return nil, nil, err
	}
	if err := commitMark(ctx, r, dir, plan); err != nil {
		return nil, nil, err
	}
	m.Due = plan.Due(opts.Grace)
	return plan, m, nil
}

// markInput is what a mark reads from the repository.
type markInput struct {
	snaps      []*snapshot.Snapshot
	files      map[string]*index.File // every index file listed, without packs
	inEffect   map[string]*index.File // those not superseded
	superseded []string
}

// readSnapshotsAndIndex reads the snapshots, then the index files; the
// mark lists the packs after them (listPacks). Safety: a backup stores its
// packs, then their index, then its snapshot; read in the opposite order,
// every snapshot read here has its index files listed, and every pack
// those list is stored (or the walk finds it missing). In a dry run of
// forget --prune, the snapshots to be forgotten are left out, which only
// shows more as unused and deletes nothing.
func readSnapshotsAndIndex(ctx context.Context, r *repo.Repository, opts Options) (*markInput, error) {
	snaps, err := loadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	if opts.DryRun && len(opts.Forgotten) > 0 {
		snaps = slices.DeleteFunc(snaps, func(sn *snapshot.Snapshot) bool { return slices.Contains(opts.Forgotten, sn.ID) })
	}
	files, err := r.LoadIndexFileHeads(ctx)
	if err != nil {
		return nil, err
	}
	inEffect, superseded := effective(files)
	return &markInput{snaps: snaps, files: files, inEffect: inEffect, superseded: superseded}, nil
}

// listPacks lists the stored packs by size. Safety: see
// readSnapshotsAndIndex; a pack stored after the listing is not a
// candidate for deletion, as the mark never saw it.
func listPacks(ctx context.Context, r *repo.Repository) (map[blob.ID]int64, error) {
	stored := map[blob.ID]int64{}
	if err := r.Backend().List(ctx, remote.Data, func(fi remote.ObjectInfo) error {
		if id, err := blob.ParseID(fi.Name); err == nil {
			stored[id] = fi.Size
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return stored, nil
}

// refuseForeignMark stops a mark while index files are superseded that
// this host has no plan for (a pending plan was swept or found stale
// before the mark). Safety: those are another prune's mark, whose sweep
// relies on its own plan; marking over it would let that sweep delete what
// this mark keeps, or this one what that mark took back. --adopt, when no
// other prune runs, takes the superseded files into this plan.
func refuseForeignMark(superseded []string, adopt bool) error {
	if len(superseded) == 0 || adopt {
		return nil
	}
	return fmt.Errorf("%w: %d index files are superseded but still stored, and this host has no plan for them. "+
		"If a prune runs on another host, let it finish there; if this host lost its plan, or that host is gone, run prune again with --adopt: %w",
		ErrForeignMark, len(superseded), repo.ErrLocked)
}

func treesOf(snaps []*snapshot.Snapshot) []blob.ID {
	roots := make([]blob.ID, 0, len(snaps))
	for _, sn := range snaps {
		roots = append(roots, sn.Tree)
	}
	return roots
}

// newPlan is the plan of a decision: the snapshots walked, every index
// file listed (all are superseded by the mark), and the packs to delete.
func newPlan(location string, in *markInput, d *markDecision) *Plan {
	plan := &Plan{Location: location, Dead: slices.Clone(d.dead), Unindexed: slices.Clone(d.unused)}
	for _, sn := range in.snaps {
		plan.Snapshots = append(plan.Snapshots, sn.ID)
	}
	for name := range in.files {
		if id, err := blob.ParseID(name); err == nil {
			plan.Superseded = append(plan.Superseded, id)
		}
	}
	return plan
}

// writeNewIndex stores packs in bounded index files (sorted by id), and
// returns their names and when the last was stored. Safety: these files
// only add listings; until the superseding file exists, the old files stay
// in effect too, so a reader at any moment finds every used blob.
func writeNewIndex(ctx context.Context, r *repo.Repository, keep []index.PackBlobs) ([]blob.ID, time.Time, error) {
	keep = slices.Clone(keep)
	slices.SortFunc(keep, func(a, b index.PackBlobs) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	w := &indexWriter{r: r}
	for _, p := range keep {
		if err := w.add(ctx, p); err != nil {
			return nil, time.Time{}, err
		}
	}
	if err := w.flush(ctx); err != nil {
		return nil, time.Time{}, err
	}
	return w.written, w.last, nil
}

// waitStoreGap waits until storeGap has passed since lastStored. Safety:
// replicas copy index files in the order storage dated them, to the second
// (repo/replicate); the superseding file must be dated after every file it
// relies on, or a replica could hold it without its replacements.
func waitStoreGap(ctx context.Context, lastStored time.Time) error {
	wait := storeGap - time.Since(lastStored)
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitMark stores the plan, then the index file that supersedes every
// file the plan names, then the plan again with that file and the time.
// Safety: readers switch to the new index all at once; the plan exists
// before the superseding file, so no mark takes effect without one, and
// were the superseding file then not stored, the sweep finds the plan
// stale and deletes nothing.
func commitMark(ctx context.Context, r *repo.Repository, dir string, plan *Plan) error {
	plan.Marked = r.Now()
	if err := savePlan(dir, plan); err != nil {
		return err
	}
	crashpoint.Hit(crashpoint.PruneMarkPlan)
	id, err := r.SaveFile(ctx, remote.Index, index.Encode(&index.File{Supersedes: plan.Superseded}))
	if err != nil {
		return fmt.Errorf("write the superseding index file: %w", err)
	}
	crashpoint.Hit(crashpoint.PruneMarkSupersede)
	plan.Written = append(plan.Written, id)
	plan.Marked = r.Now()
	return savePlan(dir, plan)
}

// sweep is phase 2. Each step below states why it is safe.
func sweep(ctx context.Context, r *repo.Repository, plan *Plan, opts Options) (*Sweep, error) {
	opts.step("sweep: checking the packs marked at %s", plan.Marked.Local().Format("2006-01-02 15:04"))
	files, err := r.LoadIndexFileHeads(ctx)
	if err != nil {
		return nil, err
	}
	inEffect, _ := effective(files)
	if err := checkPlanCurrent(plan, files, inEffect); err != nil {
		return nil, err
	}
	if err := loadPackLists(ctx, r, inEffect); err != nil {
		return nil, err
	}
	if err := checkWrittenStored(ctx, r, markFiles(plan, inEffect)); err != nil {
		return nil, err
	}
	candidates := sweepCandidates(plan, inEffect)
	sw := &Sweep{PacksKept: len(plan.Dead) + len(plan.Unindexed) - len(candidates)}
	roots, err := treesSinceMark(ctx, r, plan)
	if err != nil {
		return nil, err
	}
	if len(roots) > 0 {
		inUseNow, err := loadSweepIndex(ctx, r)
		if err != nil {
			return nil, err
		}
		kept, err := keepNeededSinceMark(ctx, r, candidates, inUseNow, roots, opts.DryRun, Dir(r))
		sw.PacksKept += kept
		if err != nil {
			return nil, err
		}
	}
	if opts.DryRun {
		for _, p := range candidates {
			sw.PacksDeleted++
			sw.BytesDeleted += p.Size
		}
		sw.IndexFilesDeleted = len(plan.Superseded)
		return sw, nil
	}
	opts.step("sweep: deleting %d packs", len(candidates))
	if err := deletePacks(ctx, r, candidates, sw); err != nil {
		return sw, err
	}
	return sw, deleteIndexFiles(ctx, r, supersedingLast(files, plan.Superseded), sw)
}

// checkPlanCurrent refuses a plan whose mark is not the index in effect.
// Safety: the sweep deletes what its mark left out of the index; if a
// file the mark wrote is gone, or one it superseded is in effect again,
// readers do not use the mark's index, and packs the plan names may be
// the only copies of what they need. Nothing is deleted then.
func checkPlanCurrent(plan *Plan, files, inEffect map[string]*index.File) error {
	for _, id := range plan.Written {
		if _, ok := files[id.String()]; !ok {
			return fmt.Errorf("%w: index file %s that the mark wrote is gone", errStalePlan, id.Short())
		}
	}
	for _, id := range plan.Superseded {
		if _, ok := inEffect[id.String()]; ok {
			return fmt.Errorf("%w: index file %s that the mark superseded is in effect", errStalePlan, id.Short())
		}
	}
	return nil
}

// checkWrittenStored reads the index files the mark wrote from storage,
// not from this host's cache. Safety: other hosts see the mark only
// through those files; one damaged in storage is left out by their
// backups (indexdamage.go), for which the superseded files then stay in
// effect, so they deduplicate against the packs the mark found unused and
// no check of theirs sees that a mark happened. Until the file is intact
// in storage again, the sweep deletes nothing and the plan waits.
func checkWrittenStored(ctx context.Context, r *repo.Repository, written []blob.ID) error {
	for _, id := range written {
		h := remote.Handle{Type: remote.Index, Name: id.String()}
		data, err := remote.ReadAll(ctx, r.Backend(), h)
		if err == nil {
			err = repo.CheckName(h, data)
		}
		if err == nil {
			_, err = r.OpenFile(h, data)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("index file %s that the mark wrote cannot be read intact from storage (%v): backups on other hosts do not see the mark, so nothing was deleted; repair it (courtbak verify --repair --replica URL) and prune again", id.Short(), err)
		}
	}
	return nil
}

// markFiles are the index files the mark's effect rests on: those the
// plan names as written, and every file in effect that supersedes a file
// of the mark's I1. Safety: a prune killed just after storing its
// superseding file (crashpoint prune.mark.supersede) left a plan that
// does not name it; were it then damaged in storage, other hosts would
// see I1 in effect and deduplicate against the dead packs, so it must be
// read intact from storage like the files the plan names.
func markFiles(plan *Plan, inEffect map[string]*index.File) []blob.ID {
	out := slices.Clone(plan.Written)
	replaced, named := map[blob.ID]bool{}, map[blob.ID]bool{}
	for _, id := range plan.Superseded {
		replaced[id] = true
	}
	for _, id := range plan.Written {
		named[id] = true
	}
	for _, name := range slices.Sorted(maps.Keys(inEffect)) {
		id, err := blob.ParseID(name)
		if err != nil || named[id] {
			continue
		}
		if slices.ContainsFunc(inEffect[name].Supersedes, func(s blob.ID) bool { return replaced[s] }) {
			out = append(out, id)
		}
	}
	return out
}

// sweepCandidates are the plan's packs that no index file in effect lists.
// Safety: a pack that an index file written since the mark lists was taken
// back into use by someone else (a backup after a prune, a journal
// recovery, verify --repair): it stays.
func sweepCandidates(plan *Plan, inEffect map[string]*index.File) map[blob.ID]index.PackBlobs {
	live := map[blob.ID]bool{}
	for _, f := range inEffect {
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
	return candidates
}

// loadSweepIndex loads the index in effect (the repository's own: on-disk
// tables in the cache directory, design.md §24) and returns it, and gives
// r a new in-memory index in front of it, for the candidates' headers.
// The index in effect comes from a listing of index/ made after the one
// that chose the candidates; joinSinceMark therefore asks it where a blob
// is, not only whether it is there, so that a candidate indexed again in
// between never counts as another copy of its own blobs.
func loadSweepIndex(ctx context.Context, r *repo.Repository) (*index.Index, error) {
	r.ResetIndex()
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	inUseNow := r.Index()
	r.ResetIndex()
	r.Index().SetBase(inUseNow)
	return inUseNow, nil
}

// treesSinceMark returns the root trees of the snapshots stored since the
// mark. Safety: like the mark, the sweep refuses to go on when a snapshot
// cannot be read (loadSnapshots), since what it needs would look unused.
func treesSinceMark(ctx context.Context, r *repo.Repository, plan *Plan) ([]blob.ID, error) {
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
	return roots, nil
}

// deletePacks deletes the candidates and counts them in sw. Safety: every
// candidate is out of the index in effect and needed by no snapshot (the
// steps before); a deletion the storage refuses (Object Lock, a passing
// failure) leaves the pack unindexed, and the next prune tries again.
func deletePacks(ctx context.Context, r *repo.Repository, candidates map[blob.ID]index.PackBlobs, sw *Sweep) error {
	for id, p := range candidates {
		err := r.Backend().Remove(ctx, remote.Handle{Type: remote.Data, Name: id.String()})
		switch {
		case err == nil || errors.Is(err, remote.ErrNotFound):
			crashpoint.Hit(crashpoint.PruneSweepPack)
			sw.PacksDeleted++
			sw.BytesDeleted += p.Size
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			r.Warn("could not delete pack %s (%v): the next prune tries again", id.Short(), err)
			sw.PacksNotDeleted++
		}
	}
	return nil
}

// supersedingLast orders the superseded index files for deletion: those
// that supersede others after the rest. Safety: deleting a superseding
// file first would bring the files it supersedes back into effect, listing
// packs just deleted.
func supersedingLast(files map[string]*index.File, superseded []blob.ID) []blob.ID {
	supersedes := map[string]bool{}
	for name, f := range files {
		if len(f.Supersedes) > 0 {
			supersedes[name] = true
		}
	}
	order := slices.Clone(superseded)
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
	return order
}

// deleteIndexFiles deletes the superseded index files in order, after the
// packs. Safety: they list only packs the mark's index lists too, or packs
// just deleted; a failure stops here, and the files left over are
// superseded still, so nothing they list comes back into effect.
func deleteIndexFiles(ctx context.Context, r *repo.Repository, order []blob.ID, sw *Sweep) error {
	for _, id := range order {
		err := r.Backend().Remove(ctx, remote.Handle{Type: remote.Index, Name: id.String()})
		switch {
		case err == nil || errors.Is(err, remote.ErrNotFound):
			crashpoint.Hit(crashpoint.PruneSweepIndex)
			sw.IndexFilesDeleted++
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("delete superseded index file %s: %w", id.Short(), err)
		}
	}
	return nil
}
