package main_test

// End-to-end tests of what verify reports tell an auditor: court, title
// and copy labels, local times, which manifests are carried, what was read,
// and the rotating subset's coverage from the verification state.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditJSON is the part of report schema 2 these tests read.
type auditJSON struct {
	SchemaVersion int    `json:"schema_version"`
	Title         string `json:"title"`
	Court         string `json:"court"`
	TimeZone      string `json:"time_zone"`
	Repository    struct {
		Label string `json:"label"`
	} `json:"repository"`
	Copies []struct {
		Label         string `json:"label"`
		Role          string `json:"role"`
		Packs         int    `json:"packs"`
		PackBytes     int64  `json:"pack_bytes"`
		PacksRead     int    `json:"packs_read"`
		PackBytesRead int64  `json:"pack_bytes_read"`
		BytesRead     int64  `json:"bytes_read"`
	} `json:"copies"`
	SubsetCoverage *struct {
		CoveredPercent float64   `json:"covered_percent"`
		RunsInCycle    int       `json:"runs_in_cycle"`
		CycleRuns      int       `json:"cycle_runs"`
		CompleteBy     time.Time `json:"complete_by"`
	} `json:"subset_coverage"`
	ManifestSelection string `json:"manifest_selection"`
	Snapshots         []struct {
		ID               string            `json:"id"`
		Paths            []string          `json:"paths"`
		ManifestIncluded bool              `json:"manifest_included"`
		Manifest         []json.RawMessage `json:"manifest"`
	} `json:"snapshots"`
}

func auditDecode(t *testing.T, p string) auditJSON {
	t.Helper()
	var v auditJSON
	if err := json.Unmarshal(vfyRead(t, p), &v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return v
}

// auditRepo makes a repository with three snapshots: two of the
// recordings (the first older) and one of the case files, and a replica.
func auditRepo(t *testing.T) (e *env, replica, recordings string) {
	t.Helper()
	e, recordings = vfyRepo(t, 31)
	if err := os.WriteFile(filepath.Join(recordings, "late-hearing.txt"), []byte("added after the first backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup(recordings)
	cases := filepath.Join(t.TempDir(), "cases")
	if err := os.MkdirAll(cases, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cases, "case-14570.json"), []byte(`{"case":14570}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup(cases)
	replica = filepath.Join(t.TempDir(), "center")
	e.must("replicate", "--to", replica)
	e.extra = append(e.extra, "TZ=Europe/Belgrade")
	return e, replica, recordings
}

func TestVerifyReportNamesCourtCopiesAndNewestManifests(t *testing.T) {
	e, replica, recordings := auditRepo(t)
	dir := t.TempDir()
	key, pub := vfyGoKey(t, dir, "court")
	js, html, md := filepath.Join(dir, "audit.json"), filepath.Join(dir, "audit.html"), filepath.Join(dir, "audit.md")
	r := e.must("--replica", replica, "verify", "--read-data-subset", "50%",
		"--court", "City court of Novi Sad", "--title", "Monthly audit, March 2025",
		"--label", "City court server", "--replica-label", "Provincial center",
		"--report", js, "--report", html, "--report", md, "--sign-key", key)
	for _, want := range []string{"City court of Novi Sad: Monthly audit, March 2025", "City court server  primary", "Provincial center  replica", "read back 50% of the stored data"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	v := auditDecode(t, js)
	if v.SchemaVersion != 2 || v.Court != "City court of Novi Sad" || v.Title != "Monthly audit, March 2025" ||
		v.Repository.Label != "City court server" || !strings.HasPrefix(v.TimeZone, "Europe/Belgrade") {
		t.Errorf("report head: %+v", v)
	}
	if len(v.Copies) != 2 || v.Copies[0].Label != "City court server" || v.Copies[1].Label != "Provincial center" {
		t.Fatalf("copies: %+v", v.Copies)
	}
	packs := vfyObjects(t, e.repo, "data")
	for _, c := range v.Copies {
		// Each copy says what it holds and what was read there.
		if c.Packs != len(packs) || c.PacksRead > c.Packs || c.BytesRead <= 0 || c.PackBytesRead > c.PackBytes {
			t.Errorf("%s: %+v, %d packs stored", c.Label, c, len(packs))
		}
	}
	// The newest snapshot of each set of paths carries its files; the
	// older one of the recordings does not.
	if v.ManifestSelection != "latest" || len(v.Snapshots) != 3 {
		t.Fatalf("manifest selection %q, %d snapshots", v.ManifestSelection, len(v.Snapshots))
	}
	older := v.Snapshots[0]
	if older.ManifestIncluded || len(older.Manifest) != 0 || older.Paths[0] != recordings {
		t.Errorf("the older snapshot's files are in the report: %+v", older.Paths)
	}
	for _, s := range v.Snapshots[1:] {
		if !s.ManifestIncluded || len(s.Manifest) == 0 {
			t.Errorf("snapshot %s of %v lacks its files", s.ID[:8], s.Paths)
		}
	}
	// The first subset run of the cycle: half read, the rest tomorrow.
	sc := v.SubsetCoverage
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if sc == nil || sc.CoveredPercent != 50 || sc.RunsInCycle != 1 || sc.CycleRuns != 2 || !sc.CompleteBy.Equal(tomorrow) {
		t.Errorf("subset coverage %+v, want 50%% complete by %s", sc, tomorrow)
	}
	for _, p := range []string{js, html, md} {
		vfyExpect(t, e.run("report", "verify", p, "--pubkey", pub), 0, "unchanged")
	}
	page := string(vfyRead(t, html))
	mdText := string(vfyRead(t, md))
	for _, want := range []string{"City court of Novi Sad", "Monthly audit, March 2025", "Provincial center", "CET", "UTC", "not listed"} {
		if !strings.Contains(page, want) || !strings.Contains(mdText, want) {
			t.Errorf("HTML or Markdown lacks %q", want)
		}
	}
	// The state the run left lets status find it without the password.
	state := vfyRead(t, filepath.Join(e.repo, "state", "verify.json"))
	if !bytes.Contains(state, []byte(`"verdict": "intact"`)) || !bytes.Contains(state, []byte(`"label": "Provincial center"`)) {
		t.Errorf("verification state:\n%s", state)
	}

	// --manifest all, one snapshot by prefix, or an unknown one.
	all := filepath.Join(dir, "all.json")
	e.must("verify", "--manifest", "all", "--report", all)
	if v := auditDecode(t, all); v.ManifestSelection != "all" || !v.Snapshots[0].ManifestIncluded || !v.Snapshots[2].ManifestIncluded {
		t.Errorf("--manifest all: %+v", v.Snapshots)
	}
	one := filepath.Join(dir, "one.json")
	e.must("verify", "--manifest", older.ID[:10], "--report", one)
	if v := auditDecode(t, one); v.ManifestSelection != "chosen" || !v.Snapshots[0].ManifestIncluded || v.Snapshots[1].ManifestIncluded || v.Snapshots[2].ManifestIncluded {
		t.Errorf("--manifest %s: %+v", older.ID[:10], v.Snapshots)
	}
	vfyExpect(t, e.run("verify", "--read-data", "--manifest", "ffffffff"), 1, "no such snapshot")
	vfyExpect(t, e.run("verify", "--keyless", "--manifest", "all"), 1, "cannot read")
	vfyExpect(t, e.run("verify", "--manifest", "newest"), 1, "give latest, all, or snapshot ids")
	vfyExpect(t, e.run("verify", "--replica-label", "Provincial center"), 1, "one label per replica")
}

func TestVerifyHTMLReportForAuditorsInChromium(t *testing.T) {
	e, replica, _ := auditRepo(t)
	dir := t.TempDir()
	html := filepath.Join(dir, "audit.html")
	e.must("--replica", replica, "verify", "--read-data", "--court", "City court of Novi Sad", "--title", "Monthly audit",
		"--label", "City court server", "--replica-label", "Provincial center", "--report", html)
	dom := string(vfyChromium(t, "--dump-dom", "file://"+html))
	i := strings.Index(dom, `id="verdict"`)
	court := strings.Index(dom, `<p class="court">City court of Novi Sad</p>`)
	h1 := strings.Index(dom, "<h1>ALL COPIES INTACT</h1>")
	if i < 0 || court < i || h1 < court || strings.Index(dom, "<h1>") != h1 {
		t.Errorf("the banner does not name the court before the verdict:\n%.800s", dom)
	}
	// Plain words first: the summary and copies come before the technical details.
	if a, b := strings.Index(dom, "In short"), strings.Index(dom, "Technical details"); a < 0 || b < a {
		t.Error("the technical details are not after the summary")
	}
	if !strings.Contains(dom, "<details open=") && !strings.Contains(dom, "<details open>") {
		t.Error("a small file list is not shown open")
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<link") || strings.Contains(dom, "src=") {
		t.Error("the page is not self-contained")
	}
	png := filepath.Join(dir, "audit.png")
	vfyChromium(t, "--window-size=1280,2000", "--screenshot="+png, "file://"+html)
	b := vfyRead(t, png)
	if !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 40000 {
		t.Errorf("screenshot of %d bytes", len(b))
	}
	if keep := os.Getenv("COURTBAK_KEEP_SCREENSHOTS"); keep != "" {
		_ = os.WriteFile(filepath.Join(keep, "verify-report.png"), b, 0o644)
	}
}
