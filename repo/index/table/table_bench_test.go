package table

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/internal/cputime"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkTable10M builds the tables of 10 million blobs the way a fresh
// host does (runs of 2 million, merged into one) and reports the heap and
// disk per blob once they are open, the time to open them (a warm start),
// the CPU time of building (generating the test data counts in it), and
// the CPU time and blocks read per query: single queries, sorted batches
// of 1000 (a recording's blobs), and one batch of all queries. ns/op is
// the wall time of one Lookup of a stored blob.
func BenchmarkTable1M(b *testing.B) { benchTable(b, 1_000_000) }

// BenchmarkTable5K is a table the size of bench/run.sh's 3 GiB repository
// (about 4,000 blobs): its blocks all fit in a table's caches.
func BenchmarkTable5K(b *testing.B) { benchTable(b, 5_000) }

func BenchmarkTable10M(b *testing.B) {
	benchTable(b, 10_000_000)
}

func benchTable(b *testing.B, n int) {
	const run = 2_000_000
	rng := rand.New(rand.NewPCG(10, 10))
	dir := b.TempDir()
	var hits []blob.ID
	start := cputime.Process()
	var runs []*Table
	for left := n; left > 0; left -= run {
		files := genFiles(rng, min(run, left), 11)
		for _, f := range files {
			for _, p := range f.Packs {
				hits = append(hits, p.Blobs[0].ID)
			}
		}
		in := buildB(b, dir, files)
		t, err := Open(filepath.Join(dir, in.Name), testKey, in.Nonce)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, t)
	}
	name, nonce, err := Merge(dir, testKey, runs)
	if err != nil {
		b.Fatal(err)
	}
	build := cputime.Process() - start
	for _, t := range runs {
		_ = t.Close()
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}

	before := heapAlloc()
	openStart := time.Now()
	s, err := OpenSet(dir, testKey, []Info{{Name: name, Nonce: nonce}}, func(err error) { b.Fatal(err) })
	if err != nil {
		b.Fatal(err)
	}
	open := time.Since(openStart)
	after := heapAlloc()
	if s.Len() != n {
		b.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	misses := make([]blob.ID, 10000)
	for i := range misses {
		misses[i] = randID(rng)
	}
	rng.Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })
	// CPU time (user and system: the preads and the MAC checks) and blocks
	// read from the file per query, each measured with empty caches; on a
	// loaded machine wall time measures the load, and blocks read do not
	// depend on it at all.
	fresh := func() {
		s.Close()
		if s, err = OpenSet(dir, testKey, []Info{{Name: name, Nonce: nonce}}, func(err error) { b.Fatal(err) }); err != nil {
			b.Fatal(err)
		}
	}
	type metric struct {
		v    float64
		unit string
	}
	var metrics []metric // reported after the loop, which resets them
	measure := func(unit string, queries int, f func()) {
		fresh()
		t, r0 := cputime.Process(), s.tables[0].reads.Load()
		f()
		metrics = append(metrics,
			metric{float64((cputime.Process() - t).Nanoseconds()) / float64(queries), unit + "-cpu-ns"},
			metric{float64(s.tables[0].reads.Load()-r0) / float64(queries), unit + "-blocks"})
	}
	single := func(f func(blob.ID) bool, ids []blob.ID, want bool) func() {
		return func() {
			for _, id := range ids {
				if f(id) != want {
					b.Fatalf("query for %s: got %v", id.Short(), !want)
				}
			}
		}
	}
	measure("has-hit", len(hits), single(func(id blob.ID) bool { return s.Has(id) }, hits, true))
	measure("has-miss", len(misses), single(func(id blob.ID) bool { return s.Has(id) }, misses, false))
	measure("lookup-hit", len(hits), single(func(id blob.ID) bool { _, ok := s.Lookup(id); return ok }, hits, true))
	// Batches of 1000 stored blobs, the blobs of a 1 GiB recording (blob
	// ids are hashes: a file's blobs are spread over the whole table).
	batches := func(f func([]blob.ID)) func() {
		return func() {
			for i := 0; i < len(hits); i += 1000 {
				f(hits[i:min(i+1000, len(hits))])
			}
		}
	}
	measure("missing-1000", len(hits), batches(func(ids []blob.ID) {
		if len(s.Missing(ids)) != 0 {
			b.Fatal("a stored blob is missing")
		}
	}))
	measure("lookupmany-1000", len(hits), batches(func(ids []blob.ID) {
		locs, found := make([]index.Location, len(ids)), make([]bool, len(ids))
		s.LookupMany(ids, locs, found)
		if slices.Contains(found, false) {
			b.Fatal("a stored blob is not found")
		}
	}))
	// One batch of every sampled blob: the unchanged re-backup of a whole
	// repository, if it asked in one batch.
	measure("missing-all", len(hits), func() {
		if len(s.Missing(hits)) != 0 {
			b.Fatal("a stored blob is missing")
		}
	})
	fresh()
	i := 0
	for b.Loop() {
		if _, ok := s.Lookup(hits[i]); !ok {
			b.Fatal("stored blob not found")
		}
		if i++; i == len(hits) {
			i = 0
		}
	}
	b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "heap-bytes/blob")
	b.ReportMetric(float64(fi.Size())/float64(n), "disk-bytes/blob")
	b.ReportMetric(float64(build.Nanoseconds())/float64(n), "build-cpu-ns/blob")
	b.ReportMetric(float64(open.Microseconds()), "open-µs")
	for _, m := range metrics {
		b.ReportMetric(m.v, m.unit)
	}
	s.Close()
}

func buildB(b *testing.B, dir string, files []*index.File) Info {
	packs, recs := FromFiles(files)
	name, nonce, err := Build(dir, testKey, packs, recs)
	if err != nil {
		b.Fatal(err)
	}
	return Info{Name: name, Nonce: nonce}
}
