package main_test

// End-to-end tests of damage that verify must see (keyless too), report
// honestly, and that must not block what is intact.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// dmgHashName is the name a stored object with these bytes has.
func dmgHashName(b []byte) string {
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// dmgConfig rewrites a field of a local repository's config with fn.
func dmgConfig(t *testing.T, repoDir string, fn func(map[string]any)) {
	t.Helper()
	vfyEdit(t, filepath.Join(repoDir, "config"), func(b []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		out, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// dmgFlipSecrets flips one bit of the config's sealed secrets, keeping the
// config valid JSON with valid base64: only the key can tell.
func dmgFlipSecrets(t *testing.T, repoDir string) {
	t.Helper()
	dmgConfig(t, repoDir, func(m map[string]any) {
		sec, err := base64.StdEncoding.DecodeString(m["secrets"].(string))
		if err != nil {
			t.Fatal(err)
		}
		sec[len(sec)/2] ^= 0x01
		m["secrets"] = base64.StdEncoding.EncodeToString(sec)
	})
}

func TestKeylessVerifySeesARepositoryThatCannotBeOpened(t *testing.T) {
	t.Run("all keys deleted", func(t *testing.T) {
		e, _ := vfyRepo(t, 31)
		for _, k := range vfyObjects(t, e.repo, "keys") {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
		}
		vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 1, "no key files", "PROBLEMS FOUND")
	})
	t.Run("flipped byte in the sealed secrets", func(t *testing.T) {
		e, _ := vfyRepo(t, 32)
		dmgFlipSecrets(t, e.repo)
		vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 1, "config", "PROBLEMS FOUND")
		// With the password the repository cannot be opened; it says why.
		r := e.run("snapshots")
		if r.code == 0 || !strings.Contains(r.stderr, "config") {
			t.Errorf("snapshots on a damaged config: exit %d, %s", r.code, r.stderr)
		}
	})
	t.Run("config without a check differs from the replica's", func(t *testing.T) {
		// A repository made before configs carried their own check.
		e, _ := vfyRepo(t, 33)
		dmgConfig(t, e.repo, func(m map[string]any) { delete(m, "check") })
		replica := vfyCopyTree(t, e.repo)
		vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 0)
		dmgFlipSecrets(t, e.repo)
		vfyExpect(t, vfyNoPassword(e, "--replica", replica, "verify", "--keyless"), 1, "config differs", "PROBLEMS FOUND")
	})
	t.Run("key file that does not parse", func(t *testing.T) {
		e, _ := vfyRepo(t, 34)
		// A key file whose name matches its bytes but which is no key:
		// only parsing tells.
		junk := []byte(`{"not":"a key"}`)
		name := dmgHashName(junk)
		p := filepath.Join(e.repo, "keys", name)
		if err := os.WriteFile(p, junk, 0o400); err != nil {
			t.Fatal(err)
		}
		vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 1, "keys/"+name, "key file")
	})
	t.Run("key sets differ between copies", func(t *testing.T) {
		e, _ := vfyRepo(t, 35)
		replica := vfyCopyTree(t, e.repo)
		for _, k := range vfyObjects(t, e.repo, "keys") {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
		}
		r := vfyNoPassword(e, "--replica", replica, "verify", "--keyless")
		vfyExpect(t, r, 1, "no key files", "PROBLEMS FOUND")
	})
}

func TestVerifySaysWhatWasNotRead(t *testing.T) {
	e, _ := vfyRepo(t, 36)
	replica := vfyCopyTree(t, e.repo)
	vfyFlip(t, vfyObjects(t, e.repo, "data")[0])
	r := e.run("--replica", replica, "verify", "--repair", "--json")
	vfyExpect(t, r, 0)
	var v struct {
		Verdict string `json:"verdict"`
		Scope   struct {
			Complete  bool   `json:"complete"`
			Unchecked string `json:"unchecked"`
		} `json:"scope"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Scope.Complete || !strings.Contains(v.Scope.Unchecked, "--read-data") {
		t.Errorf("scope of a structure-only run: %+v", v.Scope)
	}
	r = e.run("--replica", replica, "verify", "--repair")
	vfyExpect(t, r, 0, "INTACT AS FAR AS CHECKED", "pack contents not read", "--read-data")
	report := filepath.Join(t.TempDir(), "r.md")
	vfyExpect(t, e.run("verify", "--report", report), 0)
	if md := string(vfyRead(t, report)); !strings.Contains(md, "AS FAR AS CHECKED") {
		t.Errorf("markdown report does not say what was not read:\n%.800s", md)
	}
	// Reading everything finds the flipped byte.
	vfyExpect(t, e.run("verify", "--read-data"), 1, "PROBLEMS FOUND")
}

func TestSubsetReadsAtLeastOnePackAndReportsCoverage(t *testing.T) {
	e, _ := vfyRepo(t, 37)
	packs := len(vfyObjects(t, e.repo, "data"))
	// 0.001% of the id space holds no pack of a small repository on any day.
	for _, args := range [][]string{{"verify", "--keyless"}, {"verify"}} {
		var r result
		if len(args) == 2 {
			r = vfyNoPassword(e, append(args, "--read-data-subset", "0.001%", "--json")...)
		} else {
			r = e.run(append(args, "--read-data-subset", "0.001%", "--json")...)
		}
		vfyExpect(t, r, 0)
		var v struct {
			Scope struct {
				Complete  bool   `json:"complete"`
				Unchecked string `json:"unchecked"`
			} `json:"scope"`
			Checked struct {
				Packs         int   `json:"packs"`
				PacksRead     int   `json:"packs_read"`
				PackBytes     int64 `json:"pack_bytes"`
				PackBytesRead int64 `json:"pack_bytes_read"`
			} `json:"checked"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatal(err)
		}
		c := v.Checked
		if c.Packs != packs || c.PacksRead < 1 || c.PackBytesRead <= 0 || c.PackBytes < c.PackBytesRead || v.Scope.Complete != (c.PacksRead == c.Packs) {
			t.Errorf("%v: coverage %+v of %d packs, scope %+v", args, c, packs, v.Scope)
		}
		r = vfyNoPassword(e, "verify", "--keyless", "--read-data-subset", "0.001%")
		vfyExpect(t, r, 0, "packs read", "AS FAR AS CHECKED")
	}
}

// dmgIndexRepo makes a repository with two snapshots, each with its own
// index file, and returns the index file the first backup wrote.
func dmgIndexRepo(t *testing.T) (e *env, src1, src2 string, s1, s2 backupSummary, first string) {
	t.Helper()
	e = newLocalEnv(t)
	e.init()
	src1 = generate(t, 41, 3<<20)
	s1 = e.backup(src1)
	firsts := vfyObjects(t, e.repo, "index")
	if len(firsts) != 1 {
		t.Fatalf("%d index files after one backup", len(firsts))
	}
	src2 = generate(t, 42, 2<<20)
	s2 = e.backup(src2)
	return e, src1, src2, s1, s2, firsts[0]
}

func TestDamagedIndexFileDoesNotBlockTheRest(t *testing.T) {
	e, src1, src2, s1, s2, first := dmgIndexRepo(t)
	replica := vfyCopyTree(t, e.repo)
	vfyFlip(t, first)
	name := vfyObjectName(first)
	e.home = t.TempDir() // a host whose cache never held the index file

	// restore, ls and dump re-index the packs no intact index lists.
	target := t.TempDir()
	r := e.must("restore", s1.SnapshotID[:8], "--target", target)
	if !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, "indexed again") {
		t.Errorf("restore does not name the damaged index file and what it did:\n%s", r.stderr)
	}
	compareTrees(t, src1, restoredPath(target, src1))
	e.must("ls", s1.SnapshotID[:8])
	var oneFile string
	_ = filepath.WalkDir(src1, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && oneFile == "" {
			oneFile = p
		}
		return err
	})
	if got, want := e.must("dump", s1.SnapshotID[:8], oneFile).stdout, string(vfyRead(t, oneFile)); got != want {
		t.Errorf("dump %s differs from the original", oneFile)
	}

	// The nightly backup keeps working: what the lost index listed is
	// stored again, and the new snapshot restores.
	s3 := e.backup(src1)
	if s3.BytesAdded == 0 {
		t.Errorf("backup added nothing though the index of its data is damaged: %+v", s3)
	}
	target = t.TempDir()
	e.must("restore", s3.SnapshotID[:8], "--target", target)
	compareTrees(t, src1, restoredPath(target, src1))
	target = t.TempDir()
	e.must("restore", s2.SnapshotID[:8], "--target", target)
	compareTrees(t, src2, restoredPath(target, src2))

	// prune refuses to work from a damaged index: it would take the packs
	// it lists for garbage.
	if r := e.run("prune"); r.code == 0 || !strings.Contains(r.stderr, "index") {
		t.Errorf("prune with a damaged index file: exit %d\n%s", r.code, r.stderr)
	}

	// With a replica the intact copy is read instead, by backup too.
	e.home = t.TempDir()
	r = e.must("--replica", replica, "backup", src2)
	if !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, replica) {
		t.Errorf("backup --replica does not say it read %s from the replica:\n%s", name, r.stderr)
	}
	target = t.TempDir()
	r = e.must("--replica", replica, "restore", s1.SnapshotID[:8], "--target", target)
	if strings.Contains(r.stderr, "indexed again") {
		t.Errorf("restore re-indexed though the replica holds the index file intact:\n%s", r.stderr)
	}
	compareTrees(t, src1, restoredPath(target, src1))

	// verify --repair puts the intact index file back; then all is well.
	// (The replica lacks the backups made since it was copied: exit 1.)
	vfyExpect(t, e.run("--replica", replica, "verify", "--repair"), 1, "repaired "+name)
	vfyExpect(t, e.run("verify", "--read-data"), 0, "ALL COPIES INTACT")
}

func TestDamagedConfigAndLostKeysComeFromAReplica(t *testing.T) {
	e, src := vfyRepo(t, 43)
	replica := vfyCopyTree(t, e.repo)
	removeKeys := func() {
		t.Helper()
		for _, k := range vfyObjects(t, e.repo, "keys") {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	restoreWorks := func(args ...string) {
		t.Helper()
		target := t.TempDir()
		e.must(append(args, "restore", "latest", "--target", target)...)
		compareTrees(t, src, restoredPath(target, src))
	}
	for _, keyless := range []bool{false, true} {
		repair := func() result {
			if keyless {
				return vfyNoPassword(e, "--replica", replica, "verify", "--keyless", "--repair")
			}
			return e.run("--replica", replica, "verify", "--repair")
		}

		dmgFlipSecrets(t, e.repo)
		if r := e.run("snapshots"); r.code == 0 {
			t.Fatalf("snapshots opened a repository with a damaged config")
		}
		restoreWorks("--replica", replica)
		vfyExpect(t, repair(), 0, "repaired config")
		vfyExpect(t, e.run("verify"), 0)

		removeKeys()
		if r := e.run("snapshots"); r.code == 0 {
			t.Fatalf("snapshots opened a repository without key files")
		}
		restoreWorks("--replica", replica)
		vfyExpect(t, repair(), 0, "repaired keys/")
		vfyExpect(t, e.run("verify"), 0)
		restoreWorks()
	}
}

// dmgVerifyBoth runs verify with and without the password.
func dmgVerifyBoth(t *testing.T, e *env, code int, want ...string) {
	t.Helper()
	vfyExpect(t, e.run("verify"), code, want...)
	vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), code, want...)
}

func TestDeletedSnapshotIsDetectedAndForgetIsNot(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := generate(t, 51, 1<<20)
	var ids []string
	for range 4 {
		ids = append(ids, e.backup("--tag", "x", src).SnapshotID)
	}
	dmgVerifyBoth(t, e, 0)
	// An authorised deletion.
	e.must("forget", "--keep-last", "3")
	dmgVerifyBoth(t, e, 0)
	// A deletion behind courtbak's back (ransomware, a rollback of the
	// storage, an operator's mistake).
	gone := filepath.Join(e.repo, "snapshots", ids[2])
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	dmgVerifyBoth(t, e, 1, "snapshot "+ids[2][:8], "without forget")

	// A deleted log record that a later one names is seen too.
	e2 := newLocalEnv(t)
	e2.init()
	e2.backup(src)
	records := vfyObjects(t, e2.repo, "log")
	e2.backup(src)
	if err := os.Remove(records[0]); err != nil {
		t.Fatal(err)
	}
	dmgVerifyBoth(t, e2, 1, vfyObjectName(records[0]), "missing")
}

func TestARepositoryWithoutLogVerifiesAndStartsOne(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := generate(t, 52, 1<<20)
	first := e.backup(src).SnapshotID
	// As an older courtbak left it: no log.
	if err := os.RemoveAll(filepath.Join(e.repo, "log")); err != nil {
		t.Fatal(err)
	}
	dmgVerifyBoth(t, e, 0)
	e.backup(src) // starts the log, with the snapshot made before it
	if err := os.Remove(filepath.Join(e.repo, "snapshots", first)); err != nil {
		t.Fatal(err)
	}
	dmgVerifyBoth(t, e, 1, "snapshot "+first[:8], "without forget")
}

// A replica keeps the snapshots its primary forgot, but receives the
// index the primary's prune wrote: their data is no longer indexed there.
// The snapshot log tells verify they were forgotten, so the replica
// verifies (found by the randomized robustness test).
func TestAReplicaKeepsForgottenSnapshotsAndStillVerifies(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := generate(t, 53, 1<<20)
	old := e.backup(src).SnapshotID
	replica := filepath.Join(t.TempDir(), "replica")
	e.must("replicate", "--to", replica)
	if err := os.WriteFile(filepath.Join(src, "new-ruling.txt"), []byte("ruling"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range vfyObjects(t, src, ".") {
		if strings.HasSuffix(p, ".txt") {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	e.backup(src)
	e.must("forget", "--keep-last", "1")
	e.must("prune", "--grace", "0")
	e.must("replicate", "--to", replica)
	r := e.runEnv(e.environ(), "--repo", replica, "verify", "--json")
	vfyExpect(t, r, 0)
	var v struct {
		Snapshots []struct{ ID, Status string } `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range v.Snapshots {
		found = found || (s.ID == old && s.Status == "forgotten")
	}
	if !found {
		t.Errorf("the forgotten snapshot is not reported as such: %+v", v.Snapshots)
	}
	vfyExpect(t, e.run("verify"), 0)
}
