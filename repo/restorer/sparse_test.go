//go:build unix

package restorer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/courtbak/courtbak/repo/restorer"
)

// allocated is the disk space a file takes, from st_blocks (512-byte units).
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// Runs of zeros come back as holes: a sparse file, and a file whose zeros
// were written out, are restored byte-identical and take little more disk
// space than their data; a file that ends in zeros keeps its size.
func TestRestoreWritesZeroRunsAsHoles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mustMkdir(t, src)
	const size = 8 << 20
	data := bytes.Repeat([]byte("recording"), 1000)

	sparse := filepath.Join(src, "sparse.img")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 1<<20+123); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dense := make([]byte, size)
	copy(dense[3<<20+7:], data)
	if err := os.WriteFile(filepath.Join(src, "zeros-written.img"), dense, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "small-zeros"), make([]byte, 3*4096+5), 0o644); err != nil {
		t.Fatal(err)
	}

	r, sn, _ := restorer.BackupPathsForTest(t, src)
	target := t.TempDir()
	if _, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sparse.img", "zeros-written.img", "small-zeros"} {
		want, _ := os.ReadFile(filepath.Join(src, name))
		got := filepath.Join(target, src, name)
		b, err := os.ReadFile(got)
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s restored wrong (%d bytes, want %d): %v", name, len(b), len(want), err)
		}
		// The data, rounded out to blocks, plus some slack for metadata
		// blocks of the file system.
		if a := allocated(t, got); a > int64(len(data))+64<<10 {
			t.Errorf("%s: %d bytes allocated for %d bytes of data in %d", name, a, len(data), len(b))
		}
	}
}
