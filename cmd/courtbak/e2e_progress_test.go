package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/testdata/gen"
)

// On a terminal, backup draws a bar with files and bytes done of the
// totals the scan found, the rate and the ETA, in MiB as the summary; a
// cron run (no terminal) draws nothing. script(1) gives the binary a
// pseudo-terminal.
func TestBackupProgressOnATerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	e := newLocalEnv(t)
	e.init()
	src := t.TempDir()
	for i, name := range []string{"room1.mp4", "room2.mp4", "room3.mp4"} {
		if err := gen.WriteMedia(filepath.Join(src, name), 16<<20, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	// The upload limit stretches the run over a few seconds, so that the
	// bar is drawn more than once (it redraws at most five times a second).
	cmdline := binary + " --repo " + e.repo + " --limit-upload 16384 backup " + src
	cmd := exec.Command(scriptBin, "-q", "-e", "-c", cmdline, "/dev/null")
	cmd.Env = append(e.environ(), "TERM=dumb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("backup on a terminal: %v\n%s", err, out)
	}
	text := strings.ReplaceAll(string(out), "\r", "\n")
	frame := regexp.MustCompile(`backup: (\d+)/3 files +\d+% .*\(([\d.]+)/48 MiB, [\d.]+ [KM]iB/s\) \[\d+s:\d+s\]`)
	frames := frame.FindAllStringSubmatch(text, -1)
	if len(frames) < 2 {
		t.Fatalf("want at least two progress frames with files and MiB of the totals, rate and ETA; got:\n%s", text)
	}
	if strings.Contains(text, " MB/") || strings.Contains(text, " MB)") {
		t.Errorf("the bar uses MB, not MiB:\n%s", text)
	}
	if !strings.Contains(text, "Processed 48.00 MiB") {
		t.Errorf("summary:\n%s", text)
	}
	// Without a terminal: no bar.
	src2 := filepath.Join(t.TempDir(), "more")
	if err := os.MkdirAll(src2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := gen.WriteMedia(filepath.Join(src2, "x.mp4"), 1<<20, 9); err != nil {
		t.Fatal(err)
	}
	r := e.must("backup", src2)
	if strings.Contains(r.stderr, "backup:") || strings.Contains(r.stderr, "MiB") {
		t.Errorf("progress drawn without a terminal: %q", r.stderr)
	}
}
