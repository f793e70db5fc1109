package replicate_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/replicate"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snaplog"
)

func newLocal(t *testing.T) *remote.Local {
	t.Helper()
	be, err := remote.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func hashName(data []byte) string {
	sum := crypto.Hash(data)
	return hex.EncodeToString(sum[:])
}

// newPrimary makes a repository (config and key) and adds objects of every
// type, named by their hashes, as a backup would leave them. Replication
// does not open them, so their contents need not be real packs.
func newPrimary(t *testing.T) *remote.Local {
	t.Helper()
	be := newLocal(t)
	repotest.Init(t, be, repo.Options{})
	for i, typ := range []remote.Type{remote.Data, remote.Data, remote.Data, remote.Data, remote.Data, remote.Index, remote.Index, remote.Snapshot} {
		data := bytes.Repeat([]byte(fmt.Sprintf("%s object %d ", typ, i)), 1000*(i+1))
		save(t, be, remote.Handle{Type: typ, Name: hashName(data)}, data)
	}
	return be
}

func save(t *testing.T, be remote.Backend, h remote.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
}

// contents maps every object of be to its bytes.
func contents(t *testing.T, be remote.Backend) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, typ := range remote.AllTypes {
		err := be.List(context.Background(), typ, func(fi remote.ObjectInfo) error {
			b, err := remote.ReadAll(context.Background(), be, fi.Handle)
			out[fi.Handle.String()] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameObjects(t *testing.T, want, got remote.Backend) {
	t.Helper()
	w, g := contents(t, want), contents(t, got)
	for name, b := range w {
		if gb, ok := g[name]; !ok {
			t.Errorf("replica lacks %s", name)
		} else if gb != b {
			t.Errorf("replica's %s differs", name)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("replica has extra %s", name)
		}
	}
}

// recorder notes the order of the objects saved.
type recorder struct {
	remote.Backend
	mu      sync.Mutex
	saved   []remote.Type
	handles []remote.Handle
}

func (r *recorder) Save(ctx context.Context, h remote.Handle, data []byte) error {
	if err := r.Backend.Save(ctx, h, data); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saved = append(r.saved, h.Type)
	r.handles = append(r.handles, h)
	return nil
}

func run(t *testing.T, primary, replica remote.Backend, opts replicate.Options) (replicate.Result, error) {
	t.Helper()
	return replicate.Run(context.Background(), context.Background(), primary, replica, opts)
}

func TestReplicateCopiesWhatIsMissingInOrder(t *testing.T) {
	primary := newPrimary(t)
	replica := &recorder{Backend: newLocal(t)}
	var planned int64
	var copied int64
	res, err := run(t, primary, replica, replicate.Options{
		Workers: 3,
		OnPlan:  func(_ int, n int64) { planned = n },
		OnBytes: func(n int64) { copied += n },
	})
	if err != nil {
		t.Fatal(err)
	}
	sameObjects(t, primary, replica)
	total := len(contents(t, primary))
	if res.ObjectsCopied != total || res.ObjectsPresent != 0 || res.BytesCopied != planned || copied != planned {
		t.Errorf("first run: %+v, planned %d bytes, progress %d, want %d objects", res, planned, copied, total)
	}
	// Keys, then the config, then packs, index, snapshots.
	order := []remote.Type{remote.Keys, remote.Config, remote.Data, remote.Index, remote.Snapshot}
	if !slices.IsSortedFunc(replica.saved, func(a, b remote.Type) int { return slices.Index(order, a) - slices.Index(order, b) }) {
		t.Errorf("objects saved in the order %v", replica.saved)
	}

	res, err = run(t, primary, replica, replicate.Options{})
	if err != nil || res.ObjectsCopied != 0 || res.BytesCopied != 0 || res.ObjectsPresent != total {
		t.Errorf("second run: %+v, %v; want nothing copied, %d present", res, err, total)
	}

	// A new object is all the next run copies; an object pruned at the
	// primary stays at the replica.
	data := []byte("a new snapshot")
	save(t, primary, remote.Handle{Type: remote.Snapshot, Name: hashName(data)}, data)
	var gone remote.Handle
	_ = primary.List(context.Background(), remote.Index, func(fi remote.ObjectInfo) error { gone = fi.Handle; return nil })
	if err := primary.Remove(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	res, err = run(t, primary, replica, replicate.Options{})
	if err != nil || res.ObjectsCopied != 1 || res.BytesCopied != int64(len(data)) || res.ObjectsExtra != 1 {
		t.Errorf("third run: %+v, %v; want 1 object copied, 1 extra", res, err)
	}
}

func TestReplicateRefusesAnotherRepository(t *testing.T) {
	primary := newPrimary(t)
	other := newPrimary(t)
	before := contents(t, other)
	_, err := run(t, primary, other, replicate.Options{})
	if err == nil || !strings.Contains(err.Error(), "holds another repository") {
		t.Fatalf("replicating into another repository: %v", err)
	}
	if after := contents(t, other); len(after) != len(before) {
		t.Errorf("the refused replica went from %d to %d objects", len(before), len(after))
	}
	if _, err := run(t, primary, primary, replicate.Options{}); err == nil {
		t.Error("replicating a repository into itself succeeded")
	}
	if _, err := run(t, newLocal(t), newLocal(t), replicate.Options{}); !errors.Is(err, repo.ErrNoRepository) {
		t.Errorf("replicating from an empty location: %v, want ErrNoRepository", err)
	}
}

// damagePack overwrites the biggest pack of be with other bytes of the
// same size and returns its handle and intact bytes.
func damagePack(t *testing.T, be remote.Backend) (remote.Handle, []byte) {
	t.Helper()
	var h remote.Handle
	var size int64
	_ = be.List(context.Background(), remote.Data, func(fi remote.ObjectInfo) error {
		if fi.Size > size {
			h, size = fi.Handle, fi.Size
		}
		return nil
	})
	intact, err := remote.ReadAll(context.Background(), be, h)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(intact)
	bad[len(bad)/2] ^= 0x80
	save(t, be, h, bad)
	return h, intact
}

func TestReplicateCopiesADamagedPackFromAnotherReplica(t *testing.T) {
	primary := newPrimary(t)
	dr := newLocal(t)
	if _, err := run(t, primary, dr, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	h, intact := damagePack(t, primary)
	center := newLocal(t)
	var warnings []string
	res, err := run(t, primary, center, replicate.Options{Fallbacks: []remote.Backend{dr}, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := remote.ReadAll(context.Background(), center, h); err != nil || !bytes.Equal(got, intact) {
		t.Errorf("the damaged pack was not copied intact: %v", err)
	}
	if res.ObjectsFromReplicas != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], h.String()+" damaged at "+primary.Location()+", copied from "+dr.Location()) {
		t.Errorf("result %+v, warnings %q", res, warnings)
	}
}

// Without an intact copy of a pack, the index and snapshots stay behind:
// the replica must not refer to data it lacks.
func TestReplicateStopsBeforeTheIndexWhenAPackHasNoIntactCopy(t *testing.T) {
	primary := newPrimary(t)
	h, _ := damagePack(t, primary)
	replica := newLocal(t)
	res, err := run(t, primary, replica, replicate.Options{Workers: 1})
	if err == nil || !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), h.Name) || !strings.Contains(err.Error(), "index, snapshots, log were not copied") {
		t.Fatalf("replicating a damaged pack: %v", err)
	}
	got := contents(t, replica)
	for name := range got {
		if strings.HasPrefix(name, "index/") || strings.HasPrefix(name, "snapshots/") {
			t.Errorf("the replica got %s although a pack is missing", name)
		}
	}
	// The other packs were copied all the same.
	if res.ObjectsCopied != 2+4 { // key, config, 4 intact packs
		t.Errorf("copied %d objects, want 6 (%+v)", res.ObjectsCopied, res)
	}
}

// Writes failing at random (a flaky replica, or a run killed mid-way)
// leave a consistent replica, and re-runs finish the job.
func TestReplicateResumesAfterFailures(t *testing.T) {
	primary := newPrimary(t)
	base := newLocal(t)
	flaky := remote.NewFaulty(base, remote.FaultConfig{Seed: 7, FailRate: 0.3})
	failures := 0
	for run := 0; ; run++ {
		// Each run lists six types before it copies anything: at a 30%
		// failure rate, about one run in twelve gets that far.
		if run == 200 {
			t.Fatal("replication did not finish in 200 runs")
		}
		_, err := replicate.Run(context.Background(), context.Background(), primary, flaky, replicate.Options{})
		checkConsistent(t, primary, base)
		if err == nil {
			break
		}
		if !errors.Is(err, remote.ErrInjected) {
			t.Fatal(err)
		}
		failures++
	}
	if failures == 0 {
		t.Error("no run failed: the test proves little")
	}
	sameObjects(t, primary, base)
}

// checkConsistent fails if the replica holds an object of a type while
// lacking any object of a type it may refer to.
func checkConsistent(t *testing.T, primary, replica remote.Backend) {
	t.Helper()
	want, got := contents(t, primary), contents(t, replica)
	complete := true
	for _, typ := range []remote.Type{remote.Keys, remote.Config, remote.Data, remote.Index, remote.Snapshot} {
		prefix := string(typ)
		has, all := false, true
		for name := range want {
			if strings.HasPrefix(name, prefix) {
				_, ok := got[name]
				has = has || ok
				all = all && ok
			}
		}
		if has && !complete {
			t.Fatalf("the replica holds %s objects but lacks some it may refer to", typ)
		}
		complete = complete && all
	}
}

// Index files reach a replica in the order the primary stored them, a
// second at a time, so that prune's superseding index file never arrives
// before the files that replace those it supersedes.
func TestReplicateCopiesIndexFilesInStoredOrder(t *testing.T) {
	dir := t.TempDir()
	primary, err := remote.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	repotest.Init(t, primary, repo.Options{})
	base := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	second := map[string]int{}
	for i := range 12 {
		data := []byte(fmt.Sprintf("index file %d", i))
		name := hashName(data)
		save(t, primary, remote.Handle{Type: remote.Index, Name: name}, data)
		// Stored out of name order, in three seconds; within one second
		// the order does not matter.
		at := (i * 7) % 3
		second[name] = at
		stamp := base.Add(time.Duration(at)*time.Second + time.Duration(i)*time.Millisecond)
		if err := os.Chtimes(filepath.Join(dir, "index", name), stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	replica := &recorder{Backend: newLocal(t)}
	if _, err := run(t, primary, replica, replicate.Options{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	last := -1
	copied := 0
	for _, h := range replica.handles {
		if h.Type != remote.Index {
			continue
		}
		copied++
		if second[h.Name] < last {
			t.Fatalf("index file of second %d copied after one of second %d", second[h.Name], last)
		}
		last = second[h.Name]
	}
	if copied != 12 {
		t.Errorf("%d index files copied, want 12", copied)
	}
}

// slowReplica stores each object after a delay, like a distant server,
// and records the most objects and bytes it was storing at once.
type slowReplica struct {
	remote.Backend
	mu               sync.Mutex
	n, bytes         int
	mostN, mostBytes int
}

func (s *slowReplica) Save(ctx context.Context, h remote.Handle, data []byte) error {
	s.mu.Lock()
	s.n++
	s.bytes += len(data)
	s.mostN, s.mostBytes = max(s.mostN, s.n), max(s.mostBytes, s.bytes)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	s.n--
	s.bytes -= len(data)
	s.mu.Unlock()
	return s.Backend.Save(ctx, h, data)
}

// Small objects are copied many at once, large ones as many as the memory
// bound allows, and the replica ends up the same either way.
func TestCopiesAtOnceFollowTheMemoryBound(t *testing.T) {
	primary := newLocal(t)
	repotest.Init(t, primary, repo.Options{})
	for i := range 40 {
		data := bytes.Repeat([]byte{byte(i)}, 100_000+i)
		save(t, primary, remote.Handle{Type: remote.Data, Name: hashName(data)}, data)
	}

	replica := &slowReplica{Backend: newLocal(t)}
	if _, err := run(t, primary, replica, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	sameObjects(t, primary, replica.Backend)
	if replica.mostN < 8 {
		t.Errorf("at most %d objects of 100 kB stored at once, want more than 4 with the defaults", replica.mostN)
	}

	replica = &slowReplica{Backend: newLocal(t)}
	if _, err := run(t, primary, replica, replicate.Options{Memory: 350_000}); err != nil {
		t.Fatal(err)
	}
	sameObjects(t, primary, replica.Backend)
	if replica.mostBytes > 350_000 || replica.mostN > 3 {
		t.Errorf("%d objects, %d bytes stored at once with a memory bound of 350,000 bytes", replica.mostN, replica.mostBytes)
	}
}

// rangedPrimary records the ranged reads of large objects, and lists one
// object with a wrong size.
type rangedPrimary struct {
	remote.Backend
	mu             sync.Mutex
	inFlight, most int
	ranged         int
	lie            string
}

func (p *rangedPrimary) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	p.mu.Lock()
	if length > 0 {
		p.ranged++
	}
	p.inFlight++
	p.most = max(p.most, p.inFlight)
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.inFlight--; p.mu.Unlock() }()
	time.Sleep(10 * time.Millisecond)
	return p.Backend.Load(ctx, h, offset, length, fn)
}

func (p *rangedPrimary) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	return p.Backend.List(ctx, t, func(fi remote.ObjectInfo) error {
		if fi.Name == p.lie {
			fi.Size -= 1000
		}
		return fn(fi)
	})
}

// A large object is read in several ranges at once; one listed with a
// wrong size is read again whole rather than called damaged.
func TestLargeObjectsAreReadInRanges(t *testing.T) {
	base := newLocal(t)
	repotest.Init(t, base, repo.Options{})
	var names []string
	for i := range 2 {
		data := bytes.Repeat([]byte{byte(i), 1, 2}, (20<<20)/3)
		h := remote.Handle{Type: remote.Data, Name: hashName(data)}
		save(t, base, h, data)
		names = append(names, h.Name)
	}
	primary := &rangedPrimary{Backend: base, lie: names[1]}
	replica := newLocal(t)
	var warned []string
	res, err := run(t, primary, replica, replicate.Options{Workers: 1, Warn: func(s string) { warned = append(warned, s) }})
	if err != nil {
		t.Fatal(err)
	}
	sameObjects(t, base, replica)
	if primary.ranged < 4 || primary.most < 2 {
		t.Errorf("%d ranged reads, at most %d at once: want a 20 MiB object read in ranges at once", primary.ranged, primary.most)
	}
	if res.ObjectsFromReplicas != 0 || len(warned) != 0 {
		t.Errorf("the object listed with a wrong size was taken for damaged: %+v %q", res, warned)
	}
}

// A replica never holds a snapshot log record without its predecessors,
// however often replication fails part-way: verify would take the gap for
// a deleted record.
func TestReplicateCopiesTheLogPredecessorsFirst(t *testing.T) {
	primary := newPrimary(t)
	var prev []string
	for i := range 12 {
		rec := &snaplog.Record{Time: time.Unix(int64(i), 0).UTC(), Prev: prev}
		data, err := snaplog.Encode(rec, func([]byte) string { return hashName([]byte{byte(i)}) })
		if err != nil {
			t.Fatal(err)
		}
		h := remote.Handle{Type: remote.Log, Name: hashName(data)}
		save(t, primary, h, data)
		prev = []string{h.Name}
	}
	base := newLocal(t)
	flaky := remote.NewFaulty(base, remote.FaultConfig{Seed: 11, FailRate: 0.2})
	for run := 0; ; run++ {
		if run == 200 {
			t.Fatal("replication did not finish in 200 runs")
		}
		_, err := replicate.Run(context.Background(), context.Background(), primary, flaky, replicate.Options{Workers: 4})
		records := map[string]*snaplog.Record{}
		for name, data := range contents(t, base) {
			if strings.HasPrefix(name, "log/") {
				rec, perr := snaplog.Parse([]byte(data))
				if perr != nil {
					t.Fatal(perr)
				}
				records[strings.TrimPrefix(name, "log/")] = rec
			}
		}
		for _, f := range snaplog.Check(records, nil) {
			if f.Kind == snaplog.KindRecordMissing {
				t.Fatalf("run %d left a record without its predecessor: %s", run, f.Message)
			}
		}
		if err == nil {
			if len(records) != 12 {
				t.Fatalf("replica has %d records, want 12", len(records))
			}
			return
		}
	}
}

// slowDown is an S3 503 SlowDown answer as the SDK reports its status.
type slowDown struct{}

func (slowDown) Error() string       { return "api error SlowDown: Please reduce your request rate" }
func (slowDown) HTTPStatusCode() int { return 503 }

// busyServer answers 503 SlowDown to every fourth Load and Save, and
// delays the others a little, as a server past its capacity does.
type busyServer struct {
	remote.Backend
	mu    sync.Mutex
	calls int
}

func (b *busyServer) busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	return b.calls%4 == 0
}

func (b *busyServer) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if b.busy() {
		return slowDown{}
	}
	time.Sleep(time.Millisecond)
	return b.Backend.Load(ctx, h, offset, length, fn)
}

func (b *busyServer) Save(ctx context.Context, h remote.Handle, data []byte) error {
	if b.busy() {
		return slowDown{}
	}
	time.Sleep(time.Millisecond)
	return b.Backend.Save(ctx, h, data)
}

// adaptive stacks a backend as the CLI opens an S3 server: the adaptive
// limit over the retries (which here retry at once).
func adaptive(be remote.Backend) *remote.Adaptive {
	retry := remote.NewRetry(be, remote.RetryPolicy{
		MaxAttempts: 20,
		Sleep:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	return remote.NewAdaptive(retry, remote.AdaptivePolicy{})
}

// Both servers answer 503 SlowDown to a quarter of the requests: the
// replica still ends up byte for byte the primary, and both limits fell
// and gave back every slot.
func TestReplicateThroughAdaptiveLimitsUnder503s(t *testing.T) {
	primary := newPrimary(t)
	for i := range 60 {
		data := bytes.Repeat([]byte(fmt.Sprintf("more data %d ", i)), 500+i*50)
		save(t, primary, remote.Handle{Type: remote.Data, Name: hashName(data)}, data)
	}
	base := newLocal(t)
	src, dst := adaptive(&busyServer{Backend: primary}), adaptive(&busyServer{Backend: base})
	res, err := replicate.Run(context.Background(), context.Background(), src, dst, replicate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameObjects(t, primary, base)
	if res.ObjectsCopied < 60 {
		t.Errorf("copied %d objects, want all of them", res.ObjectsCopied)
	}
	for _, a := range []*remote.Adaptive{src, dst} {
		if st := a.Stats(); st.Drops == 0 || st.InFlight != 0 || st.Limit < 2 || st.Limit > 32 {
			t.Errorf("%s: %+v, want drops, nothing in flight, a limit in [2, 32]", a.Location(), st)
		}
	}
}
