package repo

import (
	"strings"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
)

// The compact set of seen index files answers as a map of names would:
// a file noted twice is relied on if either note says so; names that are
// not lower-case ids stay apart from the ids they would decode to; a
// relied-on file missing from a listing is noticed, one not relied on is
// not.
func TestSeenIndexFiles(t *testing.T) {
	a, b, c := blob.ID{1}.String(), blob.ID{2}.String(), blob.ID{3}.String()
	upper := strings.ToUpper(blob.ID{0xab}.String())
	var s seenIndex
	s.addAll(func(yield func(string, bool) bool) {
		for _, f := range []struct {
			name     string
			reliedOn bool
		}{{a, false}, {b, false}, {a, true}, {"not-an-id", false}, {upper, true}} {
			if !yield(f.name, f.reliedOn) {
				return
			}
		}
	})
	s.add(b, true)                             // written later by this process
	s.add(c, false)                            // damaged, noted alone
	s.addAll(func(func(string, bool) bool) {}) // a second start-up adding nothing
	for _, name := range []string{a, b, c, "not-an-id", upper} {
		if !s.has(name) {
			t.Errorf("%s not seen", name)
		}
	}
	for _, name := range []string{blob.ID{0xab}.String(), blob.ID{5}.String(), strings.ToUpper(blob.ID{0xcd}.String())} {
		if s.has(name) {
			t.Errorf("%s seen", name)
		}
	}
	list := func(names ...string) []remote.ObjectInfo {
		var out []remote.ObjectInfo
		for _, n := range names {
			out = append(out, remote.ObjectInfo{Handle: remote.Handle{Type: remote.Index, Name: n}})
		}
		return out
	}
	if s.reliedOnGone(list(a, b, upper, blob.ID{9}.String())) {
		t.Error("every relied-on file is listed, yet one counts as gone")
	}
	for _, gone := range []string{a, b, upper} {
		var rest []string
		for _, n := range []string{a, b, upper, c, "not-an-id"} {
			if n != gone {
				rest = append(rest, n)
			}
		}
		if !s.reliedOnGone(list(rest...)) {
			t.Errorf("relied-on %s is not listed, yet nothing counts as gone", gone)
		}
	}
	if s.reliedOnGone(list(a, b, upper, strings.ToLower(upper))) != false {
		t.Error("a listing with the lower-case twin of a name changed the answer")
	}
	if !s.reliedOnGone(list(a, b, strings.ToLower(upper))) {
		t.Error("the lower-case twin of a relied-on name stood in for it")
	}
}
