// Package checker verifies a courtbak repository and its replicas and
// repairs damaged or missing objects from intact copies. With the key it
// checks structure (every snapshot's trees and blobs indexed, every indexed
// pack present with its recorded size) and, optionally, reads and
// authenticates data; without the key (keyless) it checks every stored
// object against its name, which is what replica operators can do. The
// findings are a report.Report.
package checker

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/report"
)

// Target is one copy of the repository.
type Target struct {
	// Location is shown in reports: a URL without credentials.
	Location string
	// Label is the name people give the copy ("Provincial center"),
	// shown before its location; may be empty.
	Label string
	// Backend is nil when the copy could not be opened; OpenErr says why.
	Backend remote.Backend
	OpenErr error
}

// Options choose what to check.
type Options struct {
	// ReadData reads packs in full: with the key every blob is
	// authenticated and hashed; keyless, and at replicas, packs are hashed.
	ReadData bool
	// SubsetPercent in (0, 100) limits ReadData to a rotating subset of
	// packs (see Subset).
	SubsetPercent float64
	// Repair replaces objects damaged or missing at the primary with intact
	// copies from the replicas.
	Repair bool
	// Manifest chooses the snapshots whose file lists the report carries;
	// the zero value carries none (verify's default is the newest per host
	// and paths: report.ManifestChoice{Latest: true}).
	Manifest report.ManifestChoice
	// Workers bounds parallel reads; 0 means 8.
	Workers int
	// Now is the clock (it chooses the day's subset); nil means time.Now.
	Now func() time.Time
	// OnPlan receives the number of bytes that will be read, once known;
	// OnRead receives progress. Either may be nil.
	OnPlan func(total int64)
	OnRead func(n int64)
}

// Problem kinds, as they appear in reports (documented in
// docs/report-schema.md), in the order reports list them.
const (
	KindReplicaUnreachable = "replica_unreachable"
	KindReplicaForeign     = "replica_foreign"
	KindConfigDamaged      = "config_damaged"
	KindKeyDamaged         = "key_damaged"
	KindIndexDamaged       = "index_damaged"
	KindIndexInconsistent  = "index_inconsistent"
	KindObjectMissing      = "object_missing"
	KindObjectDamaged      = "object_damaged"
	KindObjectUnreadable   = "object_unreadable"
	KindPackMissing        = "pack_missing"
	KindPackSize           = "pack_size"
	KindPackDamaged        = "pack_damaged"
	KindPackHeader         = "pack_header"
	KindBlobDamaged        = "blob_damaged"
	KindSnapshotDamaged    = "snapshot_damaged"
	KindTreeDamaged        = "tree_damaged"
	KindBlobNotIndexed     = "blob_not_indexed"
	KindFileDamaged        = "file_damaged"
	KindFileUnhashed       = "file_unhashed"
	KindRepairFailed       = "repair_failed"
	// Notices.
	KindPackUnindexed = "pack_unindexed"
	KindObjectsExtra  = "objects_extra"
)

var kindOrder = map[string]int{}

func init() {
	for i, k := range []string{KindReplicaUnreachable, KindReplicaForeign, KindConfigDamaged, KindKeyDamaged,
		KindIndexDamaged, KindIndexInconsistent, KindObjectMissing, KindObjectDamaged, KindObjectUnreadable,
		KindPackMissing, KindPackSize, KindPackDamaged, KindPackHeader, KindBlobDamaged, KindSnapshotDamaged,
		KindTreeDamaged, KindBlobNotIndexed, KindFileDamaged, KindFileUnhashed, KindRepairFailed,
		KindSnapshotDeleted, KindLogRecordMissing, KindLogRecordDamaged, KindLogRecordForged,
		KindPackUnindexed, KindObjectsExtra, KindSnapshotUnlogged, KindSnapshotForgotten} {
		kindOrder[k] = i
	}
}

// copyState is what the checker knows about one copy.
type copyState struct {
	Target
	rep     *report.Copy
	objects map[remote.Handle]int64 // nil when it could not be listed
	foreign bool                    // a copy of another repository
	config  []byte                  // its config, when read and it parses
}

type checker struct {
	opts     Options
	r        *repo.Repository // nil when keyless
	primary  *copyState
	replicas []*copyState
	subset   Subset
	rep      *report.Report

	mu sync.Mutex
	// damaged holds primary objects that are missing though needed, or
	// whose bytes do not match their name: what repair replaces.
	damaged map[remote.Handle]bool
	// configWant, when set, is the config the other copies agree on:
	// repair accepts no other.
	configWant []byte
	// forced holds packs read beyond the day's subset (see
	// ensureSubsetReads).
	forced map[string]bool
	// forgotten holds the snapshots the snapshot log says were forgotten
	// (by records whose MAC verified): still stored at a replica, which
	// keeps what the primary forgot, or after an interrupted forget.
	forgotten map[string]bool

	// Keyed state. Nothing here grows with the blobs of a healthy
	// repository (design.md §24.1): the index's blobs are in spill, on
	// disk; what is kept per pack is an indexedPack.
	idx         *indexState
	badBlobs    map[blob.ID]string // blobs known damaged or missing, and why
	badPacks    map[blob.ID]string // packs whose blobs are all unusable, and why
	unindexed   map[blob.ID]bool   // blobs snapshots need that no index lists
	trees       map[blob.ID]*treeResult
	treeCache   *treeCache       // recently walked trees, bounded
	contentOK   *contentSet      // file contents found usable
	nameChecked map[blob.ID]bool // packs hashed after a tree failed to load
}

// maxRounds bounds check-and-repair rounds: a restored index can reveal
// damage in the packs it lists, which the next round repairs.
const maxRounds = 4

// Check verifies primary, with the key when r is not nil (r must be open on
// primary.Backend), else keyless, and compares each replica with it. With
// Repair, whenever a round repairs something the repository is checked
// again, so the report describes the repaired repository; problems that
// were repaired are kept, marked so. The error is non-nil only when the
// check could not run (the primary cannot be listed, or ctx ended);
// everything found wrong is in the report.
func Check(ctx context.Context, primary Target, r *repo.Repository, replicas []Target, opts Options) (*report.Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if primary.Backend == nil {
		return nil, fmt.Errorf("open repository %s: %w", primary.Location, primary.OpenErr)
	}
	var (
		started  = opts.Now()
		repaired []report.Problem
		repairs  []report.Repair
	)
	for round := 1; ; round++ {
		if r != nil {
			r.ResetIndex() // each round reads the index as it is now
		}
		rep, err := checkOnce(ctx, primary, r, replicas, opts)
		if err != nil {
			return nil, err
		}
		if len(rep.Repairs) > 0 && round < maxRounds {
			for _, p := range rep.Problems {
				if p.Repaired {
					repaired = append(repaired, p)
				}
			}
			repairs = append(repairs, rep.Repairs...)
			continue
		}
		rep.Started = started.UTC()
		rep.Problems = append(repaired, rep.Problems...)
		rep.Repairs = append(repairs, rep.Repairs...)
		settle(rep)
		rep.Finished = opts.Now().UTC()
		return rep, nil
	}
}

// checkOnce runs one round of checks, and of repairs when asked.
func checkOnce(ctx context.Context, primary Target, r *repo.Repository, replicas []Target, opts Options) (*report.Report, error) {
	c := &checker{
		opts:        opts,
		r:           r,
		damaged:     map[remote.Handle]bool{},
		idx:         &indexState{},
		badBlobs:    map[blob.ID]string{},
		badPacks:    map[blob.ID]string{},
		unindexed:   map[blob.ID]bool{},
		trees:       map[blob.ID]*treeResult{},
		treeCache:   newTreeCache(treeCacheIDs),
		contentOK:   &contentSet{max: contentSetMax},
		nameChecked: map[blob.ID]bool{},
		forced:      map[string]bool{},
		forgotten:   map[string]bool{},
	}
	c.subset = NewSubset(opts.SubsetPercent, opts.Now())
	c.rep = &report.Report{
		Schema:        report.Schema,
		SchemaVersion: report.SchemaVersion,
		Repository:    report.Repository{Location: primary.Location, Label: primary.Label},
		Scope:         c.scope(),
		Copies:        make([]report.Copy, 1+len(replicas)),
	}
	c.primary = &copyState{Target: primary, rep: &c.rep.Copies[0]}
	c.primary.rep.Role, c.primary.rep.Location, c.primary.rep.Label = "primary", primary.Location, primary.Label
	for i, t := range replicas {
		cs := &copyState{Target: t, rep: &c.rep.Copies[i+1]}
		cs.rep.Role, cs.rep.Location, cs.rep.Label = "replica", t.Location, t.Label
		c.replicas = append(c.replicas, cs)
	}

	defer func() { c.idx.close(r) }()
	var err error
	if c.primary.objects, err = listAll(ctx, primary.Backend); err != nil {
		return nil, fmt.Errorf("list repository %s: %w", primary.Location, err)
	}
	for _, cs := range c.replicas {
		c.listReplica(ctx, cs)
	}
	// The log first: the snapshots it says were forgotten are not walked.
	err = c.checkLog(ctx)
	switch {
	case err != nil:
	case r != nil:
		c.rep.Repository.ID = r.ID()
		err = c.checkKeyed(ctx)
	default:
		err = c.checkKeyless(ctx)
	}
	if err == nil {
		err = c.checkReplicas(ctx)
	}
	if err == nil && opts.Repair {
		err = c.repair(ctx)
	}
	if err != nil {
		return nil, err
	}
	c.coverage()
	return c.rep, nil
}

// coverage says what this run did not read: a verdict of intact covers
// only what was read, and the report must say so.
func (c *checker) coverage() {
	ch := &c.rep.Checked
	s := &c.rep.Scope
	switch {
	case ch.PacksRead >= ch.Packs:
		s.Complete = true
	case ch.PacksRead == 0:
		s.Unchecked = fmt.Sprintf("pack contents not read (%d packs, %s); run with --read-data to read them",
			ch.Packs, report.BinarySize(ch.PackBytes))
	default:
		s.Unchecked = fmt.Sprintf("%d of %d packs read (%s of %s), the rest not; %d consecutive daily runs read all, or run with --read-data",
			ch.PacksRead, ch.Packs, report.BinarySize(ch.PackBytesRead), report.BinarySize(ch.PackBytes), c.subset.CycleRuns())
	}
}

func (c *checker) scope() report.Scope {
	s := report.Scope{Structure: c.r != nil, Keyless: c.r == nil, Repair: c.opts.Repair, ReadData: "none"}
	switch {
	case c.opts.ReadData && !c.subset.All():
		s.ReadData = "subset"
		s.SubsetPercent = c.opts.SubsetPercent
		s.SubsetDay = c.subset.Day
		s.SubsetCycleRuns = c.subset.CycleRuns()
	case c.opts.ReadData:
		s.ReadData = "all"
	}
	var parts []string
	if c.r != nil {
		parts = append(parts, "every backup (snapshot) was opened with the password and every piece of data its files need was found listed and stored")
	} else {
		parts = append(parts, "without the password: stored objects were read back and compared with their fingerprints (their names)")
	}
	switch s.ReadData {
	case "all":
		if c.r != nil {
			parts = append(parts, "all stored data was read back, decrypted and checked against its fingerprints")
		}
	case "subset":
		parts = append(parts, fmt.Sprintf("a rotating %g%% share of the stored data was read back and checked (day %d; %d consecutive daily runs read all of it)",
			s.SubsetPercent, s.SubsetDay, s.SubsetCycleRuns))
	default:
		parts = append(parts, "the stored data itself was not read back")
	}
	if c.opts.Repair {
		parts = append(parts, "damaged or missing objects were to be repaired from the replicas")
	}
	s.Description = strings.Join(parts, "; ")
	return s
}

// listAll lists every object of a backend.
func listAll(ctx context.Context, be remote.Backend) (map[remote.Handle]int64, error) {
	objects := map[remote.Handle]int64{}
	for _, t := range remote.AllTypes {
		err := be.List(ctx, t, func(fi remote.ObjectInfo) error {
			objects[fi.Handle] = fi.Size
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return objects, nil
}

// handles returns the objects of type t (all types when t is ""), sorted.
func handles[V any](objects map[remote.Handle]V, t remote.Type) []remote.Handle {
	var out []remote.Handle
	for h := range objects {
		if t == "" || h.Type == t {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return typeRank(out[i].Type) < typeRank(out[j].Type)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func typeRank(t remote.Type) int {
	for i, x := range remote.AllTypes {
		if x == t {
			return i
		}
	}
	return len(remote.AllTypes)
}

// problem records something wrong.
func (c *checker) problem(p report.Problem) {
	c.mu.Lock()
	c.rep.Problems = append(c.rep.Problems, p)
	c.mu.Unlock()
}

// notice records something worth knowing that is not wrong.
func (c *checker) notice(p report.Problem) {
	c.mu.Lock()
	c.rep.Notices = append(c.rep.Notices, p)
	c.mu.Unlock()
}

// markDamaged records a primary object that repair should replace: one
// missing though needed, or one whose bytes do not match its name.
func (c *checker) markDamaged(h remote.Handle, missing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.damaged[h] {
		return
	}
	c.damaged[h] = true
	if missing {
		c.primary.rep.Missing = append(c.primary.rep.Missing, h.String())
	} else {
		c.primary.rep.Damaged = append(c.primary.rep.Damaged, h.String())
	}
}

// read counts n bytes of h read from cs, and one object hashed when
// hashed; a pack hashed whole counts as a pack read at that copy.
func (c *checker) read(cs *copyState, h remote.Handle, n int64, hashed bool) {
	c.mu.Lock()
	c.rep.Checked.BytesRead += n
	cs.rep.BytesRead += n
	if hashed {
		c.rep.Checked.ObjectsHashed++
		cs.rep.Hashed++
		if h.Type == remote.Data {
			cs.rep.PacksRead++
			cs.rep.PackBytesRead += n
		}
	}
	c.mu.Unlock()
	if c.opts.OnRead != nil && n > 0 {
		c.opts.OnRead(n)
	}
}

// repairCommand is the command that repairs the primary from a replica.
func (c *checker) repairCommand() string {
	url := "URL"
	if len(c.replicas) > 0 {
		url = c.replicas[0].Location
	}
	flag := ""
	if c.r == nil {
		flag = " --keyless"
	}
	return fmt.Sprintf("courtbak verify%s --repair --replica %s", flag, url)
}

// repairAction says how to fix a damaged or missing object at the primary.
func (c *checker) repairAction() string {
	return "replace it with an intact copy from a replica: " + c.repairCommand()
}

// settle orders the findings and sets the copies' statuses and the verdict.
func settle(rep *report.Report) {
	rank := map[string]int{}
	for i, cp := range rep.Copies {
		if _, ok := rank[cp.Location]; !ok {
			rank[cp.Location] = i
		}
	}
	for _, list := range [][]report.Problem{rep.Problems, rep.Notices} {
		sort.SliceStable(list, func(i, j int) bool {
			a, b := list[i], list[j]
			switch {
			case rank[a.Copy] != rank[b.Copy]:
				return rank[a.Copy] < rank[b.Copy]
			case kindOrder[a.Kind] != kindOrder[b.Kind]:
				return kindOrder[a.Kind] < kindOrder[b.Kind]
			case a.Object != b.Object:
				return a.Object < b.Object
			case a.Snapshot != b.Snapshot:
				return a.Snapshot < b.Snapshot
			}
			return a.Path < b.Path
		})
	}
	open := map[string]int{}
	all := map[string]int{}
	for _, p := range rep.Problems {
		all[p.Copy]++
		if !p.Repaired {
			open[p.Copy]++
		}
	}
	for i := range rep.Copies {
		cp := &rep.Copies[i]
		switch {
		case cp.Status == report.StatusUnreachable:
		case open[cp.Location] > 0:
			cp.Status = report.StatusProblems
		case all[cp.Location] > 0:
			cp.Status = report.StatusRepaired
		default:
			cp.Status = report.StatusIntact
		}
		sort.Strings(cp.Missing)
		sort.Strings(cp.Damaged)
		sort.Strings(cp.Extra)
	}
	rep.SetVerdict()
}

// parallel calls fn for every item, at most n at a time, and stops early
// when ctx ends.
func parallel[T any](ctx context.Context, n int, items []T, fn func(T)) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(items)) || ctx.Err() != nil {
					return
				}
				fn(items[i])
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// Subset chooses the packs a --read-data-subset run reads. Pack names are
// hashes, so their first 64 bits are spread evenly over [0, 2^64); each day
// reads the window [day*w, (day+1)*w) of that space (mod 2^64), w being
// the percentage of 2^64. Consecutive days' windows are adjacent, so
// ceil(100/percent) consecutive daily runs read every pack, and a pack
// added later is read within that many days too.
type Subset struct {
	Day          int64
	start, width uint64
	all          bool
}

// NewSubset returns the subset for percent at time now; percent outside
// (0, 100) selects everything.
func NewSubset(percent float64, now time.Time) Subset {
	day := now.UTC().Unix() / 86400
	if percent <= 0 || percent >= 100 {
		return Subset{Day: day, all: true}
	}
	// w = ceil(percent/100 * 2^64), exactly, so that the windows of
	// ceil(100/percent) days add up to at least 2^64.
	w := new(big.Rat).SetFloat64(percent)
	w.Mul(w, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 64)))
	w.Quo(w, big.NewRat(100, 1))
	width := new(big.Int).Add(w.Num(), new(big.Int).Sub(w.Denom(), big.NewInt(1)))
	width.Quo(width, w.Denom())
	return Subset{Day: day, start: uint64(day) * width.Uint64(), width: width.Uint64()}
}

// Nearest returns the name of names (not empty) whose position follows
// the day's window most closely, going round the id space.
func (s Subset) Nearest(names []string) string {
	best, bestDist := names[0], uint64(math.MaxUint64)
	for _, name := range names {
		pos, ok := position(name)
		if !ok {
			continue
		}
		if d := pos - s.start; d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// position is where a hash name lies in the id space: its first 64 bits.
func position(name string) (uint64, bool) {
	if len(name) < 16 {
		return 0, false
	}
	b, err := hex.DecodeString(name[:16])
	if err != nil {
		return 0, false
	}
	var pos uint64
	for _, x := range b {
		pos = pos<<8 | uint64(x)
	}
	return pos, true
}

// All reports whether the subset is everything.
func (s Subset) All() bool { return s.all }

// CycleRuns is the number of consecutive daily runs that cover every pack.
func (s Subset) CycleRuns() int {
	if s.all {
		return 1
	}
	return int(math.MaxUint64/s.width + 1)
}

// Has reports whether the object called name is in the subset. Names that
// are not hashes are always checked.
func (s Subset) Has(name string) bool {
	if s.all {
		return true
	}
	pos, ok := position(name)
	return !ok || pos-s.start < s.width
}

// readsData reports whether h's bytes are read at a replica or, keyless,
// at the primary: metadata always, packs when data is read and h is in
// the day's subset.
func (c *checker) readsData(h remote.Handle) bool {
	return h.Type != remote.Data || (c.opts.ReadData && c.inSubset(h.Name))
}

// inSubset reports whether the pack called name is read this run.
func (c *checker) inSubset(name string) bool {
	return c.subset.Has(name) || c.forced[name]
}

// ensureSubsetReads makes a subset run read at least one of packs: on a
// small repository the day's window can hold none, and a run that read
// nothing must not look like one that read its share. The pack read is
// the one nearest after the window, so it rotates with the days too.
func (c *checker) ensureSubsetReads(packs []string) {
	if !c.opts.ReadData || c.subset.All() || len(packs) == 0 {
		return
	}
	for _, name := range packs {
		if c.inSubset(name) {
			return
		}
	}
	c.forced[c.subset.Nearest(packs)] = true
}
