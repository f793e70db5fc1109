package main_test

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// init --chunk-size sets the repository's average chunk size: a file cut
// with a 64 KiB average has many more blobs than with the 1 MiB default,
// and restores byte for byte.
func TestInitChunkSize(t *testing.T) {
	blobs := func(args ...string) int {
		e := newLocalEnv(t)
		e.must(append([]string{"init", "--kdf-memory", "8192", "--kdf-time", "1"}, args...)...)
		src := t.TempDir()
		b := make([]byte, 4<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(src, "hearing.mp4"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		e.backup(src)
		target := t.TempDir()
		e.must("restore", "latest", "--target", target)
		compareTrees(t, src, restoredPath(target, src))
		var st struct {
			DataBlobs int `json:"data_blobs"`
		}
		if err := json.Unmarshal([]byte(e.must("stats", "--json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		return st.DataBlobs
	}
	small, def := blobs("--chunk-size", "64KiB"), blobs()
	if def > 8 || small < 4*def || small < 20 {
		t.Errorf("4 MiB file: %d blobs with --chunk-size 64KiB, %d with the default", small, def)
	}

	e := newLocalEnv(t)
	for _, bad := range []string{"3MiB", "32MiB", "512", "4 parsecs", "-1"} {
		r := e.run("init", "--chunk-size", bad)
		if r.code != 1 || !strings.Contains(r.stderr, "--chunk-size") {
			t.Errorf("init --chunk-size %s: exit %d, stderr %q", bad, r.code, r.stderr)
		}
	}
	if r := e.run("snapshots"); r.code != 10 {
		t.Errorf("a refused init created a repository: snapshots exit %d", r.code)
	}
}
