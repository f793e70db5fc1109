package main_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

type taggedSnapJSON struct {
	ID       string   `json:"id"`
	Time     string   `json:"time"`
	Tags     []string `json:"tags"`
	Original string   `json:"original"`
	Tree     string   `json:"tree"`
}

func listSnapshots(t *testing.T, e *env) []taggedSnapJSON {
	t.Helper()
	var out []taggedSnapJSON
	if err := json.Unmarshal([]byte(e.must("snapshots", "--json").stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tag adds, removes and sets tags by storing each snapshot again (same
// time, tree and host; "original" naming the backup's own snapshot) and
// removing the old one; forget --keep-tag then holds it.
func TestTagAddRemoveSetAndLegalHold(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv func(*testing.T) *env) {
		e := newEnv(t)
		e.init()
		src := generate(t, 41, 1<<20)
		first := e.backup("--tag", "nightly", src)
		e.backup("--tag", "nightly", src)
		before := listSnapshots(t, e)

		r := e.must("tag", first.SnapshotID[:8], "--add", "legal-hold", "--add", "case-2026-114")
		after := listSnapshots(t, e)
		if len(after) != 2 {
			t.Fatalf("%d snapshots after tag, want 2: %+v", len(after), after)
		}
		var held taggedSnapJSON
		for _, s := range after {
			if s.ID == first.SnapshotID {
				t.Fatalf("the old snapshot is still there: %s", r.stdout)
			}
			if s.Original == first.SnapshotID {
				held = s
			}
		}
		if held.ID == "" || !slices.Equal(held.Tags, []string{"nightly", "legal-hold", "case-2026-114"}) || held.Time != before[0].Time || held.Tree != before[0].Tree {
			t.Fatalf("retagged snapshot %+v, was %+v", held, before[0])
		}
		if !strings.Contains(r.stdout, "saved as "+held.ID[:8]) {
			t.Errorf("output %q", r.stdout)
		}
		// Retagging is an authorised change: verify, keyed and keyless,
		// must not take the old snapshot's removal for a deletion.
		if res := e.run("verify"); res.code != 0 {
			t.Fatalf("verify after tag: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		if res := e.run("verify", "--keyless"); res.code != 0 {
			t.Fatalf("verify --keyless after tag: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		// A retagged snapshot restores like the original.
		target := t.TempDir()
		e.must("restore", held.ID[:8], "--target", target)
		compareTrees(t, src, restoredPath(target, src))

		// Retention keeps the held snapshot although it is not the newest.
		e.must("forget", "--keep-last", "1", "--keep-tag", "legal-hold")
		if got := listSnapshots(t, e); len(got) != 2 {
			t.Fatalf("forget --keep-tag legal-hold removed the held snapshot: %+v", got)
		}

		// --remove; a second retag still points to the backup's snapshot.
		e.must("tag", held.ID, "--remove", "legal-hold")
		var released taggedSnapJSON
		for _, s := range listSnapshots(t, e) {
			if s.Original == first.SnapshotID {
				released = s
			}
		}
		if released.ID == "" || released.ID == held.ID || !slices.Equal(released.Tags, []string{"nightly", "case-2026-114"}) {
			t.Fatalf("after --remove: %+v", released)
		}
		// --set replaces all; --set '' clears; no change stores nothing.
		e.must("tag", "latest", "--set", "weekly")
		if got := listSnapshots(t, e); !slices.Equal(got[len(got)-1].Tags, []string{"weekly"}) {
			t.Errorf("--set weekly: %+v", got[len(got)-1])
		}
		e.must("tag", "latest", "--set", "")
		latest := listSnapshots(t, e)[1]
		if len(latest.Tags) != 0 {
			t.Errorf("--set '': %+v", latest)
		}
		r = e.must("tag", "latest", "--remove", "absent", "--json")
		var changes []struct {
			OldID   string `json:"old_id"`
			Changed bool   `json:"changed"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &changes); err != nil || len(changes) != 1 || changes[0].Changed || changes[0].OldID != latest.ID {
			t.Errorf("unchanged --json: %q %v", r.stdout, err)
		}
		if got := listSnapshots(t, e); got[1].ID != latest.ID {
			t.Errorf("an unchanged tag stored a new snapshot")
		}
		if r := e.run("tag", "latest"); r.code != 1 || !strings.Contains(r.stderr, "--add") {
			t.Errorf("tag without a change: exit %d %q", r.code, r.stderr)
		}
		if r := e.run("verify"); r.code != 0 {
			t.Errorf("verify after tagging: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
