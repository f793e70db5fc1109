package main_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/repo/repotest"
)

// lsFiles returns the files of the latest snapshot below root.
func lsFiles(t *testing.T, e *env, root string) map[string]bool {
	t.Helper()
	r := e.must("ls", "--json", "latest")
	out := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var n struct{ Path, Type string }
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		if n.Type == "file" && strings.HasPrefix(n.Path, root+"/") {
			out[strings.TrimPrefix(n.Path, root+"/")] = true
		}
	}
	return out
}

// Every selection flag of backup, through the binary.
func TestBackupFileSelection(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	root := repotest.WriteTree(t, map[string]string{
		"room1/hearing.mp4":         "v",
		"room1/hearing.MP4.part":    "p",
		"room1/deep/a/b/thumb.jpg":  "j",
		"room2/notes.txt":           "n",
		"room2/.cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55",
		"room2/.cache/frames.bin":   "f",
		"room3/.nobackup":           "",
		"room3/draft.mp4":           "d",
		"room4/hearing.mp4":         "v4",
	})
	excl := filepath.Join(t.TempDir(), "excludes")
	if err := os.WriteFile(excl, []byte("# thumbnails anywhere\n**/thumb.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "files")
	if err := os.WriteFile(list, []byte("# courtrooms 1 to 3\n"+root+"/room[123]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup("--files-from", list, "--exclude-file", excl, "--iexclude", "*.PART", "--exclude-caches", "--exclude-if-present", ".nobackup", "--one-file-system")
	got := lsFiles(t, e, root)
	want := map[string]bool{"room1/hearing.mp4": true, "room2/notes.txt": true, "room2/.cache/CACHEDIR.TAG": true, "room3/.nobackup": true}
	if !maps.Equal(got, want) {
		t.Errorf("snapshot holds %v\nwant %v", got, want)
	}
	// The old --exclude forms still work as before.
	e.backup("--exclude", "*.part", "--exclude", root+"/room2", "--exclude", root+"/*/deep", root)
	got = lsFiles(t, e, root)
	want = map[string]bool{"room1/hearing.mp4": true, "room3/.nobackup": true, "room3/draft.mp4": true, "room4/hearing.mp4": true}
	if !maps.Equal(got, want) {
		t.Errorf("snapshot holds %v\nwant %v", got, want)
	}
	for _, args := range [][]string{
		{"backup", "--exclude", "[", root},
		{"backup", "--files-from", filepath.Join(t.TempDir(), "missing")},
		{"backup", "--exclude-file", filepath.Join(t.TempDir(), "missing"), root},
		{"backup"},
	} {
		if r := e.run(args...); r.code != 1 {
			t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
		}
	}
}

// backup --dry-run lists what a backup would store and writes nothing:
// the repository's objects are exactly the same before and after.
func TestBackupDryRunWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv func(*testing.T) *env) {
		e := newEnv(t)
		e.init()
		root := repotest.WriteTree(t, map[string]string{"a/one.mp4": "11111", "a/two.tmp": "2", "b/three.txt": "333"})
		before := storedObjects(t, e)
		r := e.must("backup", "--dry-run", "--exclude", "*.tmp", root)
		after := storedObjects(t, e)
		if len(after) != len(before) {
			t.Errorf("dry run changed the repository: %d objects before, %d after", len(before), len(after))
		}
		for name := range after {
			if _, ok := before[name]; !ok {
				t.Errorf("dry run stored %s", name)
			}
		}
		for _, want := range []string{"would store file " + root + "/a/one.mp4", "would store file " + root + "/b/three.txt", "would back up 2 files (8 B)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "two.tmp") {
			t.Errorf("dry run lists an excluded file:\n%s", r.stdout)
		}
		r = e.must("backup", "--dry-run", "--json", root)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var sum struct {
			MessageType string `json:"message_type"`
			DryRun      bool   `json:"dry_run"`
			TotalFiles  int    `json:"total_files"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || !sum.DryRun || sum.TotalFiles != 3 {
			t.Errorf("--json summary %q: %v", lines[len(lines)-1], err)
		}
		if r := e.must("snapshots", "--json"); strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("a dry run made a snapshot: %s", r.stdout)
		}
	})
}

// restore --dry-run lists what would be written and writes nothing.
func TestRestoreDryRunWritesNothing(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	root := repotest.WriteTree(t, map[string]string{"r1/a.mp4": "aaaa", "r1/sub/b.mp4": "bb", "r2/c.txt": "c"})
	e.backup(root)
	target := filepath.Join(t.TempDir(), "restore-here")
	r := e.must("restore", "latest", "--target", target, "--dry-run", "--include", "**/sub/*.mp4", "--include", "c.txt")
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("dry run created the target: %v", err)
	}
	for _, want := range []string{"would write file " + target + root + "/r1/sub/b.mp4", "would write file " + target + root + "/r2/c.txt", "2 files (3 B)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "a.mp4") {
		t.Errorf("lists a file the includes leave out:\n%s", r.stdout)
	}
	// The real restore writes exactly what the dry run listed.
	e.must("restore", "latest", "--target", target, "--include", "**/sub/*.mp4", "--include", "c.txt")
	for _, p := range []string{root + "/r1/sub/b.mp4", root + "/r2/c.txt"} {
		if _, err := os.Stat(filepath.Join(target, p)); err != nil {
			t.Errorf("restore: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, root, "r1/a.mp4")); err == nil {
		t.Error("restore wrote a file the includes leave out")
	}
}
