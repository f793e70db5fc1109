package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// ls --json gives the exact bytes of a name that is not valid UTF-8
// (path_raw, base64, as trees keep them): two Latin-1 names that print the
// same are told apart, and each hash belongs to one name.
func TestLsJSONKeepsExactNameBytes(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := t.TempDir()
	names := []string{"M\xfcller.txt", "M\xe4ller.txt", "plain.txt"}
	for i, name := range names {
		if err := os.WriteFile(filepath.Join(src, name), []byte(fmt.Sprintf("content %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("M\xfcller.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	out := e.must("ls", "--json", "latest", src).stdout
	type entry struct {
		Path          string `json:"path"`
		PathRaw       []byte `json:"path_raw"`
		LinkTarget    string `json:"link_target"`
		LinkTargetRaw []byte `json:"link_target_raw"`
		BLAKE3        string `json:"blake3"`
	}
	byName := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var en entry
		if err := json.Unmarshal([]byte(line), &en); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		name := en.Path
		if en.PathRaw != nil {
			name = string(en.PathRaw)
		}
		if _, dup := byName[name]; dup {
			t.Errorf("two entries for %q", name)
		}
		byName[name] = en
	}
	for i, name := range names {
		en, ok := byName[filepath.Join(src, name)]
		if !ok {
			t.Errorf("ls --json has no entry whose exact path is %q: %s", name, out)
			continue
		}
		sum := fmt.Sprintf("%x", blake3.Sum256([]byte(fmt.Sprintf("content %d", i))))
		if en.BLAKE3 != sum {
			t.Errorf("%q: blake3 %s, want %s", name, en.BLAKE3, sum)
		}
		if (en.PathRaw != nil) == (name == "plain.txt") {
			t.Errorf("%q: path_raw %q, only for names that are not UTF-8", name, en.PathRaw)
		}
	}
	if l := byName[filepath.Join(src, "link")]; string(l.LinkTargetRaw) != "M\xfcller.txt" {
		t.Errorf("link: link_target_raw %q", l.LinkTargetRaw)
	}
}
