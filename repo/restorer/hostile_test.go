//go:build unix

package restorer_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/restorer"
)

var (
	oldTime    = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	sourceTime = time.Date(2020, 6, 7, 8, 9, 10, 0, time.UTC)
)

// hostileSource is a source tree like /tmp: a world-writable sticky
// directory holding a file, a symlink and a subdirectory.
func hostileSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	mustMkdir(t, filepath.Join(src, "tmp", "sub"))
	writeFile(t, filepath.Join(src, "tmp", "a.txt"), "restored content")
	if err := os.Symlink("a.txt", filepath.Join(src, "tmp", "link")); err != nil {
		t.Fatal(err)
	}
	setMode(t, filepath.Join(src, "tmp"), 0o777|fs.ModeSticky)
	for _, p := range []string{filepath.Join(src, "tmp", "sub"), filepath.Join(src, "tmp"), src} {
		if err := os.Chtimes(p, sourceTime, sourceTime); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func setMode(t *testing.T, p string, m fs.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

// outsideDir is a directory outside the restore target that a planted
// symlink points to, with a mode and mtime a followed chmod or chtimes
// would change.
func outsideDir(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "outside")
	mustMkdir(t, out)
	setMode(t, out, 0o750)
	if err := os.Chtimes(out, oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkOutsideUntouched(t *testing.T, out string) {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("restore wrote %s outside the target", filepath.Join(out, e.Name()))
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != fs.ModeDir|0o750 {
		t.Errorf("outside directory's mode changed to %v", fi.Mode())
	}
	if !fi.ModTime().Equal(oldTime) {
		t.Errorf("outside directory's mtime changed to %v", fi.ModTime())
	}
}

// A symlink planted in the target where restore must enter a directory is
// never followed, at any depth: restore refuses it, naming its path, and
// nothing outside the target is written or changed.
func TestRestoreRefusesAPlantedDirectorySymlink(t *testing.T) {
	src := hostileSource(t)
	r, sn, _ := restorer.BackupPathsForTest(t, src)
	first := strings.Split(strings.TrimPrefix(src, "/"), "/")[0]
	for name, rel := range map[string]string{
		"first component": first,                     // TARGET/tmp, as for a backup of /tmp/...
		"sticky dir":      filepath.Join(src, "tmp"), // the directory whose mode and mtime restore sets
		"subdirectory":    filepath.Join(src, "tmp", "sub"),
	} {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			link := filepath.Join(target, rel)
			mustMkdir(t, filepath.Dir(link))
			out := outsideDir(t)
			if err := os.Symlink(out, link); err != nil {
				t.Fatal(err)
			}
			_, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target})
			if !errors.Is(err, restorer.ErrSymlinkInTarget) || !strings.Contains(err.Error(), link) {
				t.Errorf("restore through a planted symlink %s: %v", link, err)
			}
			checkOutsideUntouched(t, out)
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the planted symlink was removed or replaced: %v", err)
			}
		})
	}
}

// A symlink planted where a file or a symlink is to be restored is
// replaced, never written through.
func TestRestoreReplacesAPlantedFileSymlink(t *testing.T) {
	src := hostileSource(t)
	r, sn, _ := restorer.BackupPathsForTest(t, src)
	target := t.TempDir()
	dir := filepath.Join(target, src, "tmp")
	mustMkdir(t, dir)
	out := outsideDir(t)
	victim := filepath.Join(out, "victim")
	writeFile(t, victim, "victim")
	if err := os.Chtimes(victim, oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(out, oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.txt", "link"} {
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "restored content" {
		t.Errorf("a.txt: %q, %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "a.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a.txt is not a regular file: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "a.txt" {
		t.Errorf("link -> %q, %v", l, err)
	}
	fi, err := os.Stat(victim)
	if b, _ := os.ReadFile(victim); string(b) != "victim" || err != nil || fi.Mode() != 0o644 || !fi.ModTime().Equal(oldTime) {
		t.Errorf("the symlink's target was changed: %q %v", b, fi.Mode())
	}
}

// Directories keep their setuid, setgid and sticky bits: a restored /tmp
// is 1777 again.
func TestRestoreDirectorySpecialBits(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	modes := map[string]fs.FileMode{
		"tmp":    0o777 | fs.ModeSticky,
		"shared": 0o770 | fs.ModeSetgid,
		"odd":    0o755 | fs.ModeSetuid,
		"plain":  0o705,
	}
	for name, m := range modes {
		p := filepath.Join(src, name)
		mustMkdir(t, p)
		setMode(t, p, m)
	}
	r, sn, _ := restorer.BackupPathsForTest(t, src)
	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range modes {
		fi, err := os.Lstat(filepath.Join(target, src, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != fs.ModeDir|m {
			t.Errorf("%s restored as %v, want %v", name, fi.Mode(), fs.ModeDir|m)
		}
	}
	if res.Dirs < len(modes) {
		t.Errorf("%d directories restored", res.Dirs)
	}
}
