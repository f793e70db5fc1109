package checker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/checker"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// manyBlobPlain is the plaintext of blob i of manyBlobsFrom.
func manyBlobPlain(i int) []byte {
	return binary.LittleEndian.AppendUint64([]byte("manyblob"), uint64(i))
}

// manyBlobsFrom stores n tiny data blobs, from blob number from on, in
// files of 1000 blobs and directories of 100 files, under one snapshot.
// With packs of 64 KiB a pack holds a few hundred blobs, like bench/scale.
func manyBlobsFrom(tb testing.TB, r *repo.Repository, from, n int) {
	tb.Helper()
	ctx := context.Background()
	s := r.NewSaver(ctx, 2)
	save := func(t blob.Type, b []byte) blob.ID {
		id := r.BlobID(b)
		if _, err := s.SaveBlob(t, id, b); err != nil {
			tb.Fatal(err)
		}
		return id
	}
	saveTree := func(t *snapshot.Tree) blob.ID {
		b, err := snapshot.EncodeTree(t)
		if err != nil {
			tb.Fatal(err)
		}
		return save(blob.Tree, b)
	}
	dirNode := func(name string, id blob.ID) snapshot.Node {
		return snapshot.Node{Name: name, Type: snapshot.NodeDir, Mode: fs.ModeDir | 0o755, Subtree: &id}
	}
	var top, dir snapshot.Tree
	flushDir := func() {
		if len(dir.Nodes) > 0 {
			top.Nodes = append(top.Nodes, dirNode(fmt.Sprintf("d%06d", len(top.Nodes)), saveTree(&dir)))
			dir = snapshot.Tree{}
		}
	}
	for i := from; i < from+n; {
		node := snapshot.Node{Name: fmt.Sprintf("f%04d.bin", len(dir.Nodes)), Type: snapshot.NodeFile, Mode: 0o644}
		for end := min(from+n, i+1000); i < end; i++ {
			pt := manyBlobPlain(i)
			node.Content = append(node.Content, save(blob.Data, pt))
			node.Size += uint64(len(pt))
		}
		sum := blob.ID{1}
		node.BLAKE3 = &sum
		if dir.Nodes = append(dir.Nodes, node); len(dir.Nodes) == 100 {
			flushDir()
		}
	}
	flushDir()
	root := saveTree(&snapshot.Tree{Nodes: []snapshot.Node{dirNode("scale", saveTree(&top))}})
	if err := s.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(from) * time.Second)
	if err := r.SaveSnapshot(ctx, &snapshot.Snapshot{Time: when, Hostname: "h", Paths: []string{"/scale"}, Tree: root}); err != nil {
		tb.Fatal(err)
	}
}

// peakHeap samples the heap while fn runs and returns the largest value
// above the heap before it. The collector runs at 10% growth meanwhile,
// so that the heap sampled is what fn holds, not garbage waiting for a
// collection that the default setting would let grow as large again.
func peakHeap(fn func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var (
		peak uint64
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

// BenchmarkVerifyMemory verifies two repositories in local directories,
// of 100,000 and 400,000 blobs, and reports the peak live heap of each
// run (heap objects sampled every 2 ms at 10% GC growth, less the heap
// before it) and what
// the 300,000 more blobs added per blob: what verify holds per blob, apart
// from its fixed buffers (a batch of index files, a run of the temporary
// index, the tree cache). Those are lowered to one index file, 65,536
// records and 65,536 tree ids, so that these repositories exceed them as
// a court's exceeds the defaults. Structure only (verify's default), and
// with --read-data too.
func BenchmarkVerifyMemory(b *testing.B) {
	defer checker.SetStreamLimits(1, 1<<16, 1<<16)()
	const small, large = 100_000, 400_000
	var targets []checker.Target
	var repos []*repo.Repository
	for _, n := range []int{small, large} {
		r, dir := repotest.NewLocal(b, repo.Options{PackSize: 64 << 10})
		manyBlobsFrom(b, r, 0, n)
		r.ResetIndex() // what the backups left in memory is not verify's
		targets = append(targets, checker.Target{Location: dir, Backend: r.Backend()})
		repos = append(repos, r)
	}
	verify := func(b *testing.B, i int, readData bool) uint64 {
		return peakHeap(func() {
			rep, err := checker.Check(context.Background(), targets[i], repos[i], nil, checker.Options{ReadData: readData, Workers: 2})
			if err != nil {
				b.Fatal(err)
			}
			if files := int64([]int{small, large}[i] / 1000); len(rep.Problems) > 0 || rep.Checked.Files != files {
				b.Fatalf("verify found %d problems and %d files, want none and %d", len(rep.Problems), rep.Checked.Files, files)
			}
		})
	}
	for _, readData := range []bool{false, true} {
		b.Run(fmt.Sprintf("read-data=%v", readData), func(b *testing.B) {
			var peak [2]uint64
			for b.Loop() {
				for i := range peak {
					peak[i] = max(peak[i], verify(b, i, readData))
				}
			}
			b.ReportMetric(float64(peak[0])/(1<<20), "peak-heap-MiB@1e5")
			b.ReportMetric(float64(peak[1])/(1<<20), "peak-heap-MiB@4e5")
			b.ReportMetric((float64(peak[1])-float64(peak[0]))/(large-small), "heap-bytes/added-blob")
		})
	}
}
