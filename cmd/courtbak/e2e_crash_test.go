package main_test

// Deterministic crash points: the real binary is killed (as kill -9
// would) at every named point of backup, forget, replicate and prune's
// mark and sweep (repo/crashpoint), every run. After each kill the
// repository verifies and every completed snapshot restores
// byte-identical; then the command runs again and finishes.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/repo/crashpoint"
)

// crashRun runs courtbak armed to die at point (POINT or POINT#N).
func crashRun(e *env, repoURL, point string, args ...string) result {
	e.t.Helper()
	environ := append(e.environ(), "COURTBAK_TEST_HOOKS=crash", "COURTBAK_TEST_CRASH_AT="+point)
	return e.runEnv(environ, append([]string{"--repo", repoURL}, args...)...)
}

// snapshotPaths lists the snapshots of repoURL with their source paths.
func snapshotPaths(t *testing.T, e *env, repoURL string) map[string][]string {
	t.Helper()
	r := e.runEnv(e.environ(), "--repo", repoURL, "snapshots", "--json")
	if r.code != 0 {
		t.Fatalf("snapshots at %s: exit %d %s", repoURL, r.code, r.stderr)
	}
	var snaps []struct {
		ID    string   `json:"id"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil {
		t.Fatalf("snapshots --json: %v %s", err, r.stdout)
	}
	out := map[string][]string{}
	for _, s := range snaps {
		out[s.ID] = s.Paths
	}
	return out
}

// intactEverywhere is the invariant after every kill: the repository at
// repoURL verifies, and every snapshot in it restores byte-identical to
// its source (sources do not change while a snapshot of them exists).
func intactEverywhere(t *testing.T, e *env, repoURL string, what string) {
	t.Helper()
	if r := e.runEnv(e.environ(), "--repo", repoURL, "verify", "--read-data"); r.code != 0 {
		t.Fatalf("%s: verify of %s: exit %d\n%s%s", what, repoURL, r.code, r.stdout, r.stderr)
	}
	for id, paths := range snapshotPaths(t, e, repoURL) {
		target := t.TempDir()
		if r := e.runEnv(e.environ(), "--repo", repoURL, "restore", id, "--target", target); r.code != 0 {
			t.Fatalf("%s: restore %s: exit %d\n%s", what, id[:8], r.code, r.stderr)
		}
		for _, p := range paths {
			compareTrees(t, p, restoredPath(target, p))
		}
	}
}

// crashCase sets up a repository and names the command whose points it
// kills.
type crashCase struct {
	points []string
	// setup prepares e and returns the arguments of the command to kill
	// and the repository whose invariant is checked (e.repo, or a replica).
	setup func(t *testing.T, e *env) (args []string, check string)
}

func crashSources(t *testing.T, e *env) (a, b string) {
	t.Helper()
	a = generate(t, 61, 1<<20)
	b = generate(t, 62, 1<<20)
	e.backup(a)
	return a, b
}

var crashCases = []crashCase{
	{
		points: []string{crashpoint.BackupPack, crashpoint.BackupIndex, crashpoint.BackupSnapshot, crashpoint.LogRecord},
		setup: func(t *testing.T, e *env) ([]string, string) {
			_, b := crashSources(t, e)
			return []string{"backup", b}, e.repo
		},
	},
	{
		points: []string{crashpoint.ForgetRemove, crashpoint.ForgetRemove + "#2"},
		setup: func(t *testing.T, e *env) ([]string, string) {
			a, _ := crashSources(t, e)
			e.backup(a)
			e.backup(a)
			return []string{"forget", "--keep-last", "1"}, e.repo
		},
	},
	{
		points: []string{crashpoint.ReplicateObject, crashpoint.ReplicateObject + "#3", crashpoint.ReplicateObject + "#9"},
		setup: func(t *testing.T, e *env) ([]string, string) {
			_, b := crashSources(t, e)
			e.backup(b)
			replica := filepath.Join(t.TempDir(), "replica")
			return []string{"replicate", "--to", replica}, replica
		},
	},
	{
		points: []string{crashpoint.PruneMarkRepack, crashpoint.PruneMarkIndex, crashpoint.PruneMarkPlan, crashpoint.PruneMarkSupersede,
			crashpoint.PruneSweepPack, crashpoint.PruneSweepPack + "#2", crashpoint.PruneSweepIndex},
		setup: func(t *testing.T, e *env) ([]string, string) {
			// A pack half used after the forget (repack), whole packs unused
			// (deleted), and the index files the mark supersedes.
			_, b := crashSources(t, e)
			e.backup(b)
			big := filepath.Join(b, "exhibit-copy.bin")
			if err := os.WriteFile(big, randomBytes(t, 700<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			// Stored in the same pack as big, and kept.
			if err := os.WriteFile(filepath.Join(b, "ruling.txt"), randomBytes(t, 20<<10)[7:], 0o644); err != nil {
				t.Fatal(err)
			}
			e.backup(b)
			if err := os.Remove(big); err != nil {
				t.Fatal(err)
			}
			e.backup(b)
			e.must("forget", "--keep-last", "1")
			return []string{"prune", "--grace", "0"}, e.repo
		},
	},
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7919 + i/251*31 + i>>9)
	}
	return b
}

func TestEveryCrashPointLeavesARepositoryThatVerifiesAndRestores(t *testing.T) {
	covered := map[string]bool{}
	for _, cc := range crashCases {
		for _, point := range cc.points {
			t.Run(strings.ReplaceAll(point, "#", "_"), func(t *testing.T) {
				e := newLocalEnv(t)
				e.init()
				args, check := cc.setup(t, e)
				r := crashRun(e, e.repo, point, args...)
				if !strings.Contains(r.stderr, "test crash point "+point) || r.code == 0 {
					t.Fatalf("courtbak %v did not die at %s: exit %d\n%s", args, point, r.code, r.stderr)
				}
				intactEverywhere(t, e, e.repo, "after the kill at "+point)
				if _, err := os.Stat(filepath.Join(check, "config")); err == nil && check != e.repo {
					intactEverywhere(t, e, check, "replica after the kill at "+point)
				} else if check != e.repo {
					// Killed before the config arrived: keys alone, which
					// no command takes for a repository.
					if r := e.runEnv(e.environ(), "--repo", check, "snapshots"); r.code != 10 {
						t.Fatalf("a replica without config: snapshots exit %d, want 10\n%s", r.code, r.stderr)
					}
				}
				// The command runs again to the end, and all is still well.
				e.must(args...)
				intactEverywhere(t, e, check, "after the re-run of "+point)
			})
			covered[strings.SplitN(point, "#", 2)[0]] = true
		}
	}
	for _, p := range crashpoint.All {
		if !covered[p] {
			t.Errorf("crash point %s is covered by no case", p)
		}
	}
	if !slices.Contains(crashpoint.All, crashpoint.PruneSweepIndex) {
		t.Error("the list of crash points lost the sweep's index deletions")
	}
}
