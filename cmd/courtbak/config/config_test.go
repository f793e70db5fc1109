package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var schema = Schema{
	Global: map[string]bool{"repo": true, "replica": true, "password-file": true, "cache-dir": true, "limit-upload": true, "json": true},
	Commands: map[string]map[string]bool{
		"backup": {"tag": true, "exclude": true, "host": true},
		"forget": {"keep-daily": true, "keep-tag": true, "prune": true, "grace": true},
		"verify": {"read-data-subset": true, "report": true},
	},
}

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "courtbak.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const full = `
[profile.city-a]
label = "City court of A"
repo = "s3:https://s3.city-a.example/courtbak/city-a"
password-file = "/etc/courtbak/password"
limit-upload = 20480
json = true

[[profile.city-a.replica]]
url = "s3:https://s3.center.example/court-a/repo"
label = "Provincial center"

[[profile.city-a.replica]]
url = "s3://dr-courtbak/city-a?profile=dr"
label = "DR pool"

[profile.city-a.backup]
paths = ["/srv/recordings", "/srv/casefiles"]
tag = ["nightly"]
exclude = ["*.part", "*.tmp"]

[profile.city-a.forget]
keep-daily = 14
keep-tag = ["legal-hold"]
prune = true
grace = "48h"

[profile.city-a.schedule]
backup = "*-*-* 01:30:00"
verify = "Sun *-*-* 06:00:00"
user = "courtbak"
on-failure = "courtbak-notify@%n.service"

[profile.center]
repo = "/srv/center"
replica = [{url = "/srv/dr", label = "DR pool"}]
`

func TestLoadReadsEveryKindOfKey(t *testing.T) {
	path := write(t, full)
	f, err := Load(path, schema)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"center", "city-a"}) {
		t.Fatalf("profiles %v", got)
	}
	p, err := f.Profile("city-a")
	if err != nil {
		t.Fatal(err)
	}
	wantOpts := Options{
		"repo":          {"s3:https://s3.city-a.example/courtbak/city-a"},
		"password-file": {"/etc/courtbak/password"},
		"limit-upload":  {"20480"},
		"json":          {"true"},
		"replica":       {"s3:https://s3.center.example/court-a/repo", "s3://dr-courtbak/city-a?profile=dr"},
	}
	if !reflect.DeepEqual(p.Options, wantOpts) {
		t.Errorf("options %v, want %v", p.Options, wantOpts)
	}
	wantForget := Options{"keep-daily": {"14"}, "keep-tag": {"legal-hold"}, "prune": {"true"}, "grace": {"48h"}}
	if !reflect.DeepEqual(p.Commands["forget"], wantForget) {
		t.Errorf("forget %v, want %v", p.Commands["forget"], wantForget)
	}
	if !reflect.DeepEqual(p.Commands["backup"], Options{"tag": {"nightly"}, "exclude": {"*.part", "*.tmp"}}) {
		t.Errorf("backup %v", p.Commands["backup"])
	}
	if !reflect.DeepEqual(p.Paths, []string{"/srv/recordings", "/srv/casefiles"}) {
		t.Errorf("paths %v", p.Paths)
	}
	if p.Label != "City court of A" || p.LabelOf("s3:https://s3.city-a.example/courtbak/city-a") != "City court of A" ||
		p.LabelOf("s3://dr-courtbak/city-a?profile=dr") != "DR pool" ||
		p.LabelOf("s3:https://s3.center.example/court-a/repo") != "Provincial center" || p.LabelOf("/elsewhere") != "" {
		t.Errorf("labels: %q %+v", p.Label, p.Replicas)
	}
	wantSched := Schedule{Calendar: map[string]string{"backup": "*-*-* 01:30:00", "verify": "Sun *-*-* 06:00:00"},
		User: "courtbak", OnFailure: "courtbak-notify@%n.service"}
	if !reflect.DeepEqual(p.Schedule, wantSched) {
		t.Errorf("schedule %+v", p.Schedule)
	}
	if v, ok := p.Value("forget", "grace"); !ok || v != "48h" {
		t.Errorf("Value(forget, grace) = %q, %v", v, ok)
	}
	if v, ok := p.Value("verify", "repo"); !ok || v != "s3:https://s3.city-a.example/courtbak/city-a" {
		t.Errorf("Value(verify, repo) = %q, %v", v, ok)
	}
	if _, ok := p.Value("verify", "report"); ok {
		t.Error("Value of an unset key reported as set")
	}
	// Inline replica tables read like [[…]] tables.
	c, _ := f.Profile("center")
	if !reflect.DeepEqual(c.Replicas, []Replica{{URL: "/srv/dr", Label: "DR pool"}}) {
		t.Errorf("center replicas %+v", c.Replicas)
	}
}

func TestLoadRefusesMistakesNamingKeyAndFile(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[profile.a.backup]\nexclud = [\"x\"]\n", "unknown key profile.a.backup.exclud: 'courtbak backup' has no --exclud option"},
		{"[profile.a]\nrepository = \"/x\"\n", "unknown key profile.a.repository"},
		{"[profile.a.restore]\ntarget = \"/x\"\n", "unknown key profile.a.restore"},
		{"[profiles.a]\nrepo = \"/x\"\n", `unknown key "profiles"`},
		{"[profile.a.schedule]\nbackpu = \"daily\"\n", "unknown key profile.a.schedule.backpu"},
		{"[profile.a.schedule]\nbackup = \" \"\n", "profile.a.schedule.backup is empty"},
		{"[profile.a]\nrepo = {x = 1}\n", "profile.a.repo: give a string, number, boolean or a list of them"},
		{"[profile.a]\nreplica = [\"/x\"]\n", "profile.a.replica must be a list of tables with url and label"},
		{"[profile.a]\nreplica = [{label = \"DR\"}]\n", "profile.a.replica[0] has no url"},
		{"[profile.a]\nreplica = [{url = \"/x\", lable = \"DR\"}]\n", "unknown key profile.a.replica[0].lable"},
		{"[profile.a.backup]\npaths = \"/srv\"\n", "profile.a.backup.paths must be a list of strings"},
		{"[profile.\"a b\"]\nrepo = \"/x\"\n", `profile name "a b"`},
		{"[profile.a]\nrepo = \"/x\n", "line 2"},
	} {
		path := write(t, tc.text)
		_, err := Load(path, schema)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming %s and containing %q", tc.text, err, path, tc.want)
		}
	}
}

func TestProfileNotFoundListsTheProfiles(t *testing.T) {
	f, err := Load(write(t, full), schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Profile("city-b"); err == nil || !strings.Contains(err.Error(), `no profile "city-b" (it defines: center, city-a)`) {
		t.Fatalf("error %v", err)
	}
}

func TestFindTakesTheFirstExistingFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
	if _, err := Find([]string{a, b}); err == nil || !strings.Contains(err.Error(), "give --config FILE") {
		t.Fatalf("no file: error %v", err)
	}
	if err := os.WriteFile(b, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Find([]string{a, b}); err != nil || got != b {
		t.Fatalf("Find = %q, %v", got, err)
	}
}

// A value TOML cannot parse is not echoed: it may be a password or an S3
// secret typed into the file, and the error reaches logs (the journal of
// a scheduled job).
func TestParseErrorsDoNotEchoValues(t *testing.T) {
	for _, text := range []string{
		"[profile.a]\npassword = hunterSecretValue\n",
		"[profile.a]\npassword-command = hunterSecretValue --flag\n",
		"[profile.a]\nrepo = \"/x\"\naws-secret = 'hunterSecretValue\n",
	} {
		path := write(t, text)
		_, err := Load(path, schema)
		if err == nil || strings.Contains(err.Error(), "hunterSecretValue") || !strings.Contains(err.Error(), "line ") || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming the file and line, without the value", text, err)
		}
	}
}
