package prune

import (
	"crypto/rand"
	"runtime"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
)

func TestUsedSetNeverForgetsABlob(t *testing.T) {
	s := usedSet{}
	ids := make([]blob.ID, 1000)
	for i := range ids {
		_, _ = rand.Read(ids[i][:])
		s.add(ids[i])
	}
	for _, id := range ids {
		if !s.has(id) {
			t.Fatalf("blob %s added but not found", id.Short())
		}
	}
	var other blob.ID
	_, _ = rand.Read(other[:])
	if s.has(other) {
		t.Errorf("a random blob is in the set of 1000 others")
	}
}

// BenchmarkUsedSet10M reports the memory of prune's used-blob set at 10
// million blobs (go test -run '^$' -bench UsedSet ./repo/prune).
func BenchmarkUsedSet10M(b *testing.B) {
	const n = 10_000_000
	ids := make([]blob.ID, n)
	for i := range ids {
		_, _ = rand.Read(ids[i][:8])
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := usedSet{}
		for _, id := range ids {
			s.add(id)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/blob")
		runtime.KeepAlive(s)
	}
}
