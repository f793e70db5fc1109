package checker_test

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

// peakHeap samples the live heap while fn runs and returns the largest
// value above the heap before it.
func peakHeap(fn func()) uint64 {
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

// BenchmarkVerifyMemory verifies a repository of 200,000 blobs in a local
// directory and reports the peak live heap per blob (heap objects sampled
// every 2 ms, less the heap before the run): what verify holds per blob
// at any size. With --read-data too (every pack read and authenticated).
func BenchmarkVerifyMemory(b *testing.B) {
	const n = 200_000
	r, dir := repotest.NewLocal(b, repo.Options{PackSize: 64 << 10})
	manyBlobsFrom(b, r, 0, n)
	t := checker.Target{Location: dir, Backend: r.Backend()}
	for _, readData := range []bool{false, true} {
		b.Run(fmt.Sprintf("read-data=%v", readData), func(b *testing.B) {
			var peak uint64
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					rep, err := checker.Check(context.Background(), t, r, nil, checker.Options{ReadData: readData, Workers: 2})
					if err != nil {
						b.Fatal(err)
					}
					if len(rep.Problems) > 0 || rep.Checked.Files != n/1000 {
						b.Fatalf("verify found %d problems and %d files: %+v", len(rep.Problems), rep.Checked.Files, rep.Problems)
					}
				}))
			}
			b.ReportMetric(float64(peak)/n, "peak-heap-bytes/blob")
		})
	}
}
