// Package backendtest is the conformance suite every remote.Backend must
// pass. Call Run from the backend's tests.
package backendtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/zeebo/blake3"
)

// ManyObjects is how many objects ListMany stores in one type: more than
// one S3 ListObjectsV2 page (1000 keys), so pagination is exercised.
const ManyObjects = 1100

// LargeObject is the size of the object LargeObject round-trips: more than
// the S3 multipart threshold, not a multiple of the part size.
const LargeObject = 36<<20 + 12345

// Run runs the suite. Each subtest runs in parallel with a fresh, empty
// backend from newBackend, which must therefore be safe to call from
// parallel tests (no t.Setenv) and should register its cleanup with t.
func Run(t *testing.T, newBackend func(t *testing.T) remote.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, be remote.Backend)
	}{
		{"SaveLoad", testSaveLoad},
		{"Config", testConfig},
		{"RangeReads", testRangeReads},
		{"Missing", testMissing},
		{"List", testList},
		{"ListMany", testListMany},
		{"Overwrite", testOverwrite},
		{"Remove", testRemove},
		{"ConcurrentDifferentNames", testConcurrentDifferent},
		{"ConcurrentSameName", testConcurrentSame},
		{"Cancel", testCancel},
		{"LargeObject", testLarge},
		{"LoadFnError", testLoadFnError},
		{"ModTime", testModTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newBackend(t)
			t.Cleanup(func() {
				if err := be.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			if be.Location() == "" {
				t.Fatal("Location() is empty")
			}
			tc.fn(t, be)
		})
	}
}

var objectTypes = []remote.Type{remote.Keys, remote.Data, remote.Index, remote.Snapshot}

// randomData returns n reproducible pseudo-random bytes.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}).Read(b)
	return b
}

// object returns data named like a repository object: the hex BLAKE3-256
// of its bytes.
func object(t remote.Type, data []byte) remote.Handle {
	sum := blake3.Sum256(data)
	return remote.Handle{Type: t, Name: hex.EncodeToString(sum[:])}
}

func save(t *testing.T, be remote.Backend, h remote.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, data); err != nil {
		t.Fatalf("save %v: %v", h, err)
	}
}

func mustLoad(t *testing.T, be remote.Backend, h remote.Handle, offset, length int64) []byte {
	t.Helper()
	b, err := remote.ReadRange(context.Background(), be, h, offset, length)
	if err != nil {
		t.Fatalf("load %v at %d+%d: %v", h, offset, length, err)
	}
	return b
}

func checkContent(t *testing.T, be remote.Backend, h remote.Handle, want []byte) {
	t.Helper()
	got := mustLoad(t, be, h, 0, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("load %v: got %d bytes, want %d (contents differ)", h, len(got), len(want))
	}
	fi, err := be.Stat(context.Background(), h)
	if err != nil {
		t.Fatalf("stat %v: %v", h, err)
	}
	if fi.Size != int64(len(want)) || fi.Handle != h {
		t.Fatalf("stat %v: got %+v, want size %d", h, fi, len(want))
	}
}

func checkMissing(t *testing.T, be remote.Backend, h remote.Handle) {
	t.Helper()
	ctx := context.Background()
	_, err := be.Stat(ctx, h)
	if !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("stat missing %v: got %v, want ErrNotFound", h, err)
	} else if !strings.Contains(err.Error(), h.Name) {
		t.Errorf("stat missing %v: error %q does not name the object", h, err)
	}
	called := false
	err = be.Load(ctx, h, 0, 0, func(io.Reader) error { called = true; return nil })
	if !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("load missing %v: got %v, want ErrNotFound", h, err)
	} else if !strings.Contains(err.Error(), h.Name) {
		t.Errorf("load missing %v: error %q does not name the object", h, err)
	}
	if called {
		t.Errorf("load missing %v called fn", h)
	}
}

func list(t *testing.T, be remote.Backend, typ remote.Type) map[string]int64 {
	t.Helper()
	got := make(map[string]int64)
	err := be.List(context.Background(), typ, func(fi remote.ObjectInfo) error {
		if fi.Type != typ {
			return fmt.Errorf("listed %v under type %s", fi.Handle, typ)
		}
		if _, dup := got[fi.Name]; dup {
			return fmt.Errorf("listed %v twice", fi.Handle)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", typ, err)
	}
	return got
}

func testSaveLoad(t *testing.T, be remote.Backend) {
	for i, size := range []int{0, 1, 4096 + 7, 1 << 20} {
		for j, typ := range objectTypes {
			data := randomData(uint64(i*10+j), size)
			h := object(typ, data)
			save(t, be, h, data)
			checkContent(t, be, h, data)
		}
	}
}

func testConfig(t *testing.T, be remote.Backend) {
	h := remote.Handle{Type: remote.Config, Name: "config"}
	checkMissing(t, be, h)
	if got := list(t, be, remote.Config); len(got) != 0 {
		t.Fatalf("list config of empty backend: %v", got)
	}
	data := []byte("courtbak config object")
	save(t, be, h, data)
	checkContent(t, be, h, data)
	if got := list(t, be, remote.Config); len(got) != 1 || got["config"] != int64(len(data)) {
		t.Fatalf("list config: got %v, want config of size %d", got, len(data))
	}
}

func testRangeReads(t *testing.T, be remote.Backend) {
	data := randomData(2, 64<<10+3)
	h := object(remote.Data, data)
	save(t, be, h, data)
	size := int64(len(data))
	for _, r := range []struct{ offset, length int64 }{
		{0, 0}, {0, size}, {10, 0}, {10, 100}, {size - 1, 1}, {size - 1, 0}, {4096, 8192}, {1, size - 1},
	} {
		want := data[r.offset:]
		if r.length > 0 {
			want = want[:r.length]
		}
		if got := mustLoad(t, be, h, r.offset, r.length); !bytes.Equal(got, want) {
			t.Errorf("range %d+%d: got %d bytes, want %d (contents differ)", r.offset, r.length, len(got), len(want))
		}
	}
}

func testMissing(t *testing.T, be remote.Backend) {
	for _, typ := range objectTypes {
		checkMissing(t, be, object(typ, []byte("missing "+string(typ))))
	}
	// A ranged read of a missing object is missing too, not a range error.
	h := object(remote.Data, []byte("missing range"))
	if _, err := remote.ReadRange(context.Background(), be, h, 10, 20); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("range load of missing object: got %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, be remote.Backend) {
	for _, typ := range remote.AllTypes {
		if got := list(t, be, typ); len(got) != 0 {
			t.Fatalf("list %s of empty backend: %v", typ, got)
		}
	}
	want := make(map[remote.Type]map[string]int64)
	for i, typ := range objectTypes {
		want[typ] = make(map[string]int64)
		for j := range 3 {
			data := randomData(uint64(100+i*10+j), 10+j*100+i)
			h := object(typ, data)
			save(t, be, h, data)
			want[typ][h.Name] = int64(len(data))
		}
	}
	save(t, be, remote.Handle{Type: remote.Config, Name: "config"}, []byte("cfg"))
	for _, typ := range objectTypes {
		if got := list(t, be, typ); !equalMaps(got, want[typ]) {
			t.Errorf("list %s: got %v, want %v", typ, got, want[typ])
		}
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// saveMany stores n small distinct objects of type typ with 16 writers.
func saveMany(t *testing.T, be remote.Backend, typ remote.Type, n int) map[string]int64 {
	t.Helper()
	want := make(map[string]int64, n)
	handles := make([]remote.Handle, n)
	datas := make([][]byte, n)
	for i := range n {
		datas[i] = []byte(fmt.Sprintf("object %d of %d", i, n))
		handles[i] = object(typ, datas[i])
		want[handles[i].Name] = int64(len(datas[i]))
	}
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := be.Save(context.Background(), handles[i], datas[i]); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("save: %v", firstErr)
	}
	return want
}

func testListMany(t *testing.T, be remote.Backend) {
	want := saveMany(t, be, remote.Data, ManyObjects)
	if got := list(t, be, remote.Data); !equalMaps(got, want) {
		t.Fatalf("list data: got %d objects, want %d", len(got), len(want))
	}
	if got := list(t, be, remote.Index); len(got) != 0 {
		t.Fatalf("list index: got %v, want nothing", got)
	}
	// An error from fn stops the listing and comes back to the caller.
	stop := errors.New("stop listing")
	calls := 0
	err := be.List(context.Background(), remote.Data, func(remote.ObjectInfo) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Fatalf("list with failing fn: got %v after %d calls, want %v after 10", err, calls, stop)
	}
}

func testOverwrite(t *testing.T, be remote.Backend) {
	h := object(remote.Data, []byte("name"))
	save(t, be, h, randomData(3, 5000))
	second := randomData(4, 3000)
	save(t, be, h, second)
	checkContent(t, be, h, second)
}

func testRemove(t *testing.T, be remote.Backend) {
	ctx := context.Background()
	data := []byte("to be removed")
	for _, h := range []remote.Handle{object(remote.Snapshot, data), object(remote.Data, data), {Type: remote.Config, Name: "config"}} {
		save(t, be, h, data)
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("remove %v: %v", h, err)
		}
		checkMissing(t, be, h)
		if got := list(t, be, h.Type); len(got) != 0 {
			t.Fatalf("list %s after remove: %v", h.Type, got)
		}
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("remove %v again: %v", h, err)
		}
	}
	if err := be.Remove(ctx, object(remote.Index, []byte("never stored"))); err != nil {
		t.Fatalf("remove of a missing object: %v", err)
	}
}

func testConcurrentDifferent(t *testing.T, be remote.Backend) {
	const n = 32
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		datas[i] = randomData(uint64(1000+i), 10000+i)
		wg.Go(func() { errs[i] = be.Save(context.Background(), object(remote.Data, datas[i]), datas[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("save %d: %v", i, errs[i])
		}
		checkContent(t, be, object(remote.Data, datas[i]), datas[i])
	}
}

func testConcurrentSame(t *testing.T, be remote.Backend) {
	const n = 8
	h := object(remote.Data, []byte("shared name"))
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		datas[i] = randomData(uint64(2000+i), 100000+1000*i)
		wg.Go(func() { errs[i] = be.Save(context.Background(), h, datas[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	// The object must be exactly one of the writes, never a mix.
	got := mustLoad(t, be, h, 0, 0)
	for _, d := range datas {
		if bytes.Equal(got, d) {
			checkContent(t, be, h, d)
			return
		}
	}
	t.Fatalf("after concurrent saves the object (%d bytes) matches none of the writes", len(got))
}

func testCancel(t *testing.T, be remote.Backend) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("saved with a cancelled context")
	h := object(remote.Index, data)
	if err := be.Save(cancelled, h, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("save with cancelled context: got %v, want context.Canceled", err)
	}
	checkMissing(t, be, h)

	save(t, be, h, data)
	if err := be.Load(cancelled, h, 0, 0, func(rd io.Reader) error { _, err := io.ReadAll(rd); return err }); err == nil {
		t.Error("load with cancelled context succeeded")
	}
	if err := be.List(cancelled, remote.Index, func(remote.ObjectInfo) error { return nil }); err == nil {
		t.Error("list with cancelled context succeeded")
	}

	// Cancelled mid-way, a large save leaves the whole object or none.
	large := randomData(5, LargeObject)
	hl := object(remote.Data, large)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := be.Save(ctx, hl, large); err == nil {
		checkContent(t, be, hl, large)
	} else {
		checkMissing(t, be, hl)
	}
}

func testLarge(t *testing.T, be remote.Backend) {
	data := randomData(6, LargeObject)
	h := object(remote.Data, data)
	save(t, be, h, data)
	checkContent(t, be, h, data)
	// A range across the 8 MiB part boundary of a multipart upload.
	off := int64(8<<20 - 100)
	if got := mustLoad(t, be, h, off, 300); !bytes.Equal(got, data[off:off+300]) {
		t.Fatal("range across a part boundary differs")
	}
	if got := mustLoad(t, be, h, 16<<20, 0); !bytes.Equal(got, data[16<<20:]) {
		t.Fatal("range to the end of a large object differs")
	}
}

func testLoadFnError(t *testing.T, be remote.Backend) {
	data := randomData(7, 100000)
	h := object(remote.Snapshot, data)
	save(t, be, h, data)
	sentinel := errors.New("fn failed")
	for _, read := range []int{0, 10, 100000} {
		err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
			if _, err := io.ReadFull(rd, make([]byte, read)); err != nil {
				return err
			}
			return sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Errorf("fn error after reading %d bytes: got %v, want %v", read, err, sentinel)
		}
	}
}

// testModTime checks that List and Stat date objects in storage order, to
// the second: replicate copies index files in that order (a prune's
// superseding index file after the files it relies on).
func testModTime(t *testing.T, be remote.Backend) {
	ctx := context.Background()
	first := object(remote.Index, []byte("stored first"))
	save(t, be, first, []byte("stored first"))
	time.Sleep(1100 * time.Millisecond)
	second := object(remote.Index, []byte("stored a second later"))
	save(t, be, second, []byte("stored a second later"))
	times := map[string]time.Time{}
	err := be.List(ctx, remote.Index, func(fi remote.ObjectInfo) error {
		times[fi.Name] = fi.ModTime
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := times[first.Name].Truncate(time.Second), times[second.Name].Truncate(time.Second)
	if a.IsZero() || !b.After(a) {
		t.Errorf("listed times %v and %v: want the second object dated a later second", times[first.Name], times[second.Name])
	}
	if since := time.Since(times[second.Name]); since < -time.Minute || since > time.Hour {
		t.Errorf("an object stored just now is dated %v", times[second.Name])
	}
	fi, err := be.Stat(ctx, second)
	if err != nil || !fi.ModTime.Truncate(time.Second).Equal(b) {
		t.Errorf("stat dates it %v (%v), list %v", fi.ModTime, err, times[second.Name])
	}
}
