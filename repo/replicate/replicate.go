// Package replicate brings a replica of a repository up to date with its
// primary. It copies stored objects as they are, checked against their
// names, so it needs no password: the provincial center and the DR pool
// run it with storage credentials alone.
//
// A replica is a complete repository at every instant: objects are copied
// after everything they may refer to (keys, then the config, then packs,
// index and snapshots), each type only once all of the previous one is
// stored, and backends write each object atomically. A run killed at any
// moment leaves a replica that restores what it has, and the next run
// copies what is still missing.
package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/snaplog"
)

// DefaultWorkers is how many objects are copied at most at once: enough
// requests in flight to hide a distant server's latency (aws-cli sends
// ten). How many of them a server gets at once, the adaptive limit of its
// backend decides (remote.Adaptive); the memory bound stays Memory.
const DefaultWorkers = 32

// DefaultMemory bounds the bytes of the objects being copied at once: each
// is held whole, to be checked against its name before it is written. With
// packs of about 16 MiB, four are copied at once; small objects (index,
// snapshots, keys) up to Workers.
const DefaultMemory = 64 << 20

// Options tune Run.
type Options struct {
	// Workers bounds the objects copied at once (default DefaultWorkers).
	Workers int
	// Memory bounds the bytes of the objects copied at once (default
	// DefaultMemory); an object larger than that is copied alone.
	Memory int64
	// Fallbacks are further copies of the repository (the other replicas)
	// to copy an object from when the primary's is missing or damaged.
	Fallbacks []remote.Backend
	// OnPlan is told what is to be copied, once the listings are done.
	OnPlan func(objects int, bytes int64)
	// OnBytes is told about every object stored, for a progress bar.
	OnBytes func(n int64)
	// Warn receives one-line notices (an object copied from a fallback,
	// a replica object of the wrong size).
	Warn func(string)
}

// Result is what one run did to one replica.
type Result struct {
	Location       string `json:"location"`
	ObjectsCopied  int    `json:"objects_copied"`
	BytesCopied    int64  `json:"bytes_copied"`
	ObjectsPresent int    `json:"objects_present"`
	BytesPresent   int64  `json:"bytes_present"`
	// ObjectsExtra are at the replica but not at the primary (pruned there
	// since); replication never deletes.
	ObjectsExtra int `json:"objects_extra"`
	// ObjectsFromReplicas were missing or damaged at the primary and
	// copied from another replica.
	ObjectsFromReplicas int `json:"objects_from_replicas"`
}

// copyOrder is the order objects are written in. Keys go before the config
// so that a replica never has a config nobody can open; everything else
// follows remote.AllTypes.
var copyOrder = []remote.Type{remote.Keys, remote.Config, remote.Data, remote.Index, remote.Snapshot, remote.Log}

var configHandle = remote.Handle{Type: remote.Config, Name: "config"}

// Run copies to replica every object of primary it lacks. ctx stops the
// run between objects (an interrupt); storeCtx governs the copies in
// flight, so that a first interrupt lets them finish.
func Run(ctx, storeCtx context.Context, primary, replica remote.Backend, opts Options) (Result, error) {
	res := Result{Location: replica.Location()}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Memory <= 0 {
		opts.Memory = DefaultMemory
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	if replica.Location() == primary.Location() {
		return res, fmt.Errorf("replica %s is the primary itself", replica.Location())
	}
	cfg, err := remote.ReadAll(ctx, primary, configHandle)
	if errors.Is(err, remote.ErrNotFound) {
		return res, fmt.Errorf("%s: %w", primary.Location(), repo.ErrNoRepository)
	}
	if err != nil {
		return res, fmt.Errorf("read the primary's config: %w", err)
	}
	primaryCfg, err := repo.ParseConfig(cfg)
	if err != nil {
		return res, fmt.Errorf("the primary's config at %s: %w", primary.Location(), err)
	}
	if err := remote.CreateBucketIfMissing(ctx, replica); err != nil {
		return res, err
	}
	if err := checkReplicaConfig(ctx, replica, cfg, primaryCfg); err != nil {
		return res, err
	}

	// The primary is listed from snapshots down to keys: a backup stores
	// packs, then index, then its snapshot, so whatever a listed snapshot
	// or index refers to is stored before it was listed and shows up in
	// the listings that follow. Listed in copy order, a snapshot finished
	// in between could reach the replica without its packs.
	have := map[remote.Type]map[string]int64{}
	want := map[remote.Type][]remote.ObjectInfo{}
	for _, t := range slices.Backward(remote.AllTypes) {
		if want[t], err = list(ctx, primary, t); err != nil {
			return res, fmt.Errorf("list the primary: %w", err)
		}
		if t == remote.Index {
			if want[t], err = settleIndexListing(ctx, primary, want[t]); err != nil {
				return res, fmt.Errorf("list the primary: %w", err)
			}
		}
	}
	for _, t := range remote.AllTypes {
		objs, err := list(ctx, replica, t)
		if err != nil {
			return res, fmt.Errorf("list the replica: %w", err)
		}
		have[t] = make(map[string]int64, len(objs))
		for _, fi := range objs {
			have[t][fi.Name] = fi.Size
		}
	}

	todo := map[remote.Type][]remote.ObjectInfo{}
	var todoBytes int64
	for _, t := range remote.AllTypes {
		atPrimary := map[string]bool{}
		for _, fi := range want[t] {
			atPrimary[fi.Name] = true
			size, ok := have[t][fi.Name]
			switch {
			case ok && size == fi.Size:
				res.ObjectsPresent++
				res.BytesPresent += size
				continue
			case ok:
				opts.Warn(fmt.Sprintf("%s at %s has %d bytes, the primary's %d: copying it again", fi.Handle, replica.Location(), size, fi.Size))
			}
			todo[t] = append(todo[t], fi)
			todoBytes += fi.Size
		}
		for name := range have[t] {
			if !atPrimary[name] {
				res.ObjectsExtra++
			}
		}
	}
	if opts.OnPlan != nil {
		n := 0
		for _, objs := range todo {
			n += len(objs)
		}
		opts.OnPlan(n, todoBytes)
	}

	srcs := append([]remote.Backend{primary}, opts.Fallbacks...)
	for _, t := range copyOrder {
		copyType := copyAll
		switch t {
		case remote.Index:
			copyType = copyInStoredOrder
		case remote.Log:
			copyType = copyLogInOrder
		}
		if err := copyType(ctx, storeCtx, t, todo[t], srcs, replica, cfg, opts, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// settleIndexListing completes a listing of index/. A listing is not a
// snapshot in time: it may show a prune's superseding index file and miss
// the files stored just before it that replace the ones it supersedes. A
// second listing, started after the first ended, shows them. Of the files
// only the second shows, those stored no later than the newest of the
// first are taken (they were stored before the second began, and so were
// the files they rely on); later ones wait for the next run, since their
// own companions might be missing.
func settleIndexListing(ctx context.Context, be remote.Backend, first []remote.ObjectInfo) ([]remote.ObjectInfo, error) {
	again, err := list(ctx, be, remote.Index)
	if err != nil {
		return nil, err
	}
	listed := make(map[string]bool, len(first))
	var newest time.Time
	for _, fi := range first {
		listed[fi.Name] = true
		if fi.ModTime.After(newest) {
			newest = fi.ModTime
		}
	}
	out := first
	for _, fi := range again {
		if !listed[fi.Name] && !fi.ModTime.After(newest) {
			out = append(out, fi)
		}
	}
	return out, nil
}

// copyInStoredOrder copies objects a second of storage time at a time,
// oldest first, each second's after the previous one's are stored. Prune
// stores its superseding index file at least a second after the index
// files that replace the ones it supersedes (repo/prune): a replica that
// got it first would have an incomplete index until they arrived, or for
// good if replication were killed in between.
func copyInStoredOrder(ctx, storeCtx context.Context, t remote.Type, objs []remote.ObjectInfo, srcs []remote.Backend, dst remote.Backend, cfg []byte, opts Options, res *Result) error {
	objs = slices.Clone(objs)
	slices.SortStableFunc(objs, func(a, b remote.ObjectInfo) int { return a.ModTime.Compare(b.ModTime) })
	for len(objs) > 0 {
		second := objs[0].ModTime.Truncate(time.Second)
		n := 1
		for n < len(objs) && objs[n].ModTime.Truncate(time.Second).Equal(second) {
			n++
		}
		if err := copyAll(ctx, storeCtx, t, objs[:n], srcs, dst, cfg, opts, res); err != nil {
			return err
		}
		objs = objs[n:]
	}
	return nil
}

// copyLogInOrder copies snapshot log records predecessors first, one
// generation at a time: a replica must never hold a record whose
// predecessor it lacks, which verify takes for a deleted record, even if
// replication is killed half-way. Records are small, and plain JSON: no
// key is needed to read their order.
func copyLogInOrder(ctx, storeCtx context.Context, t remote.Type, objs []remote.ObjectInfo, srcs []remote.Backend, dst remote.Backend, cfg []byte, opts Options, res *Result) error {
	pending := map[string]remote.ObjectInfo{}
	prev := map[string][]string{}
	for _, fi := range objs {
		pending[fi.Name] = fi
		if data, _, err := Fetch(ctx, fi.Handle, srcs); err == nil {
			if rec, err := snaplog.Parse(data); err == nil {
				prev[fi.Name] = rec.Prev
			}
		}
	}
	for len(pending) > 0 {
		var gen []remote.ObjectInfo
		for name, fi := range pending {
			ready := true
			for _, p := range prev[name] {
				if _, waiting := pending[p]; waiting {
					ready = false
				}
			}
			if ready {
				gen = append(gen, fi)
			}
		}
		if len(gen) == 0 { // a cycle, which courtbak never writes: copy the rest
			for _, fi := range pending {
				gen = append(gen, fi)
			}
		}
		slices.SortFunc(gen, func(a, b remote.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
		if err := copyAll(ctx, storeCtx, t, gen, srcs, dst, cfg, opts, res); err != nil {
			return err
		}
		for _, fi := range gen {
			delete(pending, fi.Name)
		}
	}
	return nil
}

// checkReplicaConfig refuses a replica that holds another repository, or a
// config that is not the primary's byte for byte.
func checkReplicaConfig(ctx context.Context, replica remote.Backend, want []byte, wantCfg repo.Config) error {
	got, err := remote.ReadAll(ctx, replica, configHandle)
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the replica's config: %w", err)
	}
	if bytes.Equal(got, want) {
		return nil
	}
	if cfg, perr := repo.ParseConfig(got); perr == nil && cfg.ID != wantCfg.ID {
		return fmt.Errorf("%s holds another repository (id %.8s, the primary's is %.8s): refusing to replicate into it; give an empty location or a replica of this repository",
			replica.Location(), cfg.ID, wantCfg.ID)
	}
	return fmt.Errorf("the config at %s differs from the primary's: refusing to replicate into it; check it with 'courtbak verify --keyless'", replica.Location())
}

func list(ctx context.Context, be remote.Backend, t remote.Type) ([]remote.ObjectInfo, error) {
	var out []remote.ObjectInfo
	err := be.List(ctx, t, func(fi remote.ObjectInfo) error {
		out = append(out, fi)
		return nil
	})
	return out, err
}

// copyAll copies the objects of one type with a bounded pool of workers.
// It returns only when every copy started has ended, so the next type
// starts after all of this one is stored.
func copyAll(ctx, storeCtx context.Context, t remote.Type, objs []remote.ObjectInfo, srcs []remote.Backend, dst remote.Backend, cfg []byte, opts Options, res *Result) error {
	if len(objs) == 0 {
		return nil
	}
	if t == remote.Config {
		// Already read and checked: store exactly those bytes.
		if err := dst.Save(storeCtx, configHandle, cfg); err != nil {
			return fmt.Errorf("copy config to %s: %w", dst.Location(), err)
		}
		res.ObjectsCopied++
		res.BytesCopied += int64(len(cfg))
		if opts.OnBytes != nil {
			opts.OnBytes(int64(len(cfg)))
		}
		return nil
	}
	var (
		mu      sync.Mutex
		errs    []error
		stored  bool // false once a write to dst failed: stop
		next    atomic.Int64
		wg      sync.WaitGroup
		fromAlt atomic.Int64
		mem     = buffers.NewBudget(opts.Memory)
		bufs    = &bufferList{}
	)
	stored = true
	for range min(opts.Workers, len(objs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				mu.Lock()
				ok := stored
				mu.Unlock()
				if i >= len(objs) || ctx.Err() != nil || !ok {
					return
				}
				held := mem.Acquire(objs[i].Size)
				c, err := copyObject(storeCtx, objs[i].Handle, objs[i].Size, srcs, dst, bufs)
				mem.Release(held)
				if err == nil {
					crashpoint.Hit(crashpoint.ReplicateObject)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					// An object without an intact copy is skipped; one that
					// cannot be written means the replica is in trouble.
					stored = stored && errors.Is(err, errNoIntactCopy)
				} else {
					res.ObjectsCopied++
					res.BytesCopied += c.Size
				}
				mu.Unlock()
				if err != nil {
					continue
				}
				if c.From > 0 {
					fromAlt.Add(1)
					opts.Warn(fmt.Sprintf("%s %s at %s, copied from %s", objs[i].Handle, c.why(), srcs[0].Location(), srcs[c.From].Location()))
				}
				if opts.OnBytes != nil {
					opts.OnBytes(c.Size)
				}
			}
		})
	}
	wg.Wait()
	res.ObjectsFromReplicas += int(fromAlt.Load())
	if len(errs) > 0 {
		msg := fmt.Sprintf("copy %s to %s", t, dst.Location())
		if len(errs) > 1 {
			msg += fmt.Sprintf(": %d objects failed, the first", len(errs))
		}
		if i := slices.Index(copyOrder, t); i+1 < len(copyOrder) {
			var later []string
			for _, lt := range copyOrder[i+1:] {
				later = append(later, string(lt))
			}
			return fmt.Errorf("%s: %w; so that the replica stays consistent, %s were not copied", msg, errs[0], strings.Join(later, ", "))
		}
		return fmt.Errorf("%s: %w", msg, errs[0])
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", t, dst.Location(), context.Cause(ctx))
	}
	return nil
}

// Copied is the outcome of CopyObject.
type Copied struct {
	Size int64
	// From is the index in srcs of the copy the object was read from.
	From int
	// Skipped says why srcs[:From] were not used.
	Skipped []error
}

// why says what was wrong with the first source, when From > 0.
func (c Copied) why() string {
	first := errors.Join(c.Skipped[:min(1, len(c.Skipped))]...)
	switch {
	case errors.Is(first, remote.ErrNotFound):
		return "missing"
	case errors.Is(first, repo.ErrDamaged):
		return "damaged"
	}
	return "unreadable"
}

// CopyObject stores at dst an intact copy of h, read from the first of
// srcs that has one: its bytes match its name (repo.CheckName). Repair
// uses it to replace a damaged or missing object from the replicas.
func CopyObject(ctx context.Context, h remote.Handle, srcs []remote.Backend, dst remote.Backend) (Copied, error) {
	return copyObject(ctx, h, 0, srcs, dst, nil)
}

// copyObject is CopyObject for an object listed with size bytes (0:
// unknown), reading large objects into buffers from bufs (nil: fresh
// ones).
func copyObject(ctx context.Context, h remote.Handle, size int64, srcs []remote.Backend, dst remote.Backend, bufs *bufferList) (Copied, error) {
	var buf []byte
	if size >= rangedMin && bufs != nil {
		buf = bufs.get(size)
		defer bufs.put(buf)
	}
	data, c, err := fetch(ctx, h, size, srcs, buf)
	if err != nil {
		return c, err
	}
	if err := dst.Save(ctx, h, data); err != nil {
		return c, fmt.Errorf("store %s at %s: %w", h, dst.Location(), err)
	}
	return c, nil
}

// Fetch returns the bytes of h from the first of srcs whose copy is intact.
func Fetch(ctx context.Context, h remote.Handle, srcs []remote.Backend) ([]byte, Copied, error) {
	return fetch(ctx, h, 0, srcs, nil)
}

// fetch is Fetch for an object listed with size bytes (0: unknown), which
// is read in parallel ranges when it is large. Should the listed size be
// wrong, the bytes fail their name and the object is read again whole
// before the copy counts as damaged.
func fetch(ctx context.Context, h remote.Handle, size int64, srcs []remote.Backend, buf []byte) ([]byte, Copied, error) {
	var c Copied
	for i, src := range srcs {
		data, err := readObject(ctx, src, h, size, buf)
		if err == nil {
			err = repo.CheckName(h, data)
			if err != nil && size >= rangedMin {
				if data, err = remote.ReadAll(ctx, src, h); err == nil {
					err = repo.CheckName(h, data)
				}
			}
		}
		if err == nil {
			c.From, c.Size = i, int64(len(data))
			return data, c, nil
		}
		if ctx.Err() != nil {
			return nil, c, err
		}
		c.Skipped = append(c.Skipped, fmt.Errorf("%s: %w", src.Location(), err))
	}
	return nil, c, fmt.Errorf("%s: %w: %w", h, errNoIntactCopy, errors.Join(c.Skipped...))
}

// Objects of at least rangedMin bytes (packs are about 16 MiB) are read in
// ranges of about rangeSize at once: over a distant link, one request's
// TCP window bounds its rate, and an object in several requests moves
// several times as fast, at no cost in memory (the ranges fill one
// buffer of the listed size).
const (
	rangedMin = 12 << 20
	rangeSize = 8 << 20
)

// readObject reads h, listed with size bytes (0: unknown), from src, into
// buf if it is not nil (then of length size).
func readObject(ctx context.Context, src remote.Backend, h remote.Handle, size int64, buf []byte) ([]byte, error) {
	if size < rangedMin {
		return remote.ReadAll(ctx, src, h)
	}
	n := (size + rangeSize/2) / rangeSize // ranges of rangeSize ± a half
	part := (size + n - 1) / n
	if buf == nil {
		buf = make([]byte, size)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		off := i * part
		wg.Go(func() {
			errs[i] = remote.ReadRangeInto(ctx, src, h, off, buf[off:min(off+part, size)])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return buf, nil
}

// errNoIntactCopy means no source holds h with bytes matching its name.
var errNoIntactCopy = errors.New("no intact copy")

// bufferList recycles the buffers of large objects: allocated afresh for
// every pack, they were garbage that let the heap grow past the bytes in
// flight before a collection (peak RSS of a 161 MB replication to S3: 117
// MB, 110 MB with recycling). A buffer is reused only after Save returned:
// backends are done with the data then; should an HTTP transport still be
// sending the body of a request that failed, the server rejects that body
// by its Content-MD5.
type bufferList struct {
	mu   sync.Mutex
	free [][]byte
}

// maxFree bounds the buffers kept; the budget keeps about four packs in
// flight.
const maxFree = 8

// get returns a buffer of length n, recycled when one is large enough.
func (l *bufferList) get(n int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range l.free {
		if int64(cap(b)) >= n {
			l.free = slices.Delete(l.free, i, i+1)
			return b[:n]
		}
	}
	// A little room spares a new buffer for a slightly larger pack.
	return make([]byte, n, n+n/16)
}

// put gives b back for reuse.
func (l *bufferList) put(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < maxFree {
		l.free = append(l.free, b)
	}
}
