package main_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A backup of a /tmp-like directory restored into a target where an
// attacker planted TARGET/<first component> as a symlink to a directory
// elsewhere: restore refuses it by name, exits 1, and writes and changes
// nothing outside the target. Into a clean target the sticky directory
// comes back 1777.
func TestRestoreRefusesPlantedSymlinkAndKeepsStickyBit(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := filepath.Join(t.TempDir(), "tmp")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "evidence.txt"), []byte("evidence"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	e.backup(src)

	target := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.Mkdir(outside, 0o750); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(outside, old, old); err != nil {
		t.Fatal(err)
	}
	first := strings.Split(strings.TrimPrefix(src, "/"), "/")[0]
	link := filepath.Join(target, first)
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	r := e.run("restore", "latest", "--target", target)
	if r.code != 1 || !strings.Contains(r.stderr, link+" is a symlink restore did not create") {
		t.Errorf("restore through a planted symlink: exit %d, stderr %q", r.code, r.stderr)
	}
	entries, _ := os.ReadDir(outside)
	fi, err := os.Stat(outside)
	if err != nil || len(entries) != 0 || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(old) {
		t.Errorf("outside the target: %d entries written, mode %v, mtime %v", len(entries), fi.Mode(), fi.ModTime())
	}

	clean := t.TempDir()
	e.must("restore", "latest", "--target", clean)
	compareTrees(t, src, restoredPath(clean, src))
	if fi, err := os.Stat(restoredPath(clean, src)); err != nil || fi.Mode() != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("restored /tmp-like directory: %v, %v", fi.Mode(), err)
	}
}

// --max-tree-depth and --max-entries bound walks through a snapshot's
// tree: beyond them ls, diff and restore stop with a clear error naming
// the flag (exit 1); raised, they work.
func TestTreeWalkLimitFlags(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := t.TempDir()
	deep := filepath.Join(src, "a", "b", "c", "d", "e", "f")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "x.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	depth := strings.Count(deep, "/") + 1 // directory levels down to x.txt's
	for _, args := range [][]string{
		{"--max-tree-depth", "3", "ls", "latest"},
		{"--max-tree-depth", "3", "restore", "latest", "--target", t.TempDir()},
	} {
		r := e.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "--max-tree-depth") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := e.run("--max-entries", "4", "ls", "latest"); r.code != 1 || !strings.Contains(r.stderr, "--max-entries") {
		t.Errorf("ls over --max-entries: exit %d, stderr %q", r.code, r.stderr)
	}
	target := t.TempDir()
	e.must("--max-tree-depth", fmt.Sprint(depth), "--max-entries", "100", "restore", "latest", "--target", target)
	if b, err := os.ReadFile(filepath.Join(target, deep, "x.txt")); err != nil || string(b) != "x" {
		t.Errorf("restore within raised limits: %q, %v", b, err)
	}
	if r := e.run("--max-entries", "0", "ls", "latest"); r.code != 1 {
		t.Errorf("--max-entries 0: exit %d", r.code)
	}
}
