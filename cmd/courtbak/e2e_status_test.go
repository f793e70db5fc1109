package main_test

// End-to-end tests of status: one court through the binary, without and
// with the password, its exit status, and its HTML page in Chromium.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote/s3test"
)

// statusJSON is the part of the status document these tests read.
type statusJSON struct {
	Schema   string `json:"schema"`
	OK       bool   `json:"ok"`
	Breached int    `json:"courts_breached"`
	Courts   []struct {
		Label        string    `json:"label"`
		OK           bool      `json:"ok"`
		Breaches     []string  `json:"breaches"`
		RepositoryID string    `json:"repository_id"`
		Objects      int       `json:"objects"`
		Bytes        int64     `json:"bytes"`
		GrowthPerDay int64     `json:"growth_bytes_per_day"`
		Keyed        bool      `json:"keyed"`
		NewestStored time.Time `json:"newest_snapshot_stored"`
		Snapshots    []struct {
			ID     string   `json:"id"`
			Host   string   `json:"host"`
			Paths  []string `json:"paths"`
			AgeSec float64  `json:"age_s"`
		} `json:"snapshots"`
		Copies []struct {
			Label            string `json:"label"`
			Role             string `json:"role"`
			Reachable        bool   `json:"reachable"`
			Objects          int    `json:"objects"`
			MissingObjects   int    `json:"missing_objects"`
			MissingBytes     int64  `json:"missing_bytes"`
			MissingSnapshots int    `json:"missing_snapshots"`
			LastVerification *struct {
				Verdict  string `json:"verdict"`
				Keyless  bool   `json:"keyless"`
				ReadData string `json:"read_data"`
			} `json:"last_verification"`
			LastCheck *struct {
				Status     string `json:"status"`
				RecordedAt string `json:"recorded_at"`
			} `json:"last_check"`
		} `json:"copies"`
	} `json:"courts"`
}

func statusDecode(t *testing.T, b []byte) statusJSON {
	t.Helper()
	var s statusJSON
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, b)
	}
	if s.Schema != "courtbak-status" || len(s.Courts) != 1 {
		t.Fatalf("status document: %s", b)
	}
	return s
}

func TestStatusOfOneCourtKeylessAndWithThePassword(t *testing.T) {
	e, src := vfyRepo(t, 41)
	center := filepath.Join(t.TempDir(), "center")
	e.must("replicate", "--to", center)
	e.must("--replica", center, "verify", "--read-data-subset", "25%")
	labels := []string{"--court", "City court of A", "--label", "City court server", "--replica-label", "Provincial center"}

	// The center's view: no password anywhere.
	r := vfyNoPassword(e, append([]string{"--replica", center, "status", "--json", "--max-age", "26h"}, labels...)...)
	vfyExpect(t, r, 0)
	s := statusDecode(t, []byte(r.stdout))
	c := s.Courts[0]
	if !s.OK || !c.OK || c.Keyed || c.Label != "City court of A" || len(c.RepositoryID) != 64 || c.Objects == 0 || c.GrowthPerDay <= 0 {
		t.Fatalf("keyless status: %+v", c)
	}
	if time.Since(c.NewestStored) > time.Hour {
		t.Errorf("newest snapshot stored %s", c.NewestStored)
	}
	p, rep := c.Copies[0], c.Copies[1]
	if p.Label != "City court server" || rep.Label != "Provincial center" || !rep.Reachable || rep.MissingObjects != 0 || rep.Objects != p.Objects {
		t.Errorf("copies: %+v", c.Copies)
	}
	if lv := p.LastVerification; lv == nil || lv.Verdict != "intact" || lv.Keyless || lv.ReadData != "subset" || rep.LastVerification != nil {
		t.Errorf("last verification: %+v, replica %+v", p.LastVerification, rep.LastVerification)
	}
	// The city's run checked the center's copy too, and recorded it at the city.
	if lc := rep.LastCheck; lc == nil || lc.Status != "intact" || lc.RecordedAt != "City court server" {
		t.Errorf("the replica's last check: %+v", lc)
	}

	// A new backup not yet replicated: lag, but no breach within the threshold.
	if err := os.WriteFile(filepath.Join(src, "new-hearing.txt"), []byte("a new recording's notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	r = vfyNoPassword(e, append([]string{"--replica", center, "status", "--json", "--max-age", "26h"}, labels...)...)
	vfyExpect(t, r, 0)
	rep = statusDecode(t, []byte(r.stdout)).Courts[0].Copies[1]
	if rep.MissingObjects < 3 || rep.MissingBytes <= 0 || rep.MissingSnapshots != 1 {
		t.Errorf("replication lag: %+v", rep)
	}

	// With the password: the newest snapshot of the host and its paths.
	r = e.run(append([]string{"--replica", center, "status", "--json", "--max-age", "26h"}, labels...)...)
	vfyExpect(t, r, 0)
	c = statusDecode(t, []byte(r.stdout)).Courts[0]
	if !c.Keyed || len(c.Snapshots) != 1 || c.Snapshots[0].Paths[0] != src || c.Snapshots[0].AgeSec > 3600 {
		t.Errorf("keyed status: %+v", c.Snapshots)
	}

	// A threshold the newest snapshot misses: exit 1, naming why.
	r = vfyNoPassword(e, append([]string{"--replica", center, "status", "--max-age", "1ms"}, labels...)...)
	vfyExpect(t, r, 1, "City court of A: the newest snapshot was stored", "more than 1ms", "THE COURT NEEDS ATTENTION", "1 of 1 court needs attention")
	// An unreachable replica, and a wrong password.
	vfyExpect(t, vfyNoPassword(e, "--replica", filepath.Join(t.TempDir(), "nothing"), "status"), 1, "holds no repository")
	bad := e.runEnv([]string{"HOME=" + e.home, "PATH=" + os.Getenv("PATH"), "COURTBAK_PASSWORD=wrong"}, "--repo", e.repo, "status")
	vfyExpect(t, bad, 1, "cannot be read with the password")
	if strings.Contains(bad.stdout+bad.stderr, "wrong") && strings.Contains(bad.stdout+bad.stderr, "=wrong") {
		t.Error("the password appears in the output")
	}
	vfyExpect(t, e.run("status", "--report", "status.txt"), 1, "name it .html or .json")
}

func TestStatusReportsRenderInChromium(t *testing.T) {
	e, _ := vfyRepo(t, 42)
	center := filepath.Join(t.TempDir(), "center")
	e.must("replicate", "--to", center)
	e.must("verify")
	dir := t.TempDir()
	page, js := filepath.Join(dir, "status.html"), filepath.Join(dir, "status.json")
	r := vfyNoPassword(e, "--replica", center, "--replica", filepath.Join(dir, "dr-not-made-yet"), "status", "--max-age", "26h",
		"--court", "City court of A", "--label", "City court server", "--replica-label", "Provincial center", "--replica-label", "DR pool",
		"--report", page, "--report", js)
	vfyExpect(t, r, 1, "DR pool holds no repository")
	for _, p := range []string{page, js} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v (want 0600)", p, err, fi.Mode().Perm())
		}
	}
	if s := statusDecode(t, vfyRead(t, js)); s.OK || s.Breached != 1 || len(s.Courts[0].Copies) != 3 || s.Courts[0].Copies[2].Reachable {
		t.Errorf("status JSON: %+v", s)
	}
	dom := string(vfyChromium(t, "--dump-dom", "file://"+page))
	for _, want := range []string{"<h1>THE COURT NEEDS ATTENTION</h1>", "City court of A", "Provincial center", "DR pool", "holds no repository", "up to date", "intact"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<link") || strings.Contains(dom, "src=") {
		t.Error("the status page is not self-contained")
	}
	png := filepath.Join(dir, "status.png")
	vfyChromium(t, "--window-size=1400,900", "--screenshot="+png, "file://"+page)
	b := vfyRead(t, png)
	if !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 20000 {
		t.Errorf("screenshot of %d bytes", len(b))
	}
	if keep := os.Getenv("COURTBAK_KEEP_SCREENSHOTS"); keep != "" {
		_ = os.WriteFile(filepath.Join(keep, "status.png"), b, 0o644)
	}
}

// TestStatusAndVerifyStateOnS3: verify records its result in an S3
// repository, and status reads it, and the lag of an S3 replica, without
// the password.
func TestStatusAndVerifyStateOnS3(t *testing.T) {
	e := newS3Env(t)
	e.init()
	e.backup(generate(t, 43, 1<<20))
	endpoint, _, _ := s3test.Server(t)
	center := s3test.NewBucketURL(t, endpoint)
	e.must("replicate", "--to", center)
	e.must("--replica", center, "verify", "--read-data")
	environ := append([]string{"HOME=" + e.home, "PATH=" + os.Getenv("PATH")}, e.extra...)
	r := e.runEnv(environ, "--repo", e.repo, "--replica", center, "status", "--json", "--max-age", "26h", "--replica-label", "Provincial center")
	vfyExpect(t, r, 0)
	c := statusDecode(t, []byte(r.stdout)).Courts[0]
	if c.Keyed || len(c.Copies) != 2 || c.Copies[1].Label != "Provincial center" || c.Copies[1].MissingObjects != 0 || c.Copies[1].Objects != c.Copies[0].Objects {
		t.Errorf("status: %+v", c)
	}
	if lv := c.Copies[0].LastVerification; lv == nil || lv.Verdict != "intact" || lv.ReadData != "all" {
		t.Errorf("last verification at the S3 primary: %+v", lv)
	}
}

// TestStatusOfEveryCourtInTheConfigurationFile: three courts from one
// file, one with a password file (read with the key), one whose
// [profile.NAME.status] max-age it breaches; and a verify report of a
// profile named by the profile's labels.
func TestStatusOfEveryCourtInTheConfigurationFile(t *testing.T) {
	dir := t.TempDir()
	type court struct {
		e      *env
		center string
	}
	var courts []court
	for i := range 3 {
		e, _ := vfyRepo(t, int64(50+i))
		center := filepath.Join(dir, fmt.Sprintf("center-%d", i))
		e.must("replicate", "--to", center)
		courts = append(courts, court{e, center})
	}
	pw := filepath.Join(dir, "password-b")
	if err := os.WriteFile(pw, []byte(courts[1].e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "courts.toml")
	writeConfig(t, conf, fmt.Sprintf(`
[profile.city-a]
label = "City court of A"
repo = %q
[[profile.city-a.replica]]
url = %q
label = "Provincial center"

[profile.city-b]
label = "City court of B"
repo = %q
password-file = %q
replica = [{url = %q, label = "Provincial center"}]
[profile.city-b.status]
max-age = "26h"

[profile.city-c]
label = "City court of C"
repo = %q
replica = [{url = %q, label = "Provincial center"}]
[profile.city-c.status]
max-age = "1ms"
[profile.city-c.verify]
court = "City court of C"
title = "Monthly audit"
`, courts[0].e.repo, courts[0].center, courts[1].e.repo, pw, courts[1].center, courts[2].e.repo, courts[2].center))
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	r := courts[0].e.runEnv(env, "--config", conf, "status", "--json")
	vfyExpect(t, r, 1)
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(s.Courts) != 3 || s.OK || s.Breached != 1 {
		t.Fatalf("status of three courts: ok %v, %d breached, %d courts", s.OK, s.Breached, len(s.Courts))
	}
	a, b, c := s.Courts[0], s.Courts[1], s.Courts[2]
	if a.Label != "City court of A" || !a.OK || a.Keyed || a.Copies[1].Label != "Provincial center" || a.Copies[1].MissingObjects != 0 {
		t.Errorf("court A: %+v", a)
	}
	if b.Label != "City court of B" || !b.OK || !b.Keyed || len(b.Snapshots) != 1 {
		t.Errorf("court B, with its password file: %+v", b)
	}
	if c.Label != "City court of C" || c.OK || len(c.Breaches) != 1 || !strings.Contains(c.Breaches[0], "more than 1ms") {
		t.Errorf("court C, with max-age 1ms: %+v", c)
	}
	// The table names every court and why C needs attention; the metrics
	// file counts the courts that need it.
	prom := filepath.Join(dir, "courtbak.prom")
	r = courts[0].e.runEnv(env, "--config", conf, "--metrics-file", prom, "status")
	vfyExpect(t, r, 1, "City court of A", "City court of B", "City court of C: the newest snapshot was stored", "1 OF 3 COURTS NEEDS ATTENTION")
	if got, ok := sample(t, prom, "courtbak_last_run_errors", map[string]string{"command": "status"}); !ok || got != 1 {
		t.Errorf("courtbak_last_run_errors of status: %v, %v", got, ok)
	}
	// One profile: that court only.
	vfyExpect(t, courts[0].e.runEnv(env, "--config", conf, "--profile", "city-a", "status"), 0, "City court of A", "THE COURT IS PROTECTED")
	vfyExpect(t, courts[0].e.runEnv(env, "status"), 1, "no repository given")

	// verify with a profile: its labels name the court and the copies.
	rep := filepath.Join(dir, "c.json")
	vfyExpect(t, courts[2].e.runEnv(courts[2].e.environ(), "--config", conf, "--profile", "city-c", "verify", "--report", rep), 0)
	v := auditDecode(t, rep)
	if v.Court != "City court of C" || v.Title != "Monthly audit" || v.Copies[0].Label != "City court of C" || v.Copies[1].Label != "Provincial center" {
		t.Errorf("report of profile city-c: court %q, title %q, copies %+v", v.Court, v.Title, v.Copies)
	}
}
