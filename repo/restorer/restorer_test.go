package restorer_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/repo/snapshot"
	"github.com/courtbak/courtbak/testdata/gen"
)

func backupTree(t *testing.T) (*repo.Repository, *snapshot.Snapshot, string, string) {
	return restorer.BackupForTest(t, gen.Options{Seed: 21, TotalBytes: 12 << 20, SmallFiles: 30, Copies: 1})
}

func TestRestoreRoundTrip(t *testing.T) {
	r, sn, src, _ := backupTree(t)
	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		n++
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s restored wrong: %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != n {
		t.Errorf("restored %d files, source has %d", res.Files, n)
	}
}

// A damaged pack makes the files that need it fail, and no damaged file is
// ever left at its destination path; the other files are restored.
func TestRestoreNeverLeavesADamagedFile(t *testing.T) {
	r, sn, src, repoDir := backupTree(t)
	packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
	var biggest string
	var size int64
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if err := os.Chmod(biggest, 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(biggest)
	data[size/3] ^= 0x01
	if err := os.WriteFile(biggest, data, 0o600); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), r, sn, restorer.Options{Target: target})
	if !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("restore from a damaged pack: %v", err)
	}
	restored, failedPaths := repotest.CompareRestored(t, src, target)
	if failedPaths == 0 || restored != res.Files {
		t.Errorf("%d files restored (result says %d), %d missing", restored, res.Files, failedPaths)
	}
	_ = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".courtbak-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
}
