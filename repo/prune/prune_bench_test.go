package prune_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/prune"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// BenchmarkPruneMemory prunes a repository of many tiny blobs (as
// bench/scale writes them: 1000 to a file, 64 KiB packs, four snapshots of
// their own blobs, two of them forgotten) with no grace, and reports the
// peak heap during the prune above what it was before, per blob.
// The index tables of the cache directory are built first, as a host's
// backups keep them (building them from nothing costs up to 56 bytes a
// blob, at most 2^20 blobs at a time: repo/indextables.go). Comparing the
// two sizes gives what each further blob costs:
//
//	go test -run '^$' -bench PruneMemory -benchtime 1x ./repo/prune
func BenchmarkPruneMemory(b *testing.B) {
	for _, n := range []int{1_000_000, 3_000_000} {
		b.Run(fmt.Sprintf("blobs=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				dir, cache := scaleRepo(b, n)
				ctx := context.Background()
				be, err := remote.OpenLocal(dir)
				if err != nil {
					b.Fatal(err)
				}
				r, err := repo.Open(ctx, be, []byte("pw"), repo.Options{CacheDir: cache, PackSize: 64 << 10})
				if err != nil {
					b.Fatal(err)
				}
				if err := r.LoadIndex(ctx); err != nil {
					b.Fatal(err)
				}
				if r, err = repo.Open(ctx, be, []byte("pw"), repo.Options{CacheDir: cache, PackSize: 64 << 10}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				inuse, live := peakHeap(func() {
					res, err := prune.Run(ctx, r, prune.Options{Grace: 0})
					if err != nil {
						b.Fatal(err)
					}
					if res.Swept == nil || res.Swept.PacksDeleted == 0 {
						b.Fatalf("prune deleted nothing: %+v", res)
					}
				})
				b.ReportMetric(float64(inuse)/float64(n), "peak-heap-B/blob")
				b.ReportMetric(float64(live)/float64(n), "peak-live-B/blob")
				b.ReportMetric(float64(inuse)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(live)/(1<<20), "peak-live-MiB")
			}
		})
	}
}

// peakHeap runs f and returns the most heap in use while it ran, and the
// most heap found live by a garbage collection (which does not depend on
// how much garbage waits for the next one), both above their values
// before, sampled every 5 ms.
func peakHeap(f func()) (inuse, live uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() (uint64, uint64) {
		metrics.Read(sample)
		return sample[0].Value.Uint64(), sample[1].Value.Uint64()
	}
	runtime.GC()
	baseInuse, baseLive := read()
	peakInuse, peakLive := baseInuse, baseLive
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			i, l := read()
			peakInuse, peakLive = max(peakInuse, i), max(peakLive, l)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	f()
	runtime.GC() // the live heap at the end counts too
	close(done)
	wg.Wait()
	return peakInuse - baseInuse, peakLive - baseLive
}

// scaleRepo writes a repository of n data blobs of 16 bytes in four
// snapshots, forgets the first two, and returns its directory and a
// cache directory.
func scaleRepo(b *testing.B, n int) (dir, cache string) {
	b.Helper()
	ctx := context.Background()
	cache = b.TempDir()
	r, dir := repotest.NewLocal(b, repo.Options{CacheDir: cache, PackSize: 64 << 10})
	const snaps, perFile = 4, 1000
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dirNode := func(name string, id blob.ID) snapshot.Node {
		return snapshot.Node{Name: name, Type: snapshot.NodeDir, Mode: fs.ModeDir | 0o755, ModTime: when, Subtree: &id}
	}
	var forget []blob.ID
	for s := range snaps {
		saver := r.NewSaver(ctx, 2)
		saveTree := func(t *snapshot.Tree) blob.ID {
			data, err := snapshot.EncodeTree(t)
			if err != nil {
				b.Fatal(err)
			}
			id := r.BlobID(data)
			if _, err := saver.SaveBlob(blob.Tree, id, data); err != nil {
				b.Fatal(err)
			}
			return id
		}
		var top, sub snapshot.Tree
		for i := n * s / snaps; i < n*(s+1)/snaps; {
			node := snapshot.Node{Name: fmt.Sprintf("f%04d", len(sub.Nodes)), Type: snapshot.NodeFile, Mode: 0o644, ModTime: when}
			h := blake3.New()
			for end := min(n*(s+1)/snaps, i+perFile); i < end; i++ {
				pt := binary.LittleEndian.AppendUint64([]byte("scale-b-"), uint64(i))
				id := r.BlobID(pt)
				if _, err := saver.SaveBlob(blob.Data, id, pt); err != nil {
					b.Fatal(err)
				}
				node.Content = append(node.Content, id)
				node.Size += uint64(len(pt))
				_, _ = h.Write(pt)
			}
			sum := blob.ID(h.Sum(nil))
			node.BLAKE3 = &sum
			sub.Nodes = append(sub.Nodes, node)
			if len(sub.Nodes) == 100 {
				top.Nodes = append(top.Nodes, dirNode(fmt.Sprintf("d%04d", len(top.Nodes)), saveTree(&sub)))
				sub = snapshot.Tree{}
			}
		}
		if len(sub.Nodes) > 0 {
			top.Nodes = append(top.Nodes, dirNode(fmt.Sprintf("d%04d", len(top.Nodes)), saveTree(&sub)))
		}
		root := saveTree(&snapshot.Tree{Nodes: []snapshot.Node{dirNode(fmt.Sprintf("part%d", s), saveTree(&top))}})
		if err := saver.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		sn := &snapshot.Snapshot{Time: when.Add(time.Duration(s) * time.Hour), Hostname: "scale", Paths: []string{"/scale"}, Tree: root}
		if err := r.SaveSnapshot(ctx, sn); err != nil {
			b.Fatal(err)
		}
		if s < snaps/2 {
			forget = append(forget, sn.ID)
		}
		r.ResetIndex()
	}
	for _, id := range forget {
		if err := r.RemoveSnapshot(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	return dir, cache
}
