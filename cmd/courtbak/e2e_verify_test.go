package main_test

// End-to-end tests of verify, its repair and its reports, and of
// report verify. Damage is done to the files of local repositories, as a
// failing disk or an intruder would.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// vfyJSON is the part of the report schema these tests read.
type vfyJSON struct {
	Schema     string `json:"schema"`
	Verdict    string `json:"verdict"`
	Repository struct {
		ID string `json:"id"`
	} `json:"repository"`
	Copies []struct {
		Role     string   `json:"role"`
		Location string   `json:"location"`
		Status   string   `json:"status"`
		Missing  []string `json:"missing"`
		Damaged  []string `json:"damaged"`
	} `json:"copies"`
	Problems []struct {
		Copy     string `json:"copy"`
		Kind     string `json:"kind"`
		Object   string `json:"object"`
		Repaired bool   `json:"repaired"`
	} `json:"problems"`
	Repairs []struct {
		Object string `json:"object"`
		From   string `json:"from"`
	} `json:"repairs"`
	ManifestAvailable bool   `json:"manifest_available"`
	ManifestNote      string `json:"manifest_note"`
	Snapshots         []struct {
		ID       string `json:"id"`
		Files    int    `json:"files"`
		Status   string `json:"status"`
		Manifest []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			BLAKE3 string `json:"blake3"`
		} `json:"manifest"`
	} `json:"snapshots"`
	Integrity struct {
		Covers    int64  `json:"covers_bytes"`
		BLAKE3    string `json:"blake3"`
		Signature string `json:"signature"`
	} `json:"integrity"`
}

func vfyDecode(t *testing.T, b []byte) vfyJSON {
	t.Helper()
	var v vfyJSON
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, b)
	}
	return v
}

// vfyRepo makes a repository with one snapshot of a small generated tree.
func vfyRepo(t *testing.T, seed int64) (*env, string) {
	t.Helper()
	e := newLocalEnv(t)
	e.init()
	src := generate(t, seed, 3<<20)
	e.backup(src)
	return e, src
}

// vfyNoPassword runs courtbak with no password anywhere in reach.
func vfyNoPassword(e *env, args ...string) result {
	e.t.Helper()
	return e.runEnv([]string{"HOME=" + e.home, "PATH=" + os.Getenv("PATH")}, append([]string{"--repo", e.repo}, args...)...)
}

// vfyObjects lists the object files of one type ("data", "index", ...) in
// a local repository, largest first.
func vfyObjects(t *testing.T, repo, typ string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(repo, typ), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return vfySize(t, out[i]) > vfySize(t, out[j]) })
	if len(out) == 0 {
		t.Fatalf("no %s objects in %s", typ, repo)
	}
	return out
}

func vfySize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// vfyEdit changes a stored object; objects are read-only (0400).
func vfyEdit(t *testing.T, p string, fn func([]byte) []byte) {
	t.Helper()
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, fn(b), 0o400); err != nil {
		t.Fatal(err)
	}
}

func vfyFlip(t *testing.T, p string) {
	t.Helper()
	vfyEdit(t, p, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
}

func vfyName(p string) string { return filepath.Base(filepath.Dir(p)) + "/" + filepath.Base(p) }

// vfyObjectName is how reports name the object at path p: "data/<id>".
func vfyObjectName(p string) string {
	typ := filepath.Base(filepath.Dir(p))
	if len(typ) == 2 { // data/<2 hex>/<id>
		typ = filepath.Base(filepath.Dir(filepath.Dir(p)))
	}
	return typ + "/" + filepath.Base(p)
}

func vfyCopyTree(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "replica")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v %s", err, out)
	}
	return to
}

func vfyExpect(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", w, r.stdout, r.stderr)
		}
	}
}

func TestVerifyHealthyInEveryMode(t *testing.T) {
	e, _ := vfyRepo(t, 11)
	for _, args := range [][]string{{}, {"--read-data"}, {"--read-data-subset", "50%"}} {
		vfyExpect(t, e.run(append([]string{"verify"}, args...)...), 0, "ALL COPIES INTACT")
	}
	r := vfyNoPassword(e, "verify", "--keyless", "--json")
	vfyExpect(t, r, 0)
	v := vfyDecode(t, []byte(r.stdout))
	if v.Verdict != "intact" || v.ManifestAvailable || !strings.Contains(v.ManifestNote, "Keyless") || len(v.Repository.ID) != 64 {
		t.Errorf("keyless --json: %+v", v)
	}
	// Without a password and without --keyless, verify says how to go on.
	vfyExpect(t, vfyNoPassword(e, "verify"), 1, "no password")
}

func TestVerifyReportsDamage(t *testing.T) {
	t.Run("flipped byte in a data pack", func(t *testing.T) {
		e, _ := vfyRepo(t, 12)
		pack := vfyObjects(t, e.repo, "data")[0]
		vfyFlip(t, pack)
		id := filepath.Base(pack)
		vfyExpect(t, e.run("verify", "--read-data"), 1, "data/"+id, "PROBLEMS FOUND", "courtbak verify --repair --replica")
		vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 1, "data/"+id, "do not match")
	})
	t.Run("deleted pack", func(t *testing.T) {
		e, src := vfyRepo(t, 13)
		pack := vfyObjects(t, e.repo, "data")[0]
		if err := os.Remove(pack); err != nil {
			t.Fatal(err)
		}
		// The recordings the pack held are named too.
		vfyExpect(t, e.run("verify"), 1, "data/"+filepath.Base(pack), "missing", src+"/")
	})
	t.Run("deleted index", func(t *testing.T) {
		e, _ := vfyRepo(t, 14)
		for _, p := range vfyObjects(t, e.repo, "index") {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		// The tree pack that no index lists any more is named.
		packs := vfyObjects(t, e.repo, "data")
		r := e.run("verify")
		vfyExpect(t, r, 1, "in no index", "data/"+filepath.Base(packs[len(packs)-1]))
	})
	t.Run("truncated snapshot", func(t *testing.T) {
		e, _ := vfyRepo(t, 15)
		snap := vfyObjects(t, e.repo, "snapshots")[0]
		vfyEdit(t, snap, func(b []byte) []byte { return b[:len(b)/2] })
		vfyExpect(t, e.run("verify"), 1, vfyName(snap), "snapshot cannot be read")
	})
}

func TestVerifyReportsEachReplica(t *testing.T) {
	e, _ := vfyRepo(t, 16)
	good, bad := vfyCopyTree(t, e.repo), vfyCopyTree(t, e.repo)
	damaged := vfyObjects(t, bad, "data")[0]
	vfyFlip(t, damaged)
	missing := vfyObjects(t, bad, "snapshots")[0]
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	check := func(r result) {
		t.Helper()
		vfyExpect(t, r, 1)
		v := vfyDecode(t, []byte(r.stdout))
		if len(v.Copies) != 3 {
			t.Fatalf("copies: %+v", v.Copies)
		}
		p, g, b := v.Copies[0], v.Copies[1], v.Copies[2]
		if p.Status != "intact" || g.Status != "intact" || b.Status != "problems" || g.Location != good || b.Location != bad {
			t.Errorf("statuses: primary %s, good %s %s, bad %s %s", p.Status, g.Location, g.Status, b.Location, b.Status)
		}
		if len(b.Damaged) != 1 || b.Damaged[0] != vfyObjectName(damaged) || len(b.Missing) != 1 || b.Missing[0] != vfyObjectName(missing) {
			t.Errorf("bad replica: damaged %v, missing %v", b.Damaged, b.Missing)
		}
		for _, pr := range v.Problems {
			if pr.Copy != bad {
				t.Errorf("problem outside the damaged replica: %+v", pr)
			}
		}
	}
	check(e.run("--replica", good, "--replica", bad, "verify", "--read-data", "--json"))
	check(vfyNoPassword(e, "--replica", good, "--replica", bad, "verify", "--keyless", "--json"))
}

func TestVerifyRepairsFromAReplica(t *testing.T) {
	e, _ := vfyRepo(t, 17)
	replica := vfyCopyTree(t, e.repo)
	pack := vfyObjects(t, e.repo, "data")[0]
	vfyFlip(t, pack)
	index := vfyObjects(t, e.repo, "index")[0]
	if err := os.Remove(index); err != nil {
		t.Fatal(err)
	}
	r := e.run("--replica", replica, "verify", "--read-data", "--repair", "--json")
	vfyExpect(t, r, 0)
	v := vfyDecode(t, []byte(r.stdout))
	repaired := map[string]bool{}
	for _, rp := range v.Repairs {
		repaired[rp.Object] = rp.From == replica
	}
	if !repaired[vfyObjectName(pack)] || !repaired[vfyObjectName(index)] || v.Verdict != "repaired" {
		t.Errorf("repair: verdict %s, repairs %+v", v.Verdict, v.Repairs)
	}
	vfyExpect(t, e.run("verify", "--read-data"), 0, "ALL COPIES INTACT")

	// Keyless: the DR operator repairs without the password.
	snap := vfyObjects(t, e.repo, "snapshots")[0]
	vfyFlip(t, snap)
	key := vfyObjects(t, e.repo, "keys")[0]
	vfyFlip(t, key)
	vfyExpect(t, vfyNoPassword(e, "--replica", replica, "verify", "--keyless", "--repair"), 0,
		"repaired "+vfyObjectName(snap), "repaired "+vfyObjectName(key))
	vfyExpect(t, vfyNoPassword(e, "verify", "--keyless"), 0)
	vfyExpect(t, e.run("verify", "--read-data"), 0)
}

// vfyTool finds a tool the tests need; in CI a missing tool fails the
// test, elsewhere it skips.
func vfyTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "none of " + strings.Join(names, ", ") + " is installed (Debian packages: see .ci/deps.txt)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// vfyB3sum hashes files with a BLAKE3 implementation independent of
// courtbak's: Debian's b3sum (the reference Rust implementation).
func vfyB3sum(t *testing.T, files ...string) map[string]string {
	t.Helper()
	tool := vfyTool(t, "b3sum")
	out, err := exec.Command(tool, append([]string{"--"}, files...)...).Output()
	if err != nil {
		t.Fatalf("b3sum: %v", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("b3sum line %q", line)
		}
		sums[name] = sum
	}
	return sums
}

func TestVerifyReportManifestMatchesB3sum(t *testing.T) {
	e, src := vfyRepo(t, 18)
	rep := filepath.Join(t.TempDir(), "audit.json")
	vfyExpect(t, e.run("verify", "--read-data", "--report", rep), 0)
	data := vfyRead(t, rep)
	v := vfyDecode(t, data)
	if v.Schema != "courtbak-verify-report" || len(v.Snapshots) != 1 || v.Snapshots[0].Status != "intact" {
		t.Fatalf("report: %+v", v)
	}
	var files []string
	manifest := map[string]string{}
	for _, f := range v.Snapshots[0].Manifest {
		files = append(files, f.Path)
		manifest[f.Path] = f.BLAKE3
		if f.Size != vfySize(t, f.Path) {
			t.Errorf("%s: size %d in the manifest", f.Path, f.Size)
		}
	}
	if len(files) < 10 || v.Snapshots[0].Files != len(files) || !strings.HasPrefix(files[0], src) {
		t.Fatalf("manifest of %d files: %v", len(files), files)
	}
	for p, sum := range vfyB3sum(t, files...) {
		if manifest[p] != sum {
			t.Errorf("%s: manifest BLAKE3 %s, b3sum %s", p, manifest[p], sum)
		}
	}
	// The seal's hash is the BLAKE3 of the bytes before it, as b3sum sees them.
	head := filepath.Join(t.TempDir(), "head")
	if err := os.WriteFile(head, data[:v.Integrity.Covers], 0o600); err != nil {
		t.Fatal(err)
	}
	if got := vfyB3sum(t, head)[head]; got != v.Integrity.BLAKE3 {
		t.Errorf("integrity.blake3 %s, b3sum of the first %d bytes %s", v.Integrity.BLAKE3, v.Integrity.Covers, got)
	}
}

// vfyChromium runs headless Chromium with a fresh profile and no network
// chatter.
func vfyChromium(t *testing.T, args ...string) []byte {
	t.Helper()
	tool := vfyTool(t, "chromium", "chromium-browser")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, tool, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestVerifyHTMLReportRendersInChromium(t *testing.T) {
	e, _ := vfyRepo(t, 19)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.html")
	vfyExpect(t, e.run("verify", "--read-data", "--report", good), 0)
	pack := vfyObjects(t, e.repo, "data")[0]
	vfyFlip(t, pack)
	bad := filepath.Join(dir, "bad.html")
	vfyExpect(t, e.run("verify", "--read-data", "--report", bad), 1)

	for file, verdict := range map[string]string{good: "ALL COPIES INTACT", bad: "PROBLEMS FOUND"} {
		dom := string(vfyChromium(t, "--dump-dom", "file://"+file))
		if file == bad && !strings.Contains(dom, "data/"+filepath.Base(pack)) {
			t.Error("the damaged pack is not named on the page")
		}
		// The verdict is the page's first heading, inside the verdict banner.
		i := strings.Index(dom, `id="verdict"`)
		h1 := strings.Index(dom, "<h1>"+verdict+"</h1>")
		if i < 0 || h1 < i || strings.Index(dom, "<h1>") != h1 {
			t.Errorf("%s: the verdict %q is not the banner heading:\n%.600s", filepath.Base(file), verdict, dom)
		}
		if strings.Contains(dom, "<script") || strings.Contains(dom, "<link") {
			t.Errorf("%s: the page is not self-contained", filepath.Base(file))
		}
	}
	png := filepath.Join(dir, "bad.png")
	vfyChromium(t, "--window-size=1280,1600", "--screenshot="+png, "file://"+bad)
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 20000 {
		t.Errorf("screenshot: %v, %d bytes", err, len(b))
	}
}

// vfyGoKey writes an Ed25519 key pair in openssl's PEM formats.
func vfyGoKey(t *testing.T, dir, name string) (key, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return key, pub
}

func vfyOpenSSL(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(vfyTool(t, "openssl"), args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v %s", args, err, out)
	}
}

func TestReportVerifyAcceptsSignedAndRejectsEditedOrForeign(t *testing.T) {
	e, _ := vfyRepo(t, 20)
	dir := t.TempDir()
	// The court's key, made by the real openssl; the other with Go.
	key, pub := filepath.Join(dir, "court.pem"), filepath.Join(dir, "court.pub.pem")
	vfyOpenSSL(t, "genpkey", "-algorithm", "ed25519", "-out", key)
	vfyOpenSSL(t, "pkey", "-in", key, "-pubout", "-out", pub)
	otherKey, otherPub := vfyGoKey(t, dir, "other")
	// Go writes the same formats: openssl derives the same public key.
	derived := filepath.Join(dir, "derived.pub.pem")
	vfyOpenSSL(t, "pkey", "-in", otherKey, "-pubout", "-out", derived)
	if !bytes.Equal(vfyRead(t, derived), vfyRead(t, otherPub)) {
		t.Fatal("openssl reads the Go-made key differently")
	}

	var reports []string
	args := []string{"verify", "--read-data", "--sign-key", key}
	for _, ext := range []string{"json", "html", "md"} {
		p := filepath.Join(dir, "audit."+ext)
		reports = append(reports, p)
		args = append(args, "--report", p)
	}
	vfyExpect(t, e.run(args...), 0)
	// Reports list every file name: only their owner may read them.
	for _, p := range reports {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode())
		}
	}
	v := vfyDecode(t, vfyRead(t, reports[0]))
	fileSum := v.Snapshots[0].Manifest[0].BLAKE3
	for _, p := range reports {
		vfyExpect(t, e.run("report", "verify", p, "--pubkey", pub), 0, "unchanged")
		vfyExpect(t, e.run("report", "verify", p, "--pubkey", otherPub), 1, "signed by another key")

		// One changed character: the first digit of a file's hash.
		edited := vfyRead(t, p)
		at := bytes.Index(edited, []byte(fileSum))
		if at < 0 {
			t.Fatalf("%s lacks the hash %s", p, fileSum)
		}
		if edited[at] == '0' {
			edited[at] = '1'
		} else {
			edited[at] = '0'
		}
		ep := filepath.Join(dir, "edited-"+filepath.Base(p))
		if err := os.WriteFile(ep, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		vfyExpect(t, e.run("report", "verify", ep, "--pubkey", pub), 1, "content was changed")
	}
	unsigned := filepath.Join(dir, "unsigned.md")
	vfyExpect(t, e.run("verify", "--report", unsigned), 0)
	vfyExpect(t, e.run("report", "verify", unsigned, "--pubkey", pub), 1, "not signed")

	// openssl itself accepts the signature: context string, then the hash.
	sum, _ := hex.DecodeString(v.Integrity.BLAKE3)
	sig, _ := base64.StdEncoding.DecodeString(v.Integrity.Signature)
	msg, sigFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	_ = os.WriteFile(msg, append([]byte("courtbak report signature v1\x00"), sum...), 0o600)
	_ = os.WriteFile(sigFile, sig, 0o600)
	vfyOpenSSL(t, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sigFile)
}

func vfyRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
