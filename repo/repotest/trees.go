package repotest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// WriteTree writes files (slash-separated path → contents) under a new
// temporary directory and returns it.
func WriteTree(tb testing.TB, files map[string]string) string {
	tb.Helper()
	root := tb.TempDir()
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

// CompareRestored compares every regular file under src with its restored
// copy at target+src, byte for byte: a copy with other contents is a test
// error; it returns how many copies are identical and how many are
// missing.
func CompareRestored(tb testing.TB, src, target string) (same, missing int) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, rerr := os.ReadFile(filepath.Join(target, p))
		switch {
		case rerr != nil:
			missing++
		case !bytes.Equal(got, want):
			tb.Errorf("%s restored with other contents", p)
		default:
			same++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return same, missing
}
