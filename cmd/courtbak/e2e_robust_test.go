package main_test

// The randomized robustness test (docs/testing.md): random sequences of
// backup, forget, prune, replicate, verify and restore across two hosts
// and two replicas, with kill -9 and damaged stored bytes, checking after
// every step that every snapshot still restores byte-identical.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/index"
)

// robustHost is one court's computer: its own cache and its source tree.
type robustHost struct {
	name string
	env  *env
	src  string
	n    int // files written so far, for new names
}

// robust is the state of one randomized run.
type robust struct {
	t        *testing.T
	rng      *rand.Rand
	seed     uint64
	repo     string
	replicas []string
	hosts    []*robustHost
	// golden holds, per snapshot id, a copy of its source as backed up;
	// order is the snapshots' order per host, oldest first.
	golden map[string]string
	order  map[string][]string
	steps  int
}

func (s *robust) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, step %d: %s", s.seed, s.steps, fmt.Sprintf(format, args...))
}

// robustBudget is how long the run lasts: about a minute, or
// COURTBAK_ROBUST_LONG (a duration) for hours.
func robustBudget(t *testing.T) time.Duration {
	v := os.Getenv("COURTBAK_ROBUST_LONG")
	if v == "" {
		return 50 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("COURTBAK_ROBUST_LONG=%q: %v", v, err)
	}
	return d
}

func TestRandomizedRobustness(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("COURTBAK_ROBUST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("COURTBAK_ROBUST_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with COURTBAK_ROBUST_SEED=%d)", seed, seed)
	s := &robust{t: t, rng: rand.New(rand.NewPCG(seed, 1)), seed: seed, golden: map[string]string{}, order: map[string][]string{}}
	base := newLocalEnv(t)
	s.repo = base.repo
	base.init()
	for i := range 2 {
		s.replicas = append(s.replicas, filepath.Join(t.TempDir(), fmt.Sprintf("replica-%d", i+1)))
	}
	for _, name := range []string{"city-a", "city-b"} {
		e := *base
		e.home = t.TempDir()
		h := &robustHost{name: name, env: &e, src: filepath.Join(t.TempDir(), name)}
		if err := os.MkdirAll(h.src, 0o755); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			s.writeFile(h)
		}
		s.hosts = append(s.hosts, h)
	}

	deadline := time.Now().Add(robustBudget(t))
	counts := map[string]int{}
	for s.steps = 1; time.Now().Before(deadline) || s.steps <= 12; s.steps++ {
		step := s.pick()
		counts[step]++
		t.Logf("step %d: %s", s.steps, step) // the sequence, should a later step fail
		s.run(step)
		s.restoreAll()
	}
	// At the end, with everything replicated, every copy verifies.
	h := s.hosts[0]
	for _, rep := range s.replicas {
		h.env.must("replicate", "--to", rep)
		if r := h.env.runEnv(h.env.environ(), "--repo", rep, "verify", "--read-data"); r.code != 0 {
			s.fatalf("verify of replica %s: exit %d\n%s%s\n%s", rep, r.code, r.stdout, r.stderr, s.indexReport(rep, r.stderr))
		}
	}
	s.verify()
	t.Logf("%d steps: %v", s.steps-1, counts)
}

// pick chooses the next step.
func (s *robust) pick() string {
	steps := []string{"backup", "backup", "backup", "backup-kill", "forget", "prune", "prune-kill",
		"replicate", "replicate-kill", "damage", "verify"}
	return steps[s.rng.IntN(len(steps))]
}

func (s *robust) host() *robustHost { return s.hosts[s.rng.IntN(len(s.hosts))] }

// writeFile adds or rewrites a file of the host's source.
func (s *robust) writeFile(h *robustHost) {
	name := fmt.Sprintf("hearing-%03d.bin", s.rng.IntN(h.n+1))
	if s.rng.IntN(3) == 0 {
		name = fmt.Sprintf("hearing-%03d.bin", h.n)
		h.n++
	}
	data := make([]byte, 1+s.rng.IntN(300<<10))
	for i := range data {
		data[i] = byte(s.rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(h.src, name), data, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// change changes the host's source as a day in court would.
func (s *robust) change(h *robustHost) {
	for range 1 + s.rng.IntN(3) {
		s.writeFile(h)
	}
	if entries, _ := os.ReadDir(h.src); len(entries) > 3 && s.rng.IntN(4) == 0 {
		_ = os.Remove(filepath.Join(h.src, entries[s.rng.IntN(len(entries))].Name()))
	}
}

// snapshots lists the primary's snapshot ids.
func (s *robust) snapshots() map[string]bool {
	out := map[string]bool{}
	for id := range snapshotPaths(s.t, s.hosts[0].env, s.repo) {
		out[id] = true
	}
	return out
}

// killed runs courtbak and kills it: at a random crash point of points,
// or after a random delay.
func (s *robust) killed(h *robustHost, points []string, args ...string) {
	s.t.Helper()
	environ := h.env.environ()
	how := "after a random delay"
	if len(points) > 0 && s.rng.IntN(2) == 0 {
		how = fmt.Sprintf("%s#%d", points[s.rng.IntN(len(points))], 1+s.rng.IntN(3))
		environ = append(environ, "COURTBAK_TEST_HOOKS=crash", "COURTBAK_TEST_CRASH_AT="+how)
	}
	s.t.Logf("  %v on %s, killed %s", args, h.name, how)
	cmd := exec.Command(binary, append([]string{"--repo", s.repo}, args...)...)
	cmd.Env = environ
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(20+s.rng.IntN(600)) * time.Millisecond):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (s *robust) run(step string) {
	h := s.host()
	before := s.snapshots()
	switch step {
	case "backup", "backup-kill":
		s.change(h)
		gold := filepath.Join(s.t.TempDir(), "golden")
		if out, err := exec.Command("cp", "-a", h.src, gold).CombinedOutput(); err != nil {
			s.t.Fatalf("cp: %v %s", err, out)
		}
		if step == "backup" {
			h.env.must("backup", "--host", h.name, h.src)
		} else {
			s.killed(h, []string{crashpoint.BackupPack, crashpoint.BackupIndex, crashpoint.BackupSnapshot, crashpoint.LogRecord},
				"backup", "--host", h.name, h.src)
		}
		for id := range s.snapshots() {
			if !before[id] {
				s.golden[id] = gold
				s.order[h.name] = append(s.order[h.name], id)
			}
		}
		if step == "backup" && len(s.snapshots()) != len(before)+1 {
			s.fatalf("a backup made %d snapshots", len(s.snapshots())-len(before))
		}
	case "forget":
		keep := 2 + s.rng.IntN(2)
		h.env.must("forget", "--keep-last", strconv.Itoa(keep))
		now := s.snapshots()
		for name, ids := range s.order {
			for i, id := range ids {
				if want := i >= len(ids)-keep; now[id] != want {
					s.fatalf("forget --keep-last %d: snapshot %s of %s (%d of %d) present %v", keep, id[:8], name, i+1, len(ids), now[id])
				}
			}
			s.order[name] = ids[max(0, len(ids)-keep):]
		}
		return
	case "prune":
		h.env.must("prune", "--grace", "0")
	case "prune-kill":
		s.killed(h, []string{crashpoint.PruneMarkRepack, crashpoint.PruneMarkIndex, crashpoint.PruneMarkPlan,
			crashpoint.PruneMarkSupersede, crashpoint.PruneSweepPack, crashpoint.PruneSweepIndex}, "prune", "--grace", "0")
		s.verify()
	case "replicate", "replicate-kill":
		rep := s.replicas[s.rng.IntN(len(s.replicas))]
		s.t.Logf("  to %s", filepath.Base(rep))
		if step == "replicate" {
			h.env.must("replicate", "--to", rep)
			if r := h.env.runEnv(h.env.environ(), "--repo", rep, "verify"); r.code != 0 {
				s.fatalf("verify of replica %s: exit %d\n%s%s\n%s", rep, r.code, r.stdout, r.stderr, s.indexReport(rep, r.stderr))
			}
		} else {
			s.killed(h, []string{crashpoint.ReplicateObject}, "replicate", "--to", rep)
		}
	case "damage":
		s.damage(h)
	case "verify":
		s.verify()
	}
	// Nothing but forget removes a snapshot.
	now := s.snapshots()
	for id := range before {
		if !now[id] {
			s.fatalf("%s removed snapshot %s", step, id[:8])
		}
	}
}

// damage flips a byte of an object that a replica holds intact, then
// repairs it: verify must find it and put the intact copy back.
func (s *robust) damage(h *robustHost) {
	var candidates []string
	for _, rep := range s.replicas {
		_ = filepath.WalkDir(rep, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") || d.Name() == "config" {
				return nil
			}
			rel, _ := filepath.Rel(rep, p)
			if fi, err := os.Stat(filepath.Join(s.repo, rel)); err == nil && fi.Size() > 0 {
				candidates = append(candidates, rel)
			}
			return nil
		})
	}
	if len(candidates) == 0 {
		return
	}
	slices.Sort(candidates)
	rel := candidates[s.rng.IntN(len(candidates))]
	s.t.Logf("  flipping a bit of %s", rel)
	p := filepath.Join(s.repo, rel)
	vfyEdit(s.t, p, func(b []byte) []byte { b[s.rng.IntN(len(b))] ^= 1 << s.rng.IntN(8); return b })
	args := []string{"verify", "--read-data", "--repair"}
	for _, rep := range s.replicas {
		args = append([]string{"--replica", rep}, args...)
	}
	r := h.env.run(args...)
	if !strings.Contains(r.stdout, "repaired ") {
		s.fatalf("a flipped byte in %s was not repaired: exit %d\n%s%s", rel, r.code, r.stdout, r.stderr)
	}
	s.verify()
}

// verify checks the primary with the password: it must be intact.
func (s *robust) verify() {
	s.t.Helper()
	if r := s.hosts[0].env.run("verify", "--read-data"); r.code != 0 {
		s.fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// restoreAll restores every snapshot from the primary and compares it
// with the copy of its source taken when it was made.
func (s *robust) restoreAll() {
	s.t.Helper()
	h := s.hosts[s.rng.IntN(len(s.hosts))]
	for id, paths := range snapshotPaths(s.t, h.env, s.repo) {
		gold, ok := s.golden[id]
		if !ok {
			s.fatalf("snapshot %s is none this test made", id[:8])
		}
		target := s.t.TempDir()
		if r := h.env.run("restore", id, "--target", target); r.code != 0 {
			s.fatalf("restore %s: exit %d\n%s", id[:8], r.code, r.stderr)
		}
		compareTrees(s.t, gold, restoredPath(target, paths[0]))
		if s.t.Failed() {
			s.fatalf("snapshot %s does not restore byte-identical", id[:8])
		}
		_ = os.RemoveAll(target)
	}
}

// indexReport describes how the index files of a replica relate to the
// primary's, for a failure message: which exist where, which supersede
// which, and which list the packs named in problems.
func (s *robust) indexReport(replica, problems string) string {
	ctx := context.Background()
	load := func(dir string) map[string]*index.File {
		be, err := remote.OpenLocal(dir)
		if err != nil {
			return nil
		}
		r, err := repo.Open(ctx, be, []byte(s.hosts[0].env.password), repo.Options{})
		if err != nil {
			return nil
		}
		files, _ := r.LoadIndexFiles(ctx)
		return files
	}
	prim, rep := load(s.repo), load(replica)
	var b strings.Builder
	supersededBy := func(files map[string]*index.File, name string) []string {
		var by []string
		for n, f := range files {
			for _, x := range f.Supersedes {
				if x.String() == name {
					by = append(by, n[:8])
				}
			}
		}
		return by
	}
	names := map[string]bool{}
	for n := range prim {
		names[n] = true
	}
	for n := range rep {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		f := prim[n]
		if f == nil {
			f = rep[n]
		}
		var packs []string
		for _, p := range f.Packs {
			if strings.Contains(problems, p.ID.String()[:8]) {
				packs = append(packs, p.ID.String()[:8])
			}
		}
		fmt.Fprintf(&b, "index %s: primary %v replica %v, %d packs (problem packs %v), supersedes %d, superseded at primary by %v, at replica by %v\n",
			n[:8], prim[n] != nil, rep[n] != nil, len(f.Packs), packs, len(f.Supersedes), supersededBy(prim, n), supersededBy(rep, n))
	}
	return b.String()
}
