package main_test

// End-to-end tests: every test here drives the built courtbak binary, as an
// operator or a cron job would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/s3test"
	"github.com/courtbak/courtbak/testdata/gen"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "courtbak-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "courtbak")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build courtbak:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// env is a test's environment: a repository URL and a password.
type env struct {
	t        *testing.T
	repo     string
	password string
	home     string   // HOME, and so the cache directory
	extra    []string // further environment variables
}

func newLocalEnv(t *testing.T) *env {
	return &env{t: t, repo: filepath.Join(t.TempDir(), "repo"), password: "correct horse battery staple", home: t.TempDir()}
}

// newS3Env uses a fresh bucket on the test S3 server, with credentials from
// the standard AWS environment variables as an operator would set them.
func newS3Env(t *testing.T) *env {
	endpoint, _, _ := s3test.Server(t)
	e := newLocalEnv(t)
	e.repo = s3test.NewBucketURL(t, endpoint)
	e.extra = s3test.Env()
	return e
}

// backends are the repository kinds every core test runs against.
var backends = []struct {
	name   string
	newEnv func(*testing.T) *env
}{{"local", newLocalEnv}, {"s3", newS3Env}}

// forEachBackend runs test once per repository kind.
func forEachBackend(t *testing.T, test func(t *testing.T, newEnv func(*testing.T) *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.newEnv) })
	}
}

// storedObjects returns every object of the repository, through the
// storage layer, so local and S3 repositories are inspected alike.
func storedObjects(t *testing.T, e *env) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	be, err := remote.Open(ctx, e.repo, s3test.Options())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, typ := range remote.AllTypes {
		err := be.List(ctx, typ, func(fi remote.ObjectInfo) error {
			b, err := remote.ReadAll(ctx, be, fi.Handle)
			out[fi.Handle.String()] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (e *env) environ() []string {
	out := []string{"HOME=" + e.home, "PATH=" + os.Getenv("PATH"), "COURTBAK_PASSWORD=" + e.password}
	return append(out, e.extra...)
}

// run runs courtbak with --repo and the password in the environment.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runEnv(e.environ(), append([]string{"--repo", e.repo}, args...)...)
}

func (e *env) runEnv(environ []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run courtbak %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// must runs courtbak and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("courtbak %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// init creates the repository with cheap key derivation (tests only).
func (e *env) init() {
	e.t.Helper()
	e.must("init", "--kdf-memory", "8192", "--kdf-time", "1")
}

type backupSummary struct {
	SnapshotID      string  `json:"snapshot_id"`
	FilesNew        int     `json:"files_new"`
	FilesChanged    int     `json:"files_changed"`
	FilesUnmodified int     `json:"files_unmodified"`
	BytesProcessed  int64   `json:"bytes_processed"`
	BytesAdded      int64   `json:"bytes_added"`
	DurationSeconds float64 `json:"duration_s"`
}

func (e *env) backup(args ...string) backupSummary {
	e.t.Helper()
	r := e.must(append([]string{"backup", "--json"}, args...)...)
	var s backupSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("backup --json output %q: %v", r.stdout, err)
	}
	if len(s.SnapshotID) != 64 {
		e.t.Fatalf("backup --json: snapshot_id %q", s.SnapshotID)
	}
	return s
}

// generate writes a small deterministic tree of recordings and case files.
func generate(t *testing.T, seed int64, total int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "recordings")
	if _, err := gen.Generate(dir, gen.Options{Seed: seed, TotalBytes: total, SmallFiles: 40, Copies: 1}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compareTrees fails unless got holds exactly want's files, symlinks and
// directories with the same contents, modes and mtimes.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gp := filepath.Join(got, rel)
		gi, err := os.Lstat(gp)
		if err != nil {
			t.Errorf("restored tree lacks %s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(gp)
			if wl != gl {
				t.Errorf("%s: link target %q, want %q", rel, gl, wl)
			}
		case wi.Mode().IsRegular():
			if !gi.ModTime().Equal(wi.ModTime()) {
				t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
			}
			if hashFile(t, p) != hashFile(t, gp) {
				t.Errorf("%s: restored content differs", rel)
			}
		case wi.IsDir() && rel != ".":
			if !gi.ModTime().Equal(wi.ModTime()) {
				t.Errorf("dir %s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("restored tree has extra entry %s", rel)
		}
		return nil
	})
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := blake3.Sum256(b)
	return fmt.Sprintf("%x", sum)
}

// restoredPath is where restore puts an absolute source path under target.
func restoredPath(target, src string) string {
	return filepath.Join(target, src)
}

func TestBackupRestoreByteIdentical(t *testing.T) {
	forEachBackend(t, testBackupRestoreByteIdentical)
}

func testBackupRestoreByteIdentical(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	e.init()
	src := generate(t, 1, 24<<20)
	s := e.backup(src)
	if s.FilesNew == 0 || s.BytesProcessed == 0 {
		t.Fatalf("first backup summary %+v", s)
	}
	target := t.TempDir()
	r := e.must("restore", "latest", "--target", target)
	if !strings.Contains(r.stdout, "verified") {
		t.Errorf("restore output does not say files were verified: %q", r.stdout)
	}
	compareTrees(t, src, restoredPath(target, src))

	// An unchanged re-backup reads nothing again and adds (almost) nothing.
	s2 := e.backup(src)
	if s2.FilesNew != 0 || s2.FilesChanged != 0 || s2.FilesUnmodified != s.FilesNew {
		t.Errorf("unchanged re-backup: %+v, first %+v", s2, s)
	}
	if s2.BytesAdded > 64<<10 {
		t.Errorf("unchanged re-backup added %d bytes", s2.BytesAdded)
	}
}

func TestExactCopyAddsAlmostNothing(t *testing.T) {
	forEachBackend(t, testExactCopyAddsAlmostNothing)
}

func testExactCopyAddsAlmostNothing(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	e.init()
	src := t.TempDir()
	rec := filepath.Join(src, "hearing.mp4")
	const size = 200 << 20
	if err := gen.WriteMedia(rec, size, 7); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	if err := os.MkdirAll(filepath.Join(src, "exhibits"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, rec, filepath.Join(src, "exhibits", "exhibit-A.mp4"))
	s := e.backup(src)
	if s.FilesNew != 1 || s.FilesUnmodified != 1 {
		t.Errorf("second backup: %+v", s)
	}
	if s.BytesAdded >= size/100 {
		t.Errorf("copy of a %d-byte recording added %d bytes, want < 1%%", size, s.BytesAdded)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGrowingRecordingAddsAboutTheAppendedBytes(t *testing.T) {
	forEachBackend(t, testGrowingRecording)
}

func testGrowingRecording(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	e.init()
	src := t.TempDir()
	rec := filepath.Join(src, "live-recording.mp4")
	if err := gen.WriteMedia(rec, 40<<20, 3); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	const appended = 12 << 20
	if err := gen.Append(rec, appended, 4); err != nil {
		t.Fatal(err)
	}
	s := e.backup(src)
	if s.FilesChanged != 1 {
		t.Errorf("after append: %+v", s)
	}
	// The appended bytes plus the old last chunk, which the append extends:
	// chunks average 1.5 MiB and are at most 8 MiB, far below re-uploading
	// the 40 MiB file.
	if s.BytesAdded < appended || s.BytesAdded > appended+8<<20+256<<10 {
		t.Errorf("append of %d bytes added %d bytes", appended, s.BytesAdded)
	}
	target := t.TempDir()
	e.must("restore", "latest", "--target", target)
	if hashFile(t, rec) != hashFile(t, restoredPath(target, rec)) {
		t.Error("grown recording restored with different content")
	}
}

func TestRepositoryHoldsNoPlaintextAndNamesAreHashes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv func(*testing.T) *env) {
		e := newEnv(t)
		e.init()
		src := generate(t, 2, 8<<20)
		e.backup(src)
		objects := 0
		for name, data := range storedObjects(t, e) {
			if bytes.Contains(data, []byte(gen.Marker)) {
				t.Errorf("%s contains the plaintext marker", name)
			}
			for _, word := range []string{"notes.txt", "metadata.json", "hearings"} {
				if bytes.Contains(data, []byte(word)) {
					t.Errorf("%s contains the file name %q in plaintext", name, word)
				}
			}
			if name == "config" {
				continue
			}
			objects++
			sum := blake3.Sum256(data)
			if got := fmt.Sprintf("%x", sum); got != path.Base(name) {
				t.Errorf("object %s hashes to %s", name, got)
			}
		}
		if objects < 4 {
			t.Errorf("only %d objects in the repository", objects)
		}
	})
}

func TestExitCodesForMissingRepositoryAndWrongPassword(t *testing.T) {
	forEachBackend(t, testExitCodes)
}

func testExitCodes(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	r := e.run("snapshots")
	if r.code != 10 {
		t.Errorf("missing repository: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("missing repository: want one line, got %q", r.stderr)
	}
	e.init()
	if r := e.run("init"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second init: exit %d, stderr %q", r.code, r.stderr)
	}
	wrong := *e
	wrong.password = "not the password"
	r = wrong.run("snapshots")
	if r.code != 12 {
		t.Errorf("wrong password: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 || !strings.Contains(r.stderr, "wrong password") {
		t.Errorf("wrong password: want one line, got %q", r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, wrong.password) {
		t.Error("the password appears in the output")
	}
	// No password source and no terminal: a clear message and exit 1.
	r = e.runEnv(append([]string{"PATH=" + os.Getenv("PATH")}, e.extra...), "--repo", e.repo, "snapshots")
	if r.code != 1 || !strings.Contains(r.stderr, "no password") {
		t.Errorf("no password: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPasswordFileAndCommand(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if r := e.runEnv(base, "--repo", e.repo, "--password-file", pwFile, "snapshots"); r.code != 0 {
		t.Errorf("--password-file: exit %d: %s", r.code, r.stderr)
	}
	if r := e.runEnv(append(base, "COURTBAK_PASSWORD_COMMAND=cat "+pwFile), "--repo", e.repo, "snapshots"); r.code != 0 {
		t.Errorf("COURTBAK_PASSWORD_COMMAND: exit %d: %s", r.code, r.stderr)
	}
	if r := e.runEnv(append(base, "COURTBAK_REPOSITORY="+e.repo), "--password-command", "echo wrong", "snapshots"); r.code != 12 {
		t.Errorf("wrong --password-command: exit %d: %s", r.code, r.stderr)
	}
}

func TestUnreadableFileGivesExit3AndASnapshotOfTheRest(t *testing.T) {
	e := newLocalEnv(t)
	src := generate(t, 3, 2<<20)
	secret := filepath.Join(src, "sealed-order.txt")
	if err := os.WriteFile(secret, []byte("sealed"), 0o000); err != nil {
		t.Fatal(err)
	}
	environ := e.environ()
	prefix := []string{}
	if os.Geteuid() == 0 {
		// root reads any file: run courtbak as nobody so the file is unreadable.
		for _, p := range []string{filepath.Dir(e.repo), src} {
			chownTree(t, p, 65534)
		}
		if err := os.Chown(secret, 0, 0); err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(src); d != "/"; d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755) // t.TempDir() parents are 0700
		}
		prefix = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary}
	}
	run := func(args ...string) result {
		args = append([]string{"--repo", e.repo}, args...)
		if len(prefix) == 0 {
			return e.runEnv(environ, args...)
		}
		return runCmd(t, environ, append(prefix, args...)...)
	}
	if r := run("init", "--kdf-memory", "8192", "--kdf-time", "1"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	r := run("backup", "--json", src)
	if r.code != 3 {
		t.Fatalf("backup with an unreadable file: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, secret) {
		t.Errorf("stderr does not name the unreadable file: %q", r.stderr)
	}
	// --json streams the error as a JSON line, then the summary.
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first, last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["message_type"] != "error" || first["path"] != secret {
		t.Errorf("first --json line %q (%v): want the error for %s", lines[0], err, secret)
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last["message_type"] != "summary" || last["files_failed"] != 1.0 {
		t.Errorf("last --json line %q (%v): want the summary", lines[len(lines)-1], err)
	}
	r = run("ls", "--json", "latest")
	if r.code != 0 {
		t.Fatalf("ls: %d %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "sealed-order.txt") {
		t.Error("the unreadable file is in the snapshot")
	}
	if !strings.Contains(r.stdout, "metadata.json") {
		t.Error("the snapshot lacks the readable files")
	}
}

func chownTree(t *testing.T, root string, uid int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func runCmd(t *testing.T, environ []string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", argv, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

type lsEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	MTime  string `json:"mtime"`
	BLAKE3 string `json:"blake3"`
}

func TestLsDumpDiffAndPartialRestore(t *testing.T) {
	forEachBackend(t, testLsDumpDiff)
}

func testLsDumpDiff(t *testing.T, newEnv func(*testing.T) *env) {
	e := newEnv(t)
	e.init()
	src := generate(t, 4, 6<<20)
	s1 := e.backup("--tag", "nightly", src)

	// ls --json: one line per entry with the whole-file BLAKE3 of each file.
	r := e.must("ls", "--json", s1.SnapshotID[:8])
	files := map[string]lsEntry{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var le lsEntry
		if err := json.Unmarshal([]byte(line), &le); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		if le.Type == "file" {
			files[le.Path] = le
		}
	}
	if len(files) < 10 {
		t.Fatalf("ls listed %d files", len(files))
	}
	var oneCase string
	for p, le := range files {
		if want := hashFile(t, p); le.BLAKE3 != want {
			t.Errorf("ls blake3 of %s = %s, want %s", p, le.BLAKE3, want)
		}
		if strings.HasSuffix(p, "notes.txt") && oneCase == "" {
			oneCase = p
		}
	}

	// dump writes one file's exact bytes.
	r = e.must("dump", "latest", oneCase)
	want, _ := os.ReadFile(oneCase)
	if r.stdout != string(want) {
		t.Errorf("dump %s differs from the original", oneCase)
	}
	if r := e.run("dump", "latest", "/no/such/file"); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("dump of a missing path: exit %d %q", r.code, r.stderr)
	}

	// diff reports added, removed and changed paths.
	added := filepath.Join(src, "new-ruling.txt")
	if err := os.WriteFile(added, []byte("ruling"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(oneCase); err != nil {
		t.Fatal(err)
	}
	s2 := e.backup(src)
	r = e.must("diff", s1.SnapshotID, s2.SnapshotID)
	if !strings.Contains(r.stdout, "+  "+added) || !strings.Contains(r.stdout, "-  "+oneCase) {
		t.Errorf("diff output lacks the added or removed file:\n%s", r.stdout)
	}

	// snapshots --json with filters.
	r = e.must("snapshots", "--json", "--tag", "nightly")
	var snaps []struct {
		ID, ShortID, Time, Host string
		Paths, Tags             []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].ID != s1.SnapshotID || snaps[0].Tags[0] != "nightly" || snaps[0].Paths[0] != src {
		t.Errorf("snapshots --tag nightly: %+v", snaps)
	}

	// restore --include restores only the matching files, verified.
	target := t.TempDir()
	e.must("restore", s1.SnapshotID[:10], "--target", target, "--include", "*.json")
	n := 0
	_ = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
			if !strings.HasSuffix(p, ".json") {
				t.Errorf("partial restore wrote %s", p)
			}
		}
		return nil
	})
	if n == 0 {
		t.Error("partial restore wrote nothing")
	}
	if r := e.run("restore", "deadbeef", "--target", target); r.code != 1 || !strings.Contains(r.stderr, "no matching snapshot") {
		t.Errorf("restore of an unknown snapshot: exit %d %q", r.code, r.stderr)
	}
}

func TestKeyAddPasswdRemove(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	second := *e
	second.password = "second password"
	e.extra = []string{"COURTBAK_NEW_PASSWORD=" + second.password}
	e.must("key", "add", "--kdf-memory", "8192", "--kdf-time", "1")
	second.must("snapshots")

	r := e.must("key", "list", "--json")
	var keys []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("key list: %v %s", err, r.stdout)
	}
	var current string
	for _, k := range keys {
		if k.Current {
			current = k.ID
		}
	}
	if r := e.run("key", "remove", current); r.code != 1 {
		t.Errorf("removing the key in use: exit %d", r.code)
	}
	// The second password removes the first key; then the last key stays.
	second.must("key", "remove", current[:8])
	if r := e.run("snapshots"); r.code != 12 {
		t.Errorf("removed password still opens the repository: exit %d", r.code)
	}
	// passwd replaces the key in use.
	third := second
	third.password = "third password"
	second.extra = []string{"COURTBAK_NEW_PASSWORD=" + third.password}
	second.must("key", "passwd", "--kdf-memory", "8192", "--kdf-time", "1")
	third.must("snapshots")
	if r := second.run("snapshots"); r.code != 12 {
		t.Errorf("old password after passwd: exit %d", r.code)
	}
}

func TestVersion(t *testing.T) {
	e := newLocalEnv(t)
	r := e.must("version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["go_version"] == "" || v["os"] == "" || v["version"] == "" {
		t.Errorf("version --json: %v %q", err, r.stdout)
	}
}

// countPacks counts the pack files of a local repository.
func countPacks(repo string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".tmp-") {
			n++
		}
		return nil
	})
	return n
}

// interruptedBackup starts a backup of src and sends sig once a few packs
// are stored. It returns the exit code.
func interruptedBackup(t *testing.T, e *env, src string, sig os.Signal) int {
	t.Helper()
	cmd := exec.Command(binary, "--repo", e.repo, "backup", src)
	cmd.Env = e.environ()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for countPacks(e.repo) < 4 {
		select {
		case err := <-done:
			t.Fatalf("backup finished before it could be interrupted: %v %s", err, errb.String())
		case <-deadline:
			t.Fatal("backup stored no packs in 2 minutes")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-done
	return cmd.ProcessState.ExitCode()
}

func bigSource(t *testing.T, files int) (string, int64) {
	t.Helper()
	src := t.TempDir()
	const size = 100 << 20
	for i := 0; i < files; i++ {
		if err := gen.WriteMedia(filepath.Join(src, fmt.Sprintf("hearing-%d.mp4", i)), size, int64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	return src, int64(files) * size
}

func TestInterruptedBackupIsConsistentAndReused(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  os.Signal
		code int
	}{
		{"SIGINT", os.Interrupt, 130},
		{"SIGKILL", os.Kill, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLocalEnv(t)
			e.init()
			src, total := bigSource(t, 3)
			code := interruptedBackup(t, e, src, tc.sig)
			if code != tc.code {
				t.Errorf("interrupted backup exit %d, want %d", code, tc.code)
			}
			if r := e.must("snapshots", "--json"); strings.TrimSpace(r.stdout) != "[]" {
				t.Errorf("an interrupted backup left a snapshot: %s", r.stdout)
			}
			// What the interrupted run left is a consistent repository.
			e.must("verify", "--read-data")
			s := e.backup(src)
			if s.BytesAdded > total*9/10 {
				t.Errorf("backup after %s added %d of %d bytes: uploaded data was not reused", tc.name, s.BytesAdded, total)
			}
			e.must("verify", "--read-data")
			target := t.TempDir()
			e.must("restore", "latest", "--target", target)
			compareTrees(t, src, restoredPath(target, src))
		})
	}
}

func TestStatsCountsEverySnapshot(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := generate(t, 5, 4<<20)
	s := e.backup(src)
	e.backup(src)
	r := e.must("stats", "--json")
	var st struct {
		Snapshots    int     `json:"snapshots"`
		LogicalBytes int64   `json:"logical_bytes"`
		UniqueBytes  int64   `json:"unique_bytes"`
		StoredBytes  int64   `json:"stored_bytes"`
		DedupRatio   float64 `json:"dedup_ratio"`
		Packs        int     `json:"packs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Snapshots != 2 || st.LogicalBytes != 2*s.BytesProcessed || st.Packs == 0 {
		t.Errorf("stats %+v after two backups of %d bytes", st, s.BytesProcessed)
	}
	// The generated tree holds one exact copy of a recording, so unique data is
	// less than half of two snapshots' worth.
	if st.DedupRatio <= 2 || st.UniqueBytes >= s.BytesProcessed {
		t.Errorf("dedup ratio %.2f, unique %d of %d processed", st.DedupRatio, st.UniqueBytes, s.BytesProcessed)
	}
}

func TestNonUTF8NamesRestoreExactly(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := t.TempDir()
	// Latin-1 names that differ only in bytes that are not valid UTF-8.
	for i, name := range []string{"M\xfcller.txt", "M\xe4ller.txt", "caf\xe9"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(fmt.Sprintf("content %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("M\xfcller.txt", filepath.Join(src, "link-\xff")); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	target := t.TempDir()
	e.must("restore", "latest", "--target", target)
	compareTrees(t, src, restoredPath(target, src))
}

func TestBadFlagValuesAreRefused(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	for _, args := range [][]string{
		{"--retries", "0", "snapshots"},
		{"--limit-upload", "-5", "snapshots"},
	} {
		if r := e.run(args...); r.code != 1 || !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("courtbak %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	src := generate(t, 9, 1<<20)
	s := e.backup("--host", "city-a", src)
	// Filters narrow 'latest'; an explicit id is found whatever they say.
	if r := e.run("ls", "--host", "city-b", s.SnapshotID[:8]); r.code != 0 {
		t.Errorf("ls --host city-b ID: exit %d, stderr %q", r.code, r.stderr)
	}
	r := e.run("ls", "--host", "city-b", "latest")
	if r.code != 1 || !strings.Contains(r.stderr, "--host city-b") {
		t.Errorf("ls --host with no match: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run("ls", "--host", "city-a", "latest"); r.code != 0 {
		t.Errorf("ls --host city-a latest: exit %d, stderr %q", r.code, r.stderr)
	}
}

// kill -9 at random moments, again and again: after every kill the
// repository verifies, and every snapshot that completed restores
// byte-identical.
func TestRandomKillsNeverBreakTheRepository(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src, _ := bigSource(t, 2)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 4; i++ {
		cmd := exec.Command(binary, "--repo", e.repo, "backup", src)
		cmd.Env = e.environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if r := e.run("verify", "--read-data"); r.code != 0 {
			t.Fatalf("verify after kill %d: exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
	}
	e.backup(src)
	r := e.must("snapshots", "--json")
	var snaps []struct{ ID string }
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots: %v %s", err, r.stdout)
	}
	for _, sn := range snaps {
		target := t.TempDir()
		e.must("restore", sn.ID, "--target", target)
		compareTrees(t, src, restoredPath(target, src))
	}
}

func TestExcludeKeepsMatchingPathsOut(t *testing.T) {
	e := newLocalEnv(t)
	e.init()
	src := t.TempDir()
	for _, p := range []string{"keep/notes.txt", "keep/scratch.tmp", "cache/frame.bin", "keep/cache/x.txt"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.backup("--exclude", "*.tmp", "--exclude", filepath.Join(src, "cache"), src)
	r := e.must("ls", "--json", "latest")
	for _, gone := range []string{"scratch.tmp", "frame.bin"} {
		if strings.Contains(r.stdout, gone) {
			t.Errorf("excluded %s is in the snapshot", gone)
		}
	}
	for _, kept := range []string{"keep/notes.txt", "keep/cache/x.txt"} {
		if !strings.Contains(r.stdout, kept) {
			t.Errorf("%s is missing from the snapshot", kept)
		}
	}
	if r := e.run("backup", "--exclude", "[", src); r.code != 1 || !strings.Contains(r.stderr, "exclude") {
		t.Errorf("invalid exclude pattern: exit %d %q", r.code, r.stderr)
	}
}

// On a terminal with no password source, courtbak asks (without echo).
// script(1) from util-linux gives the binary a pseudo-terminal.
func TestPasswordPromptOnATerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	e := newLocalEnv(t)
	e.init()
	// ask answers the prompt once it is shown: typed earlier, the terminal
	// would still echo the answer, before courtbak turns echo off.
	ask := func(answer string, args ...string) (string, int) {
		cmdline := binary + " --repo " + e.repo + " " + strings.Join(args, " ")
		cmd := exec.Command(scriptBin, "-q", "-e", "-c", cmdline, "/dev/null")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.home, "TERM=dumb"}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var out []byte
		buf := make([]byte, 4096)
		answered := false
		for {
			n, err := stdout.Read(buf)
			out = append(out, buf[:n]...)
			if !answered && bytes.Contains(out, []byte("password:")) {
				time.Sleep(200 * time.Millisecond) // let it switch echo off
				_, _ = io.WriteString(stdin, answer)
				answered = true
			}
			if err != nil {
				break
			}
		}
		_ = cmd.Wait()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := ask(e.password+"\n", "snapshots")
	if code != 0 || !strings.Contains(out, "Repository password:") || !strings.Contains(out, "0 snapshots") {
		t.Errorf("prompted password: exit %d, output %q", code, out)
	}
	if strings.Contains(out, e.password) {
		t.Error("the typed password was echoed")
	}
	if _, code := ask("wrong\n", "snapshots"); code != 12 {
		t.Errorf("wrong prompted password: exit %d", code)
	}
}
