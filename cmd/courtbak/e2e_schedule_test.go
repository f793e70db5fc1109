package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// systemdVerify checks unit files with systemd-analyze verify, which
// prints a line for every unknown key or value it cannot parse.
func systemdVerify(t *testing.T, dir string, units ...string) {
	t.Helper()
	args := []string{"verify", "--man=no"}
	for _, u := range units {
		args = append(args, "./"+u)
	}
	cmd := exec.Command("systemd-analyze", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(units, " "), err, out)
	}
}

func TestScheduleInstallListRemove(t *testing.T) {
	s := newProfileSite(t)
	units := t.TempDir()
	writeConfig(t, s.config, readText(t, s.config)+`
[profile.city-a.schedule]
backup = "*-*-* 01:30:00"
verify = "Sun *-*-* 06:00:00"
forget = "daily"
on-failure = "courtbak-notify@%n.service"
`)
	cfg := []string{"--config", s.config, "--profile", "city-a"}
	r := s.must(nil, append(cfg, "schedule", "install", "--unit-dir", units)...)
	if !strings.Contains(r.stdout, "systemctl enable --now courtbak-city-a-backup.timer courtbak-city-a-forget.timer courtbak-city-a-verify.timer") {
		t.Fatalf("install output:\n%s", r.stdout)
	}
	names := []string{"courtbak-city-a-backup.service", "courtbak-city-a-backup.timer", "courtbak-city-a-forget.service",
		"courtbak-city-a-forget.timer", "courtbak-city-a-verify.service", "courtbak-city-a-verify.timer"}
	systemdVerify(t, units, names...)

	service := func(name string) string { return readText(t, filepath.Join(units, name)) }
	backup := service("courtbak-city-a-backup.service")
	for _, want := range []string{
		"Description=courtbak backup of profile city-a (City court of A)",
		"ExecStart=" + binary + " --config " + s.config + " --profile city-a backup\n",
		"User=courtbak\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "PrivateTmp=yes\n", "ProtectHome=read-only\n",
		"ReadOnlyPaths=-" + s.src + "\n",        // what is backed up
		"ReadWritePaths=-" + s.e.repo + "\n",    // the local repository
		"ReadWritePaths=-" + s.center + "\n",    // and its local replica
		"ReadWritePaths=-/var/cache/courtbak\n", // the cache
		"Environment=COURTBAK_CACHE_DIR=/var/cache/courtbak\n",
		"OnFailure=courtbak-notify@%n.service\n",      // % kept: a specifier
		"CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n", // read, never write, what it does not own
	} {
		if !strings.Contains(backup, want) {
			t.Errorf("backup service lacks %q:\n%s", want, backup)
		}
	}
	if verify := service("courtbak-city-a-verify.service"); !strings.Contains(verify, "ReadWritePaths=-"+s.report+"\n") ||
		!strings.Contains(verify, "IOSchedulingClass=idle") || !strings.Contains(verify, "CapabilityBoundingSet=\n") {
		t.Errorf("verify service:\n%s", verify)
	}
	if timer := service("courtbak-city-a-verify.timer"); !strings.Contains(timer, "OnCalendar=Sun *-*-* 06:00:00\n") ||
		!strings.Contains(timer, "Persistent=true") || !strings.Contains(timer, "WantedBy=timers.target") {
		t.Errorf("verify timer:\n%s", timer)
	}

	// list, as text and JSON.
	var listed []struct{ Profile, Job, On_calendar, Timer string }
	r = s.must(nil, "--config", s.config, "schedule", "list", "--unit-dir", units, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 3 ||
		listed[0].Job != "backup" || listed[0].On_calendar != "*-*-* 01:30:00" || listed[2].Timer != "courtbak-city-a-verify.timer" {
		t.Fatalf("schedule list --json: %v %+v\n%s", err, listed, r.stdout)
	}

	// Installing again after dropping a job from the schedule removes
	// that job's units, and the link that enabled its timer.
	if err := os.MkdirAll(filepath.Join(units, "timers.target.wants"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(units, "timers.target.wants", "courtbak-city-a-forget.timer")
	if err := os.Symlink("../courtbak-city-a-forget.timer", link); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, s.config, strings.Replace(readText(t, s.config), "forget = \"daily\"\n", "", 1))
	r = s.must(nil, append(cfg, "schedule", "install", "--unit-dir", units)...)
	if !strings.Contains(r.stdout, "removed courtbak-city-a-forget.service, courtbak-city-a-forget.timer") {
		t.Fatalf("reinstall output:\n%s", r.stdout)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("the enabling link of a removed timer is still there: %v", err)
	}

	// A unit courtbak did not write is never replaced or removed.
	foreign := filepath.Join(units, "courtbak-city-a-verify.timer")
	if err := os.WriteFile(foreign, []byte("[Timer]\nOnCalendar=hourly\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = s.run(nil, append(cfg, "schedule", "install", "--unit-dir", units)...)
	if r.code != 1 || !strings.Contains(r.stderr, "was not written by courtbak") {
		t.Fatalf("install over a foreign unit: exit %d, %q", r.code, r.stderr)
	}

	r = s.must(nil, append(cfg, "schedule", "remove", "--unit-dir", units)...)
	left, _ := os.ReadDir(units)
	var leftNames []string
	for _, e := range left {
		leftNames = append(leftNames, e.Name())
	}
	if !slices.Equal(leftNames, []string{"courtbak-city-a-verify.timer", "timers.target.wants"}) {
		t.Fatalf("after remove: %v (output %q)", leftNames, r.stdout)
	}
	if r := s.run(nil, append(cfg, "schedule", "remove", "--unit-dir", units)...); r.code != 1 || !strings.Contains(r.stderr, "no units of profile city-a") {
		t.Fatalf("second remove: exit %d, %q", r.code, r.stderr)
	}

	// A profile without a schedule says how to add one.
	bare := filepath.Join(t.TempDir(), "bare.toml")
	writeConfig(t, bare, "[profile.city-b]\nrepo = \"/srv/b\"\n")
	r = s.run(nil, "--config", bare, "--profile", "city-b", "schedule", "install", "--unit-dir", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "profile city-b has no schedule: add a [profile.city-b.schedule] table") {
		t.Fatalf("install without a schedule: exit %d, %q", r.code, r.stderr)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The packages ship cmd/courtbak/dist: template units that must be what
// the binary writes, and an example configuration whose every profile
// loads and installs valid units.
func TestShippedUnitsAndExampleConfig(t *testing.T) {
	e := newLocalEnv(t)
	fresh := t.TempDir()
	if r := e.runEnv(nil, "schedule", "install", "--template", "--unit-dir", fresh); r.code != 0 {
		t.Fatalf("install --template: %s", r.stderr)
	}
	shipped, _ := filepath.Glob(filepath.Join("dist", "systemd", "*"))
	if len(shipped) != 10 {
		t.Fatalf("shipped units: %v", shipped)
	}
	check := t.TempDir()
	var instances []string
	for _, p := range shipped {
		want, _ := os.ReadFile(filepath.Join(fresh, filepath.Base(p)))
		got, _ := os.ReadFile(p)
		if string(got) != string(want) {
			t.Errorf("%s differs from what 'courtbak schedule install --template' writes: regenerate it", p)
		}
		// systemd-analyze verify wants the program to exist: point the
		// copy at one that does.
		text := strings.ReplaceAll(string(got), "/usr/bin/courtbak", binary)
		if err := os.WriteFile(filepath.Join(check, filepath.Base(p)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		instances = append(instances, strings.Replace(filepath.Base(p), "@.", "@city-a.", 1))
	}
	systemdVerify(t, check, instances...)

	example := filepath.Join("dist", "courtbak.toml")
	profiles := []string{"city-a", "center-city-a", "center-check-a", "dr-city-a", "retention-city-a"}
	units := t.TempDir()
	for _, p := range profiles {
		if r := e.runEnv(nil, "--config", example, "--profile", p, "schedule", "install", "--unit-dir", units); r.code != 0 {
			t.Fatalf("example profile %s: %s", p, r.stderr)
		}
	}
	all, _ := filepath.Glob(filepath.Join(units, "courtbak-*"))
	var names []string
	for _, u := range all {
		names = append(names, filepath.Base(u))
	}
	if len(names) != 14 {
		t.Fatalf("units of the example profiles: %v", names)
	}
	systemdVerify(t, units, names...)
}

// Units for a user's own systemd instance run as that user: no User=, no
// capabilities, in ~/.config/systemd/user.
func TestScheduleInstallUserUnits(t *testing.T) {
	s := newProfileSite(t)
	writeConfig(t, s.config, readText(t, s.config)+"\n[profile.city-a.schedule]\nbackup = \"daily\"\n")
	home := t.TempDir()
	r := s.e.runEnv([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH")},
		"--config", s.config, "--profile", "city-a", "schedule", "install", "--user")
	if r.code != 0 || !strings.Contains(r.stdout, "systemctl --user enable --now courtbak-city-a-backup.timer") {
		t.Fatalf("install --user: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := filepath.Join(home, ".config", "systemd", "user")
	svc := readText(t, filepath.Join(dir, "courtbak-city-a-backup.service"))
	if strings.Contains(svc, "User=") || strings.Contains(svc, "Capabilit") || !strings.Contains(svc, "ProtectSystem=strict") {
		t.Fatalf("user service:\n%s", svc)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--user", "--man=no", "./courtbak-city-a-backup.service", "./courtbak-city-a-backup.timer")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify --user: %v\n%s", err, out)
	}
	// A system user in the schedule makes no sense for user units.
	writeConfig(t, s.config, readText(t, s.config)+"user = \"courtbak\"\n")
	r = s.e.runEnv([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH")},
		"--config", s.config, "--profile", "city-a", "schedule", "install", "--user")
	if r.code != 1 || !strings.Contains(r.stderr, "is for system units") {
		t.Fatalf("install --user with schedule.user: exit %d, %q", r.code, r.stderr)
	}
}
