package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// profileSite is a city with a profile: its repository, a replica with a
// label, a password file, paths, excludes, tags and retention.
type profileSite struct {
	e      *env
	config string
	src    string
	center string
	report string
}

func newProfileSite(t *testing.T) *profileSite {
	e := newLocalEnv(t)
	dir := t.TempDir()
	s := &profileSite{e: e, config: filepath.Join(dir, "courtbak.toml"), src: generate(t, 7, 1<<20),
		center: filepath.Join(dir, "center"), report: filepath.Join(dir, "reports")}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.src, "take.part"), []byte("half a recording"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.report, 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, s.config, fmt.Sprintf(`
[profile.city-a]
label = "City court of A"
repo = %q
password-file = %q

[[profile.city-a.replica]]
url = %q
label = "Provincial center"

[profile.city-a.init]
kdf-memory = 8192
kdf-time = 1

[profile.city-a.backup]
paths = [%q]
tag = ["nightly", "profile"]
exclude = ["*.part"]
host = "city-a"

[profile.city-a.forget]
keep-last = 1

[profile.city-a.verify]
report = [%q]
`, e.repo, pw, s.center, s.src, filepath.Join(s.report, "verify-{date}.json")))
	return s
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run runs courtbak with only HOME and PATH set, as a systemd unit would.
func (s *profileSite) run(extraEnv []string, args ...string) result {
	s.e.t.Helper()
	return s.e.runEnv(append([]string{"HOME=" + s.e.home, "PATH=" + os.Getenv("PATH")}, extraEnv...), args...)
}

func (s *profileSite) must(extraEnv []string, args ...string) result {
	s.e.t.Helper()
	r := s.run(extraEnv, args...)
	if r.code != 0 {
		s.e.t.Fatalf("courtbak %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

type snapJSON struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Tags  []string `json:"tags"`
	Paths []string `json:"paths"`
}

func (s *profileSite) snapshots(t *testing.T) []snapJSON {
	r := s.must(nil, "--config", s.config, "--profile", "city-a", "snapshots", "--json")
	var out []snapJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("snapshots --json %q: %v", r.stdout, err)
	}
	return out
}

func TestProfileReplacesTheWrapperScript(t *testing.T) {
	s := newProfileSite(t)
	cfg := []string{"--config", s.config, "--profile", "city-a"}
	s.must(nil, append(cfg, "init")...)

	// backup with no arguments: paths, tags, host and excludes from the
	// profile; the password from its password file.
	s.must(nil, append(cfg, "backup")...)
	snaps := s.snapshots(t)
	if len(snaps) != 1 || snaps[0].Host != "city-a" || !slices.Equal(snaps[0].Tags, []string{"nightly", "profile"}) ||
		!slices.Equal(snaps[0].Paths, []string{s.src}) {
		t.Fatalf("snapshot from the profile: %+v", snaps)
	}
	ls := s.must(nil, append(cfg, "ls", "latest")...).stdout
	if strings.Contains(ls, "take.part") || !strings.Contains(ls, s.src) {
		t.Fatalf("the profile's exclude was not applied:\n%s", ls)
	}

	// The command line beats the profile: --tag replaces the profile's
	// tags, and a PATH argument its paths.
	other := generate(t, 8, 1000)
	s.must(nil, append(cfg, "backup", "--tag", "manual", other)...)
	snaps = s.snapshots(t)
	if len(snaps) != 2 || !slices.Equal(snaps[1].Tags, []string{"manual"}) || !slices.Equal(snaps[1].Paths, []string{other}) {
		t.Fatalf("command line did not override the profile: %+v", snaps[1])
	}

	// The profile beats the environment; COURTBAK_PROFILE and
	// COURTBAK_CONFIG select it like the flags.
	elsewhere := filepath.Join(t.TempDir(), "not-this-one")
	env := []string{"COURTBAK_REPOSITORY=" + elsewhere, "COURTBAK_PROFILE=city-a", "COURTBAK_CONFIG=" + s.config}
	s.must(env, "backup")
	if _, err := os.Stat(elsewhere); err == nil {
		t.Fatal("COURTBAK_REPOSITORY won over the profile")
	}
	if n := len(s.snapshots(t)); n != 3 {
		t.Fatalf("%d snapshots after the third backup", n)
	}

	// Replication to the profile's replica names it by its label.
	r := s.must(nil, append(cfg, "replicate")...)
	if !strings.Contains(r.stdout, "Provincial center ("+s.center+"): copied") {
		t.Fatalf("replicate output does not name the replica by its label:\n%s", r.stdout)
	}

	// Retention from the profile's forget table.
	s.must(nil, append(cfg, "forget")...)
	if n := len(s.snapshots(t)); n != 2 { // keep-last 1 per host and paths: one of each path set
		t.Fatalf("%d snapshots after forget --keep-last 1 from the profile, want 2", n)
	}
	// forget recorded its removals in the snapshot log: the replica
	// catches up with that record.
	s.must(nil, append(cfg, "replicate")...)

	// verify writes its report under a name with the date.
	before := time.Now().Format("2006-01-02")
	s.must(nil, append(cfg, "verify")...)
	after := time.Now().Format("2006-01-02")
	names, _ := filepath.Glob(filepath.Join(s.report, "verify-*.json"))
	if len(names) != 1 || (filepath.Base(names[0]) != "verify-"+before+".json" && filepath.Base(names[0]) != "verify-"+after+".json") {
		t.Fatalf("reports written: %v, want verify-%s.json", names, before)
	}
	if fi, err := os.Stat(names[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("report mode: %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestProfileMistakesAreClearErrors(t *testing.T) {
	s := newProfileSite(t)
	cases := []struct {
		name   string
		config string
		args   []string
		want   string
	}{
		{"unknown key", "[profile.city-a.backup]\nexclud = [\"*.tmp\"]\n", []string{"--profile", "city-a", "snapshots"},
			"unknown key profile.city-a.backup.exclud: 'courtbak backup' has no --exclud option"},
		{"unknown profile", "[profile.city-a]\nrepo = \"/x\"\n", []string{"--profile", "city-b", "snapshots"},
			`no profile "city-b" (it defines: city-a)`},
		{"bad value", "[profile.city-a.forget]\nkeep-last = \"three\"\n", []string{"--profile", "city-a", "forget"},
			`profile.city-a.forget.keep-last = "three"`},
		{"profile.paths only for backup", "[profile.city-a.verify]\npaths = [\"/srv\"]\n", []string{"--profile", "city-a", "verify"},
			"unknown key profile.city-a.verify.paths"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			writeConfig(t, path, tc.config)
			r := s.run(nil, append([]string{"--config", path}, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, path) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %s and %q", r.code, r.stderr, path, tc.want)
			}
		})
	}
	// No configuration file at all.
	r := s.run([]string{"COURTBAK_CONFIG=" + filepath.Join(t.TempDir(), "missing.toml")}, "--profile", "city-a", "snapshots")
	if r.code != 1 || !strings.Contains(r.stderr, "missing.toml") {
		t.Fatalf("missing config: exit %d, %q", r.code, r.stderr)
	}
	// Commands that need no configuration work whatever COURTBAK_PROFILE
	// says: version, and shell completion.
	for _, args := range [][]string{{"version"}, {"completion", "bash"}, {"__complete", "sna"}} {
		if r := s.run([]string{"COURTBAK_PROFILE=nowhere", "COURTBAK_CONFIG=/nonexistent.toml"}, args...); r.code != 0 {
			t.Errorf("courtbak %v with a broken COURTBAK_PROFILE: exit %d, %s", args, r.code, r.stderr)
		}
	}
	// backup with neither PATHs nor a profile says what to give.
	r = s.e.run("backup")
	if r.code != 1 || !strings.Contains(r.stderr, "give the PATHs to back up") {
		t.Fatalf("backup without paths: exit %d, %q", r.code, r.stderr)
	}
}
