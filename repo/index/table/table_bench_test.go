package table

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
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
// and the CPU time of building and of queries (generating the test data
// counts in the build). ns/op is the wall time of one Lookup of a stored
// blob.
func BenchmarkTable1M(b *testing.B) { benchTable(b, 1_000_000) }

func BenchmarkTable10M(b *testing.B) {
	benchTable(b, 10_000_000)
}

func benchTable(b *testing.B, n int) {
	const run = 2_000_000
	rng := rand.New(rand.NewPCG(10, 10))
	dir := b.TempDir()
	var hits []blob.ID
	start := cpuTime()
	var runs []*Table
	for left := n; left > 0; left -= run {
		files := genFiles(rng, min(run, left), 11)
		for _, f := range files {
			hits = append(hits, f.Packs[0].Blobs[0].ID)
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
	build := cpuTime() - start
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
	// CPU time per query (user and system: the pread and the MAC check);
	// on a loaded machine wall time measures the load.
	timeIt := func(f func(blob.ID) bool, ids []blob.ID, want bool) float64 {
		t := cpuTime()
		for _, id := range ids {
			if f(id) != want {
				b.Fatalf("query for %s: got %v", id.Short(), !want)
			}
		}
		return float64((cpuTime() - t).Nanoseconds()) / float64(len(ids))
	}
	hasHit, hasMiss := timeIt(s.Has, hits, true), timeIt(s.Has, misses, false)
	lookupHit := timeIt(func(id blob.ID) bool { _, ok := s.Lookup(id); return ok }, hits, true)
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
	b.ReportMetric(hasHit, "has-hit-cpu-ns")
	b.ReportMetric(hasMiss, "has-miss-cpu-ns")
	b.ReportMetric(lookupHit, "lookup-hit-cpu-ns")
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
