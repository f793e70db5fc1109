package index

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// benchRepo makes the packs of a repository of court recordings: mostly
// incompressible media chunks (512 KiB minimum plus an exponential part of
// 1 MiB mean, at most 8 MiB: the chunker's distribution) stored raw, with
// 3% small compressed case files in the same data packs and 0.5% tree blobs
// in tree packs, packs closing at 16 MiB like the saver's. That is about
// 11 blobs per data pack.
type benchRepo struct {
	rng       *rand.Rand
	data, tre []pack.Entry
	dataSize  uint32
	treeSize  uint32
}

const benchPackSize = 16 << 20

// next adds one blob and returns a full pack when one closes.
func (g *benchRepo) next(id blob.ID) (blob.ID, []pack.Entry) {
	e := pack.Entry{ID: id}
	p := g.rng.Float64()
	switch {
	case p < 0.965:
		raw := min(512<<10+int(g.rng.ExpFloat64()*(1<<20)), 8<<20)
		e.RawLength = uint32(raw)
		e.Length = uint32(raw) + sealOverhead
	case p < 0.995:
		e.Compression = pack.CompressionZstd
		e.RawLength = uint32(200 + g.rng.IntN(20<<10))
		e.Length = e.RawLength/3 + sealOverhead
	default:
		e.Type = blob.Tree
		e.Compression = pack.CompressionZstd
		e.RawLength = uint32(500 + g.rng.IntN(64<<10))
		e.Length = e.RawLength/4 + sealOverhead
	}
	list, size := &g.data, &g.dataSize
	if e.Type == blob.Tree {
		list, size = &g.tre, &g.treeSize
	}
	e.Offset = *size
	*list = append(*list, e)
	*size += e.Length
	if *size < benchPackSize {
		return blob.ID{}, nil
	}
	out := *list
	*list, *size = (*list)[len(*list):], 0
	return randID(g.rng), out
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIndex10M loads 10 million blobs and reports the index's heap per
// blob and the cost of queries. ns/op is one Lookup of a stored blob.
func BenchmarkIndex10M(b *testing.B) {
	const n = 10_000_000
	const sampleEvery = 10
	ids := rand.New(rand.NewPCG(10, 10))
	g := &benchRepo{rng: rand.New(rand.NewPCG(11, 11)), data: make([]pack.Entry, 0, 1<<16), tre: make([]pack.Entry, 0, 1<<16)}
	hits := make([]blob.ID, 0, n/sampleEvery)
	misses := make([]blob.ID, n/sampleEvery)
	for i := range misses {
		misses[i] = randID(ids)
	}

	before := heapAlloc()
	start := time.Now()
	x := New()
	packs := 0
	for i := range n {
		id := randID(ids)
		if i%sampleEvery == 0 {
			hits = append(hits, id)
		}
		if pid, es := g.next(id); es != nil {
			x.AddPack(pid, es)
			packs++
		}
	}
	for _, es := range [][]pack.Entry{g.data, g.tre} {
		if len(es) > 0 {
			x.AddPack(randID(g.rng), es)
			packs++
		}
	}
	x.Has(hits[0]) // the first query merges what is pending, as in a backup
	load := time.Since(start)
	after := heapAlloc()
	if x.Len() != n {
		b.Fatalf("Len = %d, want %d", x.Len(), n)
	}
	rand.New(rand.NewPCG(12, 12)).Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })

	timeIt := func(f func(blob.ID) bool, ids []blob.ID, want bool) float64 {
		t := time.Now()
		for _, id := range ids {
			if f(id) != want {
				b.Fatalf("query for %s: got %v", id.Short(), !want)
			}
		}
		return float64(time.Since(t).Nanoseconds()) / float64(len(ids))
	}
	lookup := func(id blob.ID) bool { _, ok := x.Lookup(id); return ok }
	hasHit, hasMiss, lookupMiss := timeIt(x.Has, hits, true), timeIt(x.Has, misses, false), timeIt(lookup, misses, false)

	i := 0
	for b.Loop() {
		if _, ok := x.Lookup(hits[i]); !ok {
			b.Fatal("stored blob not found")
		}
		if i++; i == len(hits) {
			i = 0
		}
	}
	// After the loop: its start deletes metrics reported before.
	b.ReportMetric(float64(after-before)/n, "bytes/blob")
	b.ReportMetric(float64(n)/float64(packs), "blobs/pack")
	b.ReportMetric(float64(load.Nanoseconds())/n, "load-ns/blob")
	b.ReportMetric(hasHit, "has-hit-ns")
	b.ReportMetric(hasMiss, "has-miss-ns")
	b.ReportMetric(lookupMiss, "lookup-miss-ns")
	runtime.KeepAlive(x)
}
