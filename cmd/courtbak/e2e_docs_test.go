package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompletionLoadsInBash(t *testing.T) {
	out, err := exec.Command("bash", "-c", `source <("$1" completion bash) && complete -p courtbak`, "bash", binary).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-F __start_courtbak courtbak") {
		t.Fatalf("bash completion: %v\n%s", err, out)
	}
	// Completing a command name offers the commands.
	script := `source /usr/share/bash-completion/bash_completion
source <("$1" completion bash)
COMP_WORDS=(courtbak sna); COMP_CWORD=1; COMP_LINE="courtbak sna"; COMP_POINT=${#COMP_LINE}
__start_courtbak courtbak sna courtbak
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "-c", script, "bash", binary)
	cmd.Env = pathWithBinary()
	out, err = cmd.Output() // stderr: compopt's complaint outside a real completion
	if err != nil || strings.TrimSpace(string(out)) != "snapshots" {
		t.Fatalf("completing 'courtbak sna': %v\n%q", err, out)
	}
}

func TestCompletionLoadsInZshAndFish(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("zsh", "-f", "-c", `autoload -U compinit && compinit -u -d "$2/zcompdump" && source <("$1" completion zsh) && print -r -- $_comps[courtbak]`,
		"zsh", binary, dir).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_courtbak" {
		t.Fatalf("zsh completion: %v\n%s", err, out)
	}
	cmd := exec.Command("fish", "--no-config", "-c", `"$argv[1]" completion fish | source; complete -C "courtbak sna"`, binary)
	cmd.Env = append(pathWithBinary(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "snapshots") {
		t.Fatalf("fish completion of 'courtbak sna': %v\n%s", err, out)
	}
}

func TestManPagesRender(t *testing.T) {
	dir := t.TempDir()
	r := newLocalEnv(t).runEnv([]string{"SOURCE_DATE_EPOCH=1796256000"}, "gen-man", dir)
	if r.code != 0 {
		t.Fatalf("gen-man: exit %d: %s", r.code, r.stderr)
	}
	for _, name := range []string{"courtbak.1", "courtbak-backup.1", "courtbak-verify.1", "courtbak-report-verify.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("man", "-l", filepath.Join(dir, "courtbak-backup.1"))
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=100")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	text := string(out)
	for _, want := range []string{"courtbak-backup - Snapshot the given paths", "--exclude", "--profile", "Dec 2026"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "gen-man") {
		t.Error("the hidden gen-man command appears in the man pages")
	}
}

// pathWithBinary is the environment with courtbak on PATH: completion
// scripts call it by name.
func pathWithBinary() []string {
	return append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
}
