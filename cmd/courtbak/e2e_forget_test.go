package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/repo"
)

// packSizes lists the stored packs, through the storage layer.
func packSizes(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for name, b := range storedObjects(t, e) {
		if strings.HasPrefix(name, "data/") {
			out[name] = int64(len(b))
		}
	}
	return out
}

func total(packs map[string]int64) (n int64) {
	for _, size := range packs {
		n += size
	}
	return n
}

// packsGone returns how many of before's packs are gone, and their bytes.
func packsGone(before, after map[string]int64) (n int, bytes int64) {
	for name, size := range before {
		if _, ok := after[name]; !ok {
			n++
			bytes += size
		}
	}
	return n, bytes
}

// forgetOutput is the part of forget --json the tests read.
type forgetOutput struct {
	DryRun bool `json:"dry_run"`
	Groups []struct {
		Keep []struct {
			ShortID string   `json:"short_id"`
			Reasons []string `json:"reasons"`
		} `json:"keep"`
		Remove []struct {
			ID string `json:"id"`
		} `json:"remove"`
	} `json:"groups"`
	Removed int `json:"removed"`
}

func snapshotCount(t *testing.T, e *env) int {
	t.Helper()
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(e.must("snapshots", "--json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestForgetAndPruneFreeSpaceAndKeepTheRest(t *testing.T) {
	forEachBackend(t, testForgetAndPrune)
}

func testForgetAndPrune(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	e.init()
	old := generate(t, 1, 12<<20)
	kept := generate(t, 2, 12<<20)
	e.backup(old, "--tag", "daily")
	e.backup(kept)
	e.backup(kept, "--tag", "hold")

	if r := e.run("forget"); r.code != 1 || !strings.Contains(r.stderr, "--keep") {
		t.Errorf("forget without a policy: exit %d, stderr %q; want 1 naming the --keep options", r.code, r.stderr)
	}
	if r := e.run("forget", "--keep-daily", "-2"); r.code != 1 || !strings.Contains(r.stderr, "--keep-daily") {
		t.Errorf("forget --keep-daily -2: exit %d, stderr %q", r.code, r.stderr)
	}

	// A dry run lists the decisions per host and paths and removes nothing.
	var plan forgetOutput
	r := e.must("forget", "--keep-last", "1", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("forget --json: %v: %q", err, r.stdout)
	}
	if len(plan.Groups) != 2 || plan.Removed != 0 || !plan.DryRun {
		t.Fatalf("dry run: %+v", plan)
	}
	removes := 0
	for _, g := range plan.Groups {
		removes += len(g.Remove)
		for _, k := range g.Keep {
			if len(k.Reasons) != 1 || k.Reasons[0] != "last" {
				t.Errorf("kept %s for %v, want [last]", k.ShortID, k.Reasons)
			}
		}
	}
	if removes != 1 || snapshotCount(t, e) != 3 {
		t.Fatalf("dry run planned %d removals and left %d snapshots; want 1 and 3", removes, snapshotCount(t, e))
	}

	// Forgetting a snapshot whose data another one shares frees nothing.
	e.must("forget", "--keep-tag", "hold", "--path", kept)
	if n := snapshotCount(t, e); n != 2 {
		t.Fatalf("%d snapshots after forgetting one of three", n)
	}
	before := packSizes(t, e)

	// A dry run of forget --prune shows what forgetting would free.
	var preview struct {
		Prune struct {
			Marked struct {
				BytesUnused   int64 `json:"bytes_unused"`
				BytesRepacked int64 `json:"bytes_repacked"`
			} `json:"marked"`
		} `json:"prune"`
	}
	r = e.must("forget", "--keep-tag", "hold", "--path", old, "--prune", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &preview); err != nil {
		t.Fatalf("forget --prune --dry-run --json %q: %v", r.stdout, err)
	}
	if m := preview.Prune.Marked; m.BytesUnused+m.BytesRepacked < 4<<20 {
		t.Errorf("forget --prune --dry-run frees only %+v", m)
	}
	if n := snapshotCount(t, e); n != 2 {
		t.Fatalf("a dry run removed snapshots: %d left", n)
	}

	// forget --prune with the default grace period only marks.
	r = e.must("forget", "--keep-tag", "hold", "--path", old, "--prune")
	if !strings.Contains(r.stdout, "marked") || !strings.Contains(r.stdout, "a prune run after") {
		t.Errorf("forget --prune output %q does not say what was marked and when it goes", r.stdout)
	}
	if n, _ := packsGone(before, packSizes(t, e)); n != 0 {
		t.Fatalf("the mark deleted %d packs before the grace period", n)
	}
	e.must("verify")

	// A prune while another holds this host's prune lock exits 11.
	state, err := filepath.Glob(filepath.Join(e.home, ".cache", "courtbak", "*", "prune", "*", "plan.json"))
	if err != nil || len(state) != 1 {
		t.Fatalf("prune plan in the cache directory: %v %v", state, err)
	}
	lock, err := repo.LockExclusive(filepath.Join(filepath.Dir(state[0]), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.run("prune"); r.code != 11 {
		t.Errorf("prune while locked: exit %d, stderr %q; want %d", r.code, r.stderr, 11)
	}
	lock.Close()

	// In a maintenance window, --grace 0 deletes what the mark found.
	var res struct {
		Swept *struct {
			PacksDeleted int   `json:"packs_deleted"`
			BytesDeleted int64 `json:"bytes_deleted"`
		} `json:"swept"`
	}
	r = e.must("prune", "--grace", "0", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Swept == nil {
		t.Fatalf("prune --json %q: %v", r.stdout, err)
	}
	after := packSizes(t, e)
	n, bytes := packsGone(before, after)
	if n != res.Swept.PacksDeleted || bytes != res.Swept.BytesDeleted || total(before)-total(after) < 4<<20 {
		t.Errorf("prune reported %d packs, %d bytes deleted; %d packs, %d bytes are gone, and storage went from %d to %d bytes",
			res.Swept.PacksDeleted, res.Swept.BytesDeleted, n, bytes, total(before), total(after))
	}
	e.must("verify", "--read-data")
	target := t.TempDir()
	e.must("restore", "latest", "--target", target)
	compareTrees(t, kept, restoredPath(target, kept))

	if r := e.run("prune", "--grace", "1h"); r.code != 1 || !strings.Contains(r.stderr, "24h") {
		t.Errorf("prune --grace 1h: exit %d, stderr %q", r.code, r.stderr)
	}
}
