package restorer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/snapshot"
	"github.com/courtbak/courtbak/testdata/gen"
)

// BackupForTest backs up a generated tree into a new local repository with
// a fast key derivation, for this package's tests inside and outside it.
func BackupForTest(t *testing.T, opts gen.Options) (r *repo.Repository, sn *snapshot.Snapshot, src, repoDir string) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "src")
	if _, err := gen.Generate(src, opts); err != nil {
		t.Fatal(err)
	}
	r, sn, repoDir = BackupPathsForTest(t, src)
	return r, sn, src, repoDir
}

// BackupPathsForTest backs up paths into a new local repository with a
// fast key derivation.
func BackupPathsForTest(t *testing.T, paths ...string) (r *repo.Repository, sn *snapshot.Snapshot, repoDir string) {
	t.Helper()
	ctx := context.Background()
	r, repoDir = repotest.NewLocal(t, repo.Options{})
	res, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: paths, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	return r, res.Snapshot, repoDir
}

// Many large files restored at once through a budget that holds only two
// runs: every file wants a window of runs, and none may wait for memory
// while holding some, or the restore deadlocks. Each file must come out
// byte for byte, through recycled read buffers.
func TestConcurrentFilesShareASmallBudget(t *testing.T) {
	ctx := context.Background()
	r, sn, _, _ := BackupForTest(t, gen.Options{Seed: 5, TotalBytes: 24 << 20, SmallFiles: 8, Copies: 0})
	type file struct {
		path string
		node snapshot.Node
	}
	var files []file
	err := snapshot.Walk(ctx, r, sn.Tree, func(p string, n *snapshot.Node) error {
		if n.Type == snapshot.NodeFile && n.Size > 0 {
			files = append(files, file{p, *n})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const runMax = 1 << 20
	fe := newFetcher(r, 2*runMax, runMax)
	done := make(chan struct{})
	errs := make([]error, len(files))
	outs := make([]bytes.Buffer, len(files))
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = writeContent(ctx, r, fe, files[i].node, &outs[i], nil)
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("restoring files at once deadlocked on the memory budget")
	}
	large := 0
	for i, f := range files {
		if errs[i] != nil {
			t.Fatalf("%s: %v", f.path, errs[i])
		}
		want, err := os.ReadFile(filepath.Join("/", filepath.FromSlash(f.path)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(outs[i].Bytes(), want) {
			t.Fatalf("%s restored wrong", f.path)
		}
		if len(want) > 4*runMax {
			large++
		}
	}
	if large < 2 {
		t.Fatalf("only %d files span several runs; the test needs at least 2", large)
	}
	if free := fe.bud.Free(); free != 2*runMax {
		t.Errorf("budget not given back: %d of %d free", free, 2*runMax)
	}
}
