//go:build unix

package restorer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// dirsSource is a tree of directories with modes and mtimes of their own,
// one of them read-only, holding random files.
func dirsSource(t *testing.T) (string, []string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	dirs := []string{"ro", "a", "a/b", "a/b/c", "shared"}
	rnd := rand.New(rand.NewPCG(7, 7))
	for i, d := range dirs {
		p := filepath.Join(src, d)
		mustMkdir(t, p)
		data := make([]byte, 1<<20+i*4099)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		if err := os.WriteFile(filepath.Join(p, "f.bin"), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	modes := map[string]fs.FileMode{"ro": 0o555, "a": 0o750, "a/b": 0o711, "a/b/c": 0o700, "shared": 0o770 | fs.ModeSetgid}
	for i := len(dirs) - 1; i >= 0; i-- {
		p := filepath.Join(src, dirs[i])
		setMode(t, p, modes[dirs[i]])
		if err := os.Chtimes(p, sourceTime, sourceTime); err != nil {
			t.Fatal(err)
		}
	}
	return src, dirs
}

// checkDirMeta fails unless each directory that exists under target has
// its recorded mode and mtime; it returns how many exist.
func checkDirMeta(t *testing.T, src, target string, dirs []string) int {
	t.Helper()
	n := 0
	for _, d := range dirs {
		want, err := os.Lstat(filepath.Join(src, d))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Lstat(filepath.Join(target, src, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if got.Mode() != want.Mode() || !got.ModTime().Equal(want.ModTime()) {
			t.Errorf("directory %s: %v %v, want %v %v", d, got.Mode(), got.ModTime(), want.Mode(), want.ModTime())
		}
	}
	return n
}

// A restore that stops early, cancelled or because a pack cannot be read,
// still gives every directory it opened its recorded mode and mtime (none
// is left at 0700), and running it again into the same target finishes
// the job: contents, read-only directory included, and metadata.
func TestInterruptedRestoreLeavesFinishedDirectoriesAndARerunCompletes(t *testing.T) {
	ctx := context.Background()
	src, dirs := dirsSource(t)
	_, sn, repoDir := restorer.BackupPathsForTest(t, src)
	local, err := remote.OpenLocal(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	faulty := remote.NewFaulty(local, remote.FaultConfig{})
	r, err := repo.Open(ctx, faulty, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()

	// Interrupted: cancelled once the first bytes are written.
	cctx, cancel := context.WithCancel(ctx)
	_, err = restorer.Restore(cctx, r, sn, restorer.Options{Target: target, Workers: 1, OnBytes: func(int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: %v", err)
	}
	if checkDirMeta(t, src, target, dirs) == 0 {
		t.Error("the cancelled restore created no directory; the test needs one")
	}

	// Failing: every pack of file contents (not of trees) is unreadable.
	treePacks, dataPacks := map[blob.ID]bool{}, map[blob.ID]bool{}
	if loc, ok := r.Index().Lookup(sn.Tree); ok {
		treePacks[loc.Pack] = true
	}
	err = snapshot.Walk(ctx, r, sn.Tree, func(_ string, n *snapshot.Node) error {
		ids, packs := n.Content, dataPacks
		if n.Subtree != nil {
			ids, packs = []blob.ID{*n.Subtree}, treePacks
		}
		for _, id := range ids {
			loc, ok := r.Index().Lookup(id)
			if !ok {
				return fmt.Errorf("blob %s not indexed", id)
			}
			packs[loc.Pack] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range dataPacks {
		if treePacks[id] {
			t.Fatalf("pack %s holds trees and file contents", id)
		}
		faulty.FailHandle(remote.Handle{Type: remote.Data, Name: id.String()}, errors.New("disk failed"))
	}
	if _, err := restorer.Restore(ctx, r, sn, restorer.Options{Target: target}); err == nil {
		t.Fatal("a restore without its packs succeeded")
	}
	if n := checkDirMeta(t, src, target, dirs); n != len(dirs) {
		t.Errorf("%d of %d directories restored", n, len(dirs))
	}

	// Healthy again: the rerun completes everything.
	healthy, err := repo.Open(ctx, local, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := healthy.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := restorer.Restore(ctx, healthy, sn, restorer.Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != len(dirs) {
		t.Errorf("rerun restored %d files, want %d", res.Files, len(dirs))
	}
	checkDirMeta(t, src, target, dirs)
	for _, d := range dirs {
		want, _ := os.ReadFile(filepath.Join(src, d, "f.bin"))
		got, err := os.ReadFile(filepath.Join(target, src, d, "f.bin"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/f.bin restored wrong: %v", d, err)
		}
	}
}
