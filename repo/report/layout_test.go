package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
	_ "time/tzdata" // the zone test must not depend on the host's zone files
)

func TestManifestChoiceSelectsNewestPerHostAndPaths(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2025, 3, 1, h, 0, 0, 0, time.UTC) }
	snaps := []Snapshot{
		{ID: "aaaaaaaa01", Host: "court", Paths: []string{"/rec"}, Time: at(1), Status: SnapshotIntact},
		{ID: "bbbbbbbb02", Host: "court", Paths: []string{"/cases"}, Time: at(2), Status: SnapshotIntact},
		{ID: "cccccccc03", Host: "court", Paths: []string{"/rec"}, Time: at(3), Status: SnapshotDamaged},
		{ID: "dddddddd04", Host: "annex", Paths: []string{"/rec"}, Time: at(0), Status: SnapshotIntact},
		{ID: "eeeeeeee05", Status: SnapshotUnreadable},
	}
	for _, tc := range []struct {
		args []string
		want []int
		sel  string
	}{
		{nil, []int{1, 2, 3}, ManifestLatest},
		{[]string{"latest"}, []int{1, 2, 3}, ManifestLatest},
		{[]string{"all"}, []int{0, 1, 2, 3, 4}, ManifestAll},
		{[]string{"AAAAAAAA"}, []int{0}, ManifestChosen},
		{[]string{"aaaaaaaa,latest"}, []int{0, 1, 2, 3}, ManifestChosen},
	} {
		c, err := ParseManifestChoice(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got, err := c.Select(snaps)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if len(got) != len(tc.want) || c.Selection() != tc.sel {
			t.Errorf("%v: selected %v (%s), want %v (%s)", tc.args, got, c.Selection(), tc.want, tc.sel)
		}
		for _, i := range tc.want {
			if !got[i] {
				t.Errorf("%v: snapshot %d not selected", tc.args, i)
			}
		}
	}
	for _, bad := range []string{"newest", "abc", "zzzzzzzzzz"} {
		if _, err := ParseManifestChoice([]string{bad}); err == nil {
			t.Errorf("--manifest %s accepted", bad)
		}
	}
	for _, id := range []string{"ffffffff", "aaaaaaaa0"} {
		c, _ := ParseManifestChoice([]string{id})
		if _, err := c.Select(append(snaps, Snapshot{ID: "aaaaaaaa06"})); err == nil {
			t.Errorf("--manifest %s: no error for a missing or ambiguous id", id)
		}
	}
}

func TestTimesShowLocalZoneNextToUTC(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Belgrade")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2025, 3, 1, 23, 30, 0, 0, time.UTC)
	if got, want := when(ts, loc), "2025-03-02 00:30:00 CET (2025-03-01 23:30:00 UTC)"; got != want {
		t.Errorf("when = %q, want %q", got, want)
	}
	if got, want := when(ts.Add(-time.Hour), loc), "2025-03-01 23:30:00 CET (22:30:00 UTC)"; got != want {
		t.Errorf("when = %q, want %q", got, want)
	}
	if got, want := when(ts, time.UTC), "2025-03-01 23:30:00 UTC"; got != want {
		t.Errorf("when in UTC = %q, want %q", got, want)
	}
	// A host whose local zone is UTC (TZ unset on most servers) shows
	// the time once.
	etc, err := time.LoadLocation("Etc/UTC")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := when(ts, etc), "2025-03-01 23:30:00 UTC"; got != want {
		t.Errorf("when in a local zone that is UTC = %q, want %q", got, want)
	}
	if got, want := ZoneName(loc, ts), "Europe/Belgrade (UTC+01:00)"; got != want {
		t.Errorf("ZoneName = %q, want %q", got, want)
	}
}

func TestPathsBreakOnlyAfterSeparators(t *testing.T) {
	got := string(breakable("/rec/case-14_a.mp4?x=<b>"))
	if want := "/<wbr>rec/<wbr>case-14_<wbr>a.<wbr>mp4?<wbr>x=<wbr>&lt;b&gt;"; got != want {
		t.Errorf("breakable = %q, want %q", got, want)
	}
}

// bigReport is a report whose newest snapshot lists n files in folders of
// 250, with names and sizes like a court's.
func bigReport(n int) *Report {
	r := sample()
	r.Problems, r.Copies[1].Missing, r.Copies[1].Status = nil, nil, StatusIntact
	r.SetVerdict()
	s := &r.Snapshots[0]
	s.Manifest = make([]File, n)
	for i := range s.Manifest {
		s.Manifest[i] = File{Path: fmt.Sprintf("/srv/recordings/2025/case-%06d/hearing-%03d-courtroom-4.mp4", i/250, i%250),
			Size: uint64(1e9 + i), MTime: time.Date(2025, 3, 1, 9, 0, i%60, 0, time.UTC), BLAKE3: fmt.Sprintf("%064x", i*7919)}
	}
	s.Files = int64(n)
	return r
}

func TestManifestSectionsCollapseWhenLarge(t *testing.T) {
	v := newView(bigReport(2600))
	groups := v.Groups(v.Snapshots[0])
	if len(groups) != 11 || groups[0].Open || len(groups[0].Files) != 250 || groups[10].Dir != "/srv/recordings/2025/case-000010" {
		t.Fatalf("%d groups, first %+v", len(groups), groups[0].Dir)
	}
	one := bigReport(1)
	one.Snapshots[0].Manifest = make([]File, 2500)
	for i := range one.Snapshots[0].Manifest {
		one.Snapshots[0].Manifest[i].Path = fmt.Sprintf("/d/f%05d", i)
	}
	groups = newView(one).Groups(one.Snapshots[0])
	if len(groups) != 3 || len(groups[2].Files) != 500 || groups[2].Part != 3 || groups[2].Parts != 3 {
		t.Fatalf("a folder of 2500 files in %d sections: %+v", len(groups), groups[len(groups)-1].Part)
	}
	small := newView(sample())
	if g := small.Groups(small.Snapshots[0]); len(g) != 2 || !g[0].Open || !g[1].Open {
		t.Errorf("a small manifest is not shown open: %+v", g)
	}
}

// TestHundredThousandFilesOpenInChromium renders the HTML report of a
// snapshot of 100,000 files and loads it in headless Chromium: it must be
// about 200 bytes per file and open within a generous bound.
func TestHundredThousandFilesOpenInChromium(t *testing.T) {
	const n = 100_000
	data, err := Encode(HTML, bigReport(n), nil)
	if err != nil {
		t.Fatal(err)
	}
	if perFile := len(data) / n; perFile > 260 {
		t.Errorf("%d bytes per file (%d MB for %d files)", perFile, len(data)>>20, n)
	}
	if c := bytes.Count(data, []byte("<details>")); c != n/250 {
		t.Errorf("%d collapsed sections, want %d", c, n/250)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "big.html")
	if err := os.WriteFile(page, data, 0o600); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "big.png")
	start := time.Now()
	chromium(t, 120*time.Second, "--window-size=1280,1000", "--screenshot="+png, "file://"+page)
	took := time.Since(start)
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 20000 {
		t.Fatalf("screenshot: %v, %d bytes", err, len(b))
	}
	if keep := os.Getenv("COURTBAK_KEEP_SCREENSHOTS"); keep != "" {
		_ = os.WriteFile(filepath.Join(keep, "report-100k.png"), b, 0o644)
	}
	if took > 60*time.Second {
		t.Errorf("Chromium took %s to render %d files", took, n)
	}
	t.Logf("%d files: %d bytes (%d per file), rendered and captured in %s", n, len(data), len(data)/n, took.Round(time.Millisecond))
}

// chromium runs headless Chromium with a fresh profile and no network
// chatter; without Chromium the test fails in CI and skips elsewhere.
func chromium(t *testing.T, timeout time.Duration, args ...string) []byte {
	t.Helper()
	tool, err := exec.LookPath("chromium")
	if err != nil {
		if tool, err = exec.LookPath("chromium-browser"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("chromium is not installed (Debian package: see .ci/deps.txt)")
			}
			t.Skip("chromium is not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, tool, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestBannerKeepsTheVerdictShortAndSaysWhatWasNotRead(t *testing.T) {
	r := bigReport(3)
	r.Scope.Unchecked = "pack contents not read (17 packs, 2.50 MiB); run with --read-data to read them"
	if got := r.Headline(); got != "ALL COPIES INTACT AS FAR AS CHECKED: "+r.Scope.Unchecked {
		t.Errorf("headline %q", got)
	}
	html, err := Render(HTML, r)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := Render(Markdown, r)
	for _, want := range []string{"<h1>ALL COPIES INTACT AS FAR AS CHECKED</h1>", "<strong>Not read in this run:</strong> pack contents not read (17 packs"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if !bytes.Contains(md, []byte("## ALL COPIES INTACT AS FAR AS CHECKED\n")) || !bytes.Contains(md, []byte("**Not read in this run:** pack contents not read")) {
		t.Errorf("Markdown banner:\n%.400s", md)
	}
}

func TestReportsNameTheirZoneEvenWhenNotSet(t *testing.T) {
	r := sample() // no SetLocation: times are UTC
	html, _ := Render(HTML, r)
	js, _ := Render(JSON, r)
	if !bytes.Contains(html, []byte("Times are UTC (UTC&#43;00:00).")) || !bytes.Contains(js, []byte(`"time_zone": "UTC (UTC+00:00)"`)) {
		t.Error("a report without a zone does not say its times are UTC")
	}
}
