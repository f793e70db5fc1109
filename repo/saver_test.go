package repo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/repotest"
)

// Data and tree blobs saved at once by many goroutines, through one or two
// uploaders and their pack buffers, with slow uploads and small packs:
// every upload of a tree pack (which returns no buffer) while all data
// buffers are out is a chance for a saver that waits for a buffer under
// its lock to deadlock with the uploader, which takes that lock after each
// upload. Every blob must end up indexed.
func TestSaverBuffersUnderSlowUploads(t *testing.T) {
	for _, uploaders := range []int{1, 2} {
		t.Run(fmt.Sprintf("uploaders=%d", uploaders), func(t *testing.T) { saveUnderSlowUploads(t, uploaders) })
	}
}

func saveUnderSlowUploads(t *testing.T, uploaders int) {
	ctx := context.Background()
	local, err := remote.OpenLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	faulty := remote.NewFaulty(local, remote.FaultConfig{Seed: 1})
	r := repotest.Init(t, faulty, repo.Options{PackSize: 64 << 10})
	faulty.SetFaults(remote.FaultConfig{Seed: 1, DelayRate: 0.5, Delay: time.Millisecond})
	s := r.NewSaver(ctx, uploaders)
	const workers, perWorker = 6, 400
	ids := make([][]blob.ID, workers)
	done := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(w), 7))
				for i := range perWorker {
					typ, size := blob.Data, 8<<10+rnd.IntN(24<<10)
					if i%5 == 0 {
						typ, size = blob.Tree, 200+rnd.IntN(2000)
					}
					data := make([]byte, size)
					for j := range data {
						data[j] = byte(rnd.Uint32())
					}
					id := r.BlobID(data)
					if _, err := s.SaveBlob(typ, id, data); err != nil {
						errs[w] = fmt.Errorf("worker %d blob %d: %w", w, i, err)
						return
					}
					ids[w] = append(ids[w], id)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				done <- err
				return
			}
		}
		done <- s.Flush(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("saving deadlocked")
	}
	for _, list := range ids {
		for _, id := range list {
			if !r.Index().Has(id) {
				t.Fatalf("blob %s saved but not indexed", id.Short())
			}
		}
	}
	if st := s.Stats(); st.PacksWritten < 50 {
		t.Fatalf("only %d packs written: the test exercises little", st.PacksWritten)
	}
}

// A blob saved by many goroutines at once is stored once; tree and data
// blobs end up in packs of their own.
func TestSaveBlobStoresEachBlobOnceAndKeepsTreesApart(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, repo.Options{})
	s := r.NewSaver(ctx, 1)
	data, tree := []byte("a chunk of a recording"), []byte(`{"nodes":null}`+"\n")
	dataID, treeID := r.BlobID(data), r.BlobID(tree)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for range 8 {
		wg.Go(func() {
			for _, b := range []struct {
				t  blob.Type
				id blob.ID
				p  []byte
			}{{blob.Data, dataID, data}, {blob.Tree, treeID, tree}} {
				isNew, err := s.SaveBlob(b.t, b.id, b.p)
				if err != nil {
					t.Error(err)
				}
				if isNew {
					mu.Lock()
					stored++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if stored != 2 || s.Stats().BlobsAdded != 2 || s.Stats().PacksWritten != 2 {
		t.Errorf("%d saves reported new, stats %+v: want each blob stored once, in two packs", stored, s.Stats())
	}
	dl, _ := r.Index().Lookup(dataID)
	tl, ok := r.Index().Lookup(treeID)
	if !ok || dl.Pack == tl.Pack || tl.Type != blob.Tree {
		t.Errorf("data in pack %s, tree in %s (%v)", dl.Pack.Short(), tl.Pack.Short(), ok)
	}
	for _, b := range [][]byte{data, tree} {
		typ := blob.Data
		if &b[0] == &tree[0] {
			typ = blob.Tree
		}
		got, err := r.LoadBlob(ctx, typ, r.BlobID(b))
		if err != nil || string(got) != string(b) {
			t.Errorf("load %s blob: %q, %v", typ, got, err)
		}
	}
}
