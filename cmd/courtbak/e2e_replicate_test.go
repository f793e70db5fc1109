package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/s3test"
	"github.com/courtbak/courtbak/testdata/gen"
)

// replicateSummary is replicate's --json output.
type replicateSummary struct {
	Primary  string `json:"primary"`
	Replicas []struct {
		Location       string `json:"location"`
		ObjectsCopied  int    `json:"objects_copied"`
		BytesCopied    int64  `json:"bytes_copied"`
		ObjectsPresent int    `json:"objects_present"`
		Error          string `json:"error"`
		Requests       *struct {
			Limit, Peak, Drops int
		} `json:"requests"`
	} `json:"replicas"`
	ObjectsCopied  int   `json:"objects_copied"`
	BytesCopied    int64 `json:"bytes_copied"`
	ObjectsPresent int   `json:"objects_present"`
}

func (e *env) replicate(args ...string) replicateSummary {
	e.t.Helper()
	r := e.must(append([]string{"replicate", "--json"}, args...)...)
	var s replicateSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("replicate --json output %q: %v", r.stdout, err)
	}
	return s
}

// at returns an env for another repository URL with the same password.
func (e *env) at(url string) *env {
	c := *e
	c.repo = url
	return &c
}

// listObjects returns the names and sizes of the objects at url.
func listObjects(t *testing.T, url string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	be, err := remote.Open(ctx, url, s3test.Options())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, typ := range remote.AllTypes {
		if err := be.List(ctx, typ, func(fi remote.ObjectInfo) error { out[fi.Handle.String()] = fi.Size; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameObjects fails unless the replica holds exactly the primary's objects,
// byte for byte.
func sameObjects(t *testing.T, primary, replica *env) {
	t.Helper()
	want, got := storedObjects(t, primary), storedObjects(t, replica)
	for name, b := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s lacks %s", replica.repo, name)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s: %s differs from the primary's", replica.repo, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s has %s, which the primary lacks", replica.repo, name)
		}
	}
}

func TestReplicateAndRestoreDuringAnOutage(t *testing.T) {
	primaryEP, stopPrimary := s3test.StartServer(t)
	centerEP, _ := s3test.StartServer(t)
	drEP, _ := s3test.StartServer(t)
	e := newLocalEnv(t)
	e.repo, e.extra = s3test.NewBucketURL(t, primaryEP), s3test.Env()
	// The center's bucket does not exist yet: replicate creates it.
	center := e.at("s3:" + centerEP + "/courtbak-center/repo")
	dr := e.at(s3test.NewBucketURL(t, drEP))

	e.init()
	src := generate(t, 21, 24<<20)
	e.backup(src)
	s := e.replicate("--replica", center.repo, "--replica", dr.repo)
	total := len(listObjects(t, e.repo))
	if len(s.Replicas) != 2 || s.ObjectsCopied != 2*total || s.ObjectsPresent != 0 {
		t.Fatalf("first replicate of %d objects: %+v", total, s)
	}
	for _, r := range s.Replicas {
		if r.ObjectsCopied != total || r.Error != "" {
			t.Errorf("replica %s: %+v", r.Location, r)
		}
		// Each S3 replica had its adaptive limit, within its bounds.
		if q := r.Requests; q == nil || q.Limit < 2 || q.Limit > 32 || q.Peak < q.Limit || q.Peak > 32 {
			t.Errorf("replica %s: requests %+v, want a limit in [2, 32] and its peak", r.Location, q)
		}
	}
	sameObjects(t, e, center)
	sameObjects(t, e, dr)

	// A new recording: the next run copies only what it added.
	if err := gen.WriteMedia(filepath.Join(src, "hearing-late.mp4"), 3<<20, 77); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	s = e.replicate("--limit-upload", "102400", "--limit-download", "102400", "--to", center.repo, "--to", dr.repo)
	added := len(listObjects(t, e.repo)) - total
	if s.ObjectsCopied != 2*added || s.ObjectsPresent != 2*total {
		t.Errorf("incremental replicate (%d new objects): %+v", added, s)
	}
	if s = e.replicate("--replica", center.repo, "--replica", dr.repo); s.ObjectsCopied != 0 || s.BytesCopied != 0 {
		t.Errorf("replicate with nothing new copied %d objects (%d bytes)", s.ObjectsCopied, s.BytesCopied)
	}
	sameObjects(t, e, center)
	sameObjects(t, e, dr)

	// A replica is a repository: read commands work on it directly.
	target := t.TempDir()
	center.must("restore", "latest", "--target", target)
	compareTrees(t, src, restoredPath(target, src))

	// Damage the center's copy of the biggest pack, then lose the primary.
	var pack string
	var size int64
	for name, n := range listObjects(t, center.repo) {
		if strings.HasPrefix(name, "data/") && n > size {
			pack, size = name, n
		}
	}
	corruptS3Object(t, centerEP, "courtbak-center", "repo/data/"+pack[5:7]+"/"+pack[5:])
	stopPrimary()

	withReplicas := []string{"--replica", center.repo, "--replica", dr.repo}
	start := time.Now()
	target = t.TempDir()
	r := e.must(append(withReplicas, "restore", "latest", "--target", target)...)
	compareTrees(t, src, restoredPath(target, src))
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("restore with the primary down took %v", d)
	}
	t.Logf("restore with the primary down and a damaged pack at the center took %v", time.Since(start).Round(time.Millisecond))
	wantNotice := pack + " damaged at " + center.repo + ", read from " + dr.repo
	if !strings.Contains(r.stderr, wantNotice) || !strings.Contains(r.stderr, e.repo+" is unreachable") {
		t.Errorf("restore's notices do not say what happened (want %q):\n%s", wantNotice, r.stderr)
	}
	if strings.Contains(r.stderr, "retrying") {
		t.Errorf("restore retried the unreachable primary:\n%s", r.stderr)
	}

	r = e.must(append(withReplicas, "snapshots", "--json")...)
	var snaps []struct{ ID string }
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) != 2 {
		t.Errorf("snapshots with the primary down: %v %q", err, r.stdout)
	}
	file := filepath.Join(src, "hearing-late.mp4")
	if r = e.must(append(withReplicas, "ls", "latest")...); !strings.Contains(r.stdout, file) {
		t.Errorf("ls with the primary down does not list %s:\n%s", file, r.stdout)
	}
	r = e.must(append(withReplicas, "dump", "latest", file)...)
	if want, _ := os.ReadFile(file); r.stdout != string(want) {
		t.Errorf("dump with the primary down: %d bytes, want %d", len(r.stdout), len(want))
	}
	e.must(append(withReplicas, "stats", "--json")...)
	e.must(append(withReplicas, "diff", snaps[0].ID, snaps[1].ID)...)

	// Without the replicas the outage is an error, not a hang.
	if r := e.run("--retries", "1", "snapshots"); r.code == 0 {
		t.Error("snapshots with the primary down and no replica succeeded")
	}
}

// corruptS3Object overwrites an object with different bytes of the same
// size, as a failing disk under the store might.
func corruptS3Object(t *testing.T, endpoint, bucket, key string) {
	t.Helper()
	ctx := context.Background()
	client := s3test.Client(endpoint)
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	for i := len(b) / 3; i < len(b)/3+4096 && i < len(b); i++ {
		b[i] ^= 0x5a
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
}

func TestReplicateKilledAtRandomMomentsResumes(t *testing.T) {
	primaryEP, _ := s3test.StartServer(t)
	replicaEP, _ := s3test.StartServer(t)
	e := newLocalEnv(t)
	e.repo, e.extra = s3test.NewBucketURL(t, primaryEP), s3test.Env()
	replica := e.at(s3test.NewBucketURL(t, replicaEP))
	e.init()
	src := t.TempDir()
	for i := range 3 {
		if err := gen.WriteMedia(filepath.Join(src, fmt.Sprintf("hearing-%d.mp4", i)), 50<<20, int64(300+i)); err != nil {
			t.Fatal(err)
		}
	}
	e.backup(src)
	want := listObjects(t, e.repo)
	packs := 0
	for name := range want {
		if strings.HasPrefix(name, "data/") {
			packs++
		}
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill delays seeded with %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	partial := 0
	for i := range 5 {
		// Paced at 25 MiB/s, one pack at a time, a full copy takes about
		// 6 s whatever the server's speed, and packs land one by one.
		cmd := exec.Command(binary, "--repo", e.repo, "--limit-upload", "25600", "replicate", "--workers", "1", "--to", replica.repo)
		cmd.Env = e.environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(300+rng.IntN(2200)) * time.Millisecond
		time.Sleep(delay)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		got := listObjects(t, replica.repo)
		checkReplicaConsistent(t, want, got)
		copiedPacks := 0
		for name := range got {
			if strings.HasPrefix(name, "data/") {
				copiedPacks++
			}
		}
		t.Logf("kill %d after %v: %d of %d objects, %d of %d packs at the replica", i+1, delay, len(got), len(want), copiedPacks, packs)
		if len(got) > 0 && len(got) < len(want) {
			partial++
		}
	}
	if partial == 0 {
		t.Error("no kill left a partial replica: the test proves little")
	}

	s := e.replicate("--to", replica.repo)
	if s.ObjectsCopied+s.ObjectsPresent != len(want) {
		t.Errorf("replicate after the kills: %+v, want %d objects in all", s, len(want))
	}
	sameObjects(t, e, replica)
	target := t.TempDir()
	replica.must("restore", "latest", "--target", target)
	compareTrees(t, src, restoredPath(target, src))
	if s := e.replicate("--to", replica.repo); s.ObjectsCopied != 0 {
		t.Errorf("replicate with nothing new copied %d objects", s.ObjectsCopied)
	}
}

// checkReplicaConsistent fails if the replica holds an object that is not
// whole, or objects of a type while lacking some it may refer to (keys,
// then config, packs, index, snapshots).
func checkReplicaConsistent(t *testing.T, want, got map[string]int64) {
	t.Helper()
	complete := true
	for _, prefix := range []string{"keys/", "config", "data/", "index/", "snapshots/"} {
		has, all := false, true
		for name, size := range want {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			gs, ok := got[name]
			if ok && gs != size {
				t.Errorf("the replica's %s has %d bytes, want %d", name, gs, size)
			}
			has = has || ok
			all = all && ok
		}
		if has && !complete {
			t.Errorf("the replica holds %s objects but lacks some they may refer to", strings.TrimSuffix(prefix, "/"))
		}
		complete = complete && all
	}
}
