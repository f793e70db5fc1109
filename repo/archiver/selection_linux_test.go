package archiver_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/courtbak/courtbak/repo/archiver"
)

// --one-file-system: /dev/shm is a tmpfs mounted on /dev (devtmpfs) on
// Linux; a backup of /dev that stays on its file system records /dev/shm
// as an empty mount point and nothing below it.
func TestOneFileSystemStopsAtMountPoints(t *testing.T) {
	var dev, shm syscall.Stat_t
	if err := syscall.Stat("/dev", &dev); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/dev/shm", &shm); err != nil || dev.Dev == shm.Dev {
		t.Fatalf("this test needs /dev/shm mounted on /dev as its own file system (stat: %v)", err)
	}
	dir, err := os.MkdirTemp("/dev/shm", "courtbak-ofs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "frame.bin")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := func(oneFS bool) map[string]bool {
		out := map[string]bool{}
		err := archiver.Scan(context.Background(), archiver.Options{Paths: []string{"/dev"}, OneFileSystem: oneFS},
			func(p string, _ fs.FileInfo) error { out[p] = true; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if all := seen(false); !all[file] {
		t.Fatalf("without --one-file-system %s is not listed", file)
	}
	one := seen(true)
	if one[file] || one[dir] {
		t.Errorf("--one-file-system entered /dev/shm")
	}
	if !one["/dev/shm"] {
		t.Errorf("--one-file-system left out the mount point /dev/shm itself")
	}
}
