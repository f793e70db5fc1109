package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Awkward arguments and paths survive systemd's parsing: spaces, quotes,
// % (a specifier) and $ (a variable in a command line).
func TestQuotingSurvivesSystemd(t *testing.T) {
	j := Job{Profile: "city-a", Label: "Court 100% \"A\"", Name: "backup", OnCalendar: "*-*-* 01:30:00", User: "courtbak",
		Exec:           []string{"/usr/bin/true", "--config", "/etc/court bak/c.toml", "--tag", "50%$HOME"},
		ReadWritePaths: []string{"/var/cache/court bak"}, ReadOnlyPaths: []string{"/srv/rec%ordings"}}
	svc := j.Service()
	for _, want := range []string{
		`ExecStart=/usr/bin/true --config "/etc/court bak/c.toml" --tag 50%%$$HOME` + "\n",
		`ReadWritePaths="-/var/cache/court bak"` + "\n",
		`ReadOnlyPaths=-/srv/rec%%ordings` + "\n",
		`Description=courtbak backup of profile city-a (Court 100%% "A")` + "\n",
	} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	dir := t.TempDir()
	for name, text := range map[string]string{j.UnitName() + ".service": svc, j.UnitName() + ".timer": j.Timer()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", "./"+j.UnitName()+".service", "./"+j.UnitName()+".timer")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestTemplateNamesAndInstance(t *testing.T) {
	j := Job{Name: "verify", OnCalendar: "weekly", User: "courtbak", Exec: []string{"/usr/bin/courtbak", "--profile", "%i", "verify"}}
	if j.UnitName() != "courtbak-verify@" {
		t.Fatalf("template unit name %q", j.UnitName())
	}
	svc := j.Service()
	if !strings.Contains(svc, "ExecStart=/usr/bin/courtbak --profile %i verify\n") || !strings.Contains(svc, "of profile %i\n") {
		t.Fatalf("template service:\n%s", svc)
	}
}
