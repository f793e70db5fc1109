//go:build unix

package restorer_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/courtbak/courtbak/repo/restorer"
)

// Hard links come back as hard links within the restored set, in one
// directory and across directories, with their content and the
// directories' mtimes; an --include that leaves out the first link still
// links the others.
func TestRestoreKeepsHardLinks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mustMkdir(t, filepath.Join(src, "a"))
	mustMkdir(t, filepath.Join(src, "b"))
	first := filepath.Join(src, "a", "1-original.mp4")
	writeFile(t, first, "one recording, three names")
	links := []string{filepath.Join(src, "a", "2-same-dir.mp4"), filepath.Join(src, "b", "3-other-dir.mp4")}
	for _, l := range links {
		if err := os.Link(first, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Join(src, "a"), filepath.Join(src, "b")} {
		if err := os.Chtimes(d, sourceTime, sourceTime); err != nil {
			t.Fatal(err)
		}
	}
	r, sn, _ := restorer.BackupPathsForTest(t, src)

	target := t.TempDir()
	if _, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	fi0, err := os.Stat(filepath.Join(target, first))
	if err != nil {
		t.Fatal(err)
	}
	if n := fi0.Sys().(*syscall.Stat_t).Nlink; n != 3 {
		t.Errorf("restored file has %d links, want 3", n)
	}
	for _, l := range links {
		fi, err := os.Stat(filepath.Join(target, l))
		if err != nil || !os.SameFile(fi0, fi) {
			t.Errorf("%s is not a hard link of the first name: %v", l, err)
		}
		if b, _ := os.ReadFile(filepath.Join(target, l)); string(b) != "one recording, three names" {
			t.Errorf("%s: %q", l, b)
		}
	}
	checkDirMeta(t, src, target, []string{"a", "b"})

	partial := t.TempDir()
	if _, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: partial, Includes: []string{"*-dir.mp4"}}); err != nil {
		t.Fatal(err)
	}
	fa, errA := os.Stat(filepath.Join(partial, links[0]))
	fb, errB := os.Stat(filepath.Join(partial, links[1]))
	if errA != nil || errB != nil || !os.SameFile(fa, fb) {
		t.Errorf("the two included names are not linked: %v %v", errA, errB)
	}
	if _, err := os.Lstat(filepath.Join(partial, first)); err == nil {
		t.Error("a name left out by --include was restored")
	}
}
