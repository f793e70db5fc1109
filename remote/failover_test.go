package remote_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/backendtest"
)

// notices collects a Failover's warnings.
type notices struct {
	mu    sync.Mutex
	lines []string
}

func (n *notices) warn(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, s)
}

func (n *notices) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

func named(t remote.Type, data []byte) remote.Handle {
	sum := blake3.Sum256(data)
	return remote.Handle{Type: t, Name: hex.EncodeToString(sum[:])}
}

func mustSave(t *testing.T, be remote.Backend, h remote.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
}

// With every object accepted, a failover over a primary and an empty
// replica behaves as a plain backend: writes, reads and listings are the
// primary's.
func TestFailoverConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) remote.Backend {
		return remote.NewFailover([]remote.Backend{newLocal(t), newLocal(t)}, remote.FailoverOptions{
			Check: func(remote.Handle, []byte) error { return nil },
		})
	})
}

func TestFailoverReadsMissingAndDamagedObjectsFromTheNextCopy(t *testing.T) {
	ctx := context.Background()
	p, c, d := newLocal(t), newLocal(t), newLocal(t)
	var n notices
	f := remote.NewFailover([]remote.Backend{p, c, d}, remote.FailoverOptions{Warn: n.warn})

	everywhere := []byte("an object every copy holds")
	hEvery := named(remote.Index, everywhere)
	onlyDR := []byte("an object only the DR pool holds")
	hOnlyDR := named(remote.Snapshot, onlyDR)
	pack := bytes.Repeat([]byte("pack bytes "), 1000)
	hPack := named(remote.Data, pack)
	damaged := bytes.Clone(pack)
	damaged[500] ^= 1
	for _, be := range []remote.Backend{p, c, d} {
		mustSave(t, be, hEvery, everywhere)
	}
	mustSave(t, d, hOnlyDR, onlyDR)
	mustSave(t, p, hPack, damaged)
	mustSave(t, c, hPack, damaged)
	mustSave(t, d, hPack, pack)

	if got, err := remote.ReadAll(ctx, f, hEvery); err != nil || !bytes.Equal(got, everywhere) {
		t.Fatalf("object at every copy: %v", err)
	}
	if len(n.all()) != 0 {
		t.Errorf("notices for an object read from the primary: %q", n.all())
	}
	if got, err := remote.ReadAll(ctx, f, hOnlyDR); err != nil || !bytes.Equal(got, onlyDR) {
		t.Fatalf("object only at the DR copy: %v", err)
	}
	if got, err := remote.ReadAll(ctx, f, hPack); err != nil || !bytes.Equal(got, pack) {
		t.Fatalf("object damaged at two copies: %v", err)
	}
	want := []string{
		hOnlyDR.String() + " missing at " + p.Location() + ", missing at " + c.Location() + ", read from " + d.Location(),
		hPack.String() + " damaged at " + p.Location() + ", damaged at " + c.Location() + ", read from " + d.Location(),
	}
	if got := n.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notices:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A range the caller's check rejects (a blob failing authentication)
	// is read from the next copy; one notice per object.
	check := func(b []byte) error {
		if !bytes.Equal(b, pack[400:600]) {
			return errors.New("authentication failed")
		}
		return nil
	}
	if got, err := f.LoadChecked(ctx, hPack, 400, 200, check); err != nil || !bytes.Equal(got, pack[400:600]) {
		t.Fatalf("checked range: %v", err)
	}
	if len(n.all()) != 2 {
		t.Errorf("a second read of the same damaged object gave another notice: %q", n.all())
	}
	// An unchecked range falls through only on errors: the damaged byte is
	// not in this range, so the primary serves it.
	if got, err := remote.ReadRange(ctx, f, hPack, 0, 100); err != nil || !bytes.Equal(got, pack[:100]) {
		t.Fatalf("unchecked range: %v", err)
	}
	// A range past the end of a truncated copy counts as damaged there.
	short := named(remote.Data, []byte("truncated at the primary"))
	mustSave(t, p, short, []byte("truncated"))
	mustSave(t, c, short, []byte("truncated at the primary"))
	if got, err := remote.ReadRange(ctx, f, short, 10, 10); err != nil || string(got) != "at the pri" {
		t.Fatalf("range beyond a truncated copy: %q %v", got, err)
	}

	// Stat and List take a reachable primary's word: no merging.
	if _, err := f.Stat(ctx, hOnlyDR); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("stat of an object the reachable primary lacks: %v, want ErrNotFound", err)
	}
	var listed []string
	if err := f.List(ctx, remote.Snapshot, func(fi remote.ObjectInfo) error { listed = append(listed, fi.Name); return nil }); err != nil || len(listed) != 0 {
		t.Errorf("list snapshots: %v %v, want the primary's (none)", listed, err)
	}

	// Missing everywhere: ErrNotFound, naming every copy.
	nowhere := named(remote.Index, []byte("nowhere"))
	_, err := remote.ReadAll(ctx, f, nowhere)
	if !errors.Is(err, remote.ErrNotFound) || !strings.Contains(err.Error(), d.Location()) {
		t.Errorf("object missing everywhere: %v", err)
	}

	// Writes reach the primary only.
	written := []byte("written through the failover")
	hw := named(remote.Index, written)
	mustSave(t, f, hw, written)
	if _, err := c.Stat(ctx, hw); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("a write through the failover reached a replica: %v", err)
	}
}

func TestFailoverSkipsAPrimaryThatIsDown(t *testing.T) {
	ctx := context.Background()
	base, replica := newLocal(t), newLocal(t)
	primary := remote.NewFaulty(base, remote.FaultConfig{})
	var n notices
	f := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{Warn: n.warn})
	cfg := []byte("the config")
	var hs []remote.Handle
	for _, be := range []remote.Backend{base, replica} {
		mustSave(t, be, remote.Handle{Type: remote.Config, Name: "config"}, cfg)
		for i := range 20 {
			data := []byte{byte(i)}
			mustSave(t, be, named(remote.Index, data), data)
		}
	}
	for i := range 20 {
		hs = append(hs, named(remote.Index, []byte{byte(i)}))
	}

	primary.SetOutage(true)
	if fi, err := f.Stat(ctx, remote.Handle{Type: remote.Config, Name: "config"}); err != nil || fi.Size != int64(len(cfg)) {
		t.Fatalf("stat config with the primary down: %v %v", fi, err)
	}
	failures := primary.Injected()
	listed := 0
	if err := f.List(ctx, remote.Index, func(remote.ObjectInfo) error { listed++; return nil }); err != nil || listed != 20 {
		t.Fatalf("list with the primary down: %d objects, %v", listed, err)
	}
	for _, h := range hs {
		if _, err := remote.ReadAll(ctx, f, h); err != nil {
			t.Fatalf("load with the primary down: %v", err)
		}
	}
	if primary.Injected() != failures {
		t.Errorf("the primary was asked %d more times after it was found down", primary.Injected()-failures)
	}
	if got := n.all(); len(got) != 1 || !strings.Contains(got[0], base.Location()+" failed after its retries") {
		t.Errorf("notices: %q, want one saying the primary failed", got)
	}
}

// A listing that breaks off part-way continues at the next copy without
// repeating names.
func TestFailoverListContinuesAfterAPartialListing(t *testing.T) {
	base, replica := newLocal(t), newLocal(t)
	for i := range 30 {
		data := []byte{byte(i), 1}
		mustSave(t, base, named(remote.Data, data), data)
		mustSave(t, replica, named(remote.Data, data), data)
	}
	primary := remote.NewFaulty(base, remote.FaultConfig{Seed: 3, FailRate: 1})
	f := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{})
	seen := map[string]int{}
	if err := f.List(context.Background(), remote.Data, func(fi remote.ObjectInfo) error { seen[fi.Name]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 30 {
		t.Errorf("listed %d objects, want 30", len(seen))
	}
	for name, k := range seen {
		if k != 1 {
			t.Errorf("%s listed %d times", name, k)
		}
	}
}

// A primary whose server refuses connections is given up on at once, not
// after minutes of retries, and the replica answers.
func TestOpenFailoverGivesUpOnAnUnreachableCopyAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "s3:http://" + l.Addr().String() + "/bucket/repo"
	l.Close()
	replicaDir := t.TempDir()
	replica, err := remote.OpenLocal(replicaDir)
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, replica, remote.Handle{Type: remote.Config, Name: "config"}, []byte("cfg"))

	var n notices
	retried := 0
	opts := remote.Options{S3AccessKey: "key", S3SecretKey: "secret", Retry: true, RetryPolicy: remote.RetryPolicy{
		OnRetry: func(string, int, int, error, time.Duration) { retried++ },
	}}
	f, err := remote.OpenFailover(context.Background(), []string{dead, replicaDir}, opts, remote.FailoverOptions{Warn: n.warn})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	got, err := remote.ReadAll(context.Background(), f, remote.Handle{Type: remote.Config, Name: "config"})
	if err != nil || string(got) != "cfg" {
		t.Fatalf("read config: %q %v", got, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing over took %v", d)
	}
	if retried != 0 {
		t.Errorf("%d retries against a server that refuses connections", retried)
	}
	if lines := n.all(); len(lines) != 1 || !strings.Contains(lines[0], "connection refused") || strings.Contains(lines[0], "secret") {
		t.Errorf("notices: %q", lines)
	}
	if f.Location() != "s3:http://"+l.Addr().String()+"/bucket/repo" {
		t.Errorf("location %q, want the primary's", f.Location())
	}
}

// A primary that answers but holds no repository (a replaced disk) is
// passed over for the replica that has one.
func TestFailoverPassesOverACopyWithoutConfig(t *testing.T) {
	ctx := context.Background()
	primary, replica := newLocal(t), newLocal(t)
	cfg := remote.Handle{Type: remote.Config, Name: "config"}
	mustSave(t, replica, cfg, []byte("the config"))
	snap := named(remote.Snapshot, []byte("a snapshot"))
	mustSave(t, replica, snap, []byte("a snapshot"))
	var n notices
	f := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{Warn: n.warn})
	if _, err := f.Stat(ctx, cfg); err != nil {
		t.Fatalf("stat config: %v", err)
	}
	b, err := remote.ReadAll(ctx, f, snap)
	if err != nil || string(b) != "a snapshot" {
		t.Fatalf("read after passing over the empty primary: %v %q", err, b)
	}
	if msgs := n.all(); len(msgs) == 0 || !strings.Contains(msgs[0], "holds no repository") {
		t.Errorf("notices %q", msgs)
	}
	// With no copy holding a config, the answer is "not found".
	empty := remote.NewFailover([]remote.Backend{newLocal(t), newLocal(t)}, remote.FailoverOptions{})
	if _, err := empty.Stat(ctx, cfg); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("no repository anywhere: %v", err)
	}
}

func TestFailoverListAllCopiesMergesTheCopies(t *testing.T) {
	primary, a, b := newLocal(t), newLocal(t), newLocal(t)
	one, two, three := []byte("one"), []byte("two"), []byte("three")
	mustSave(t, primary, named(remote.Keys, one), one)
	mustSave(t, a, named(remote.Keys, one), one)
	mustSave(t, a, named(remote.Keys, two), two)
	mustSave(t, b, named(remote.Keys, three), three)
	down := remote.NewFaulty(newLocal(t), remote.FaultConfig{Seed: 1, FailRate: 1})
	f := remote.NewFailover([]remote.Backend{primary, down, a, b}, remote.FailoverOptions{})
	seen := map[string]int{}
	if err := f.ListAllCopies(context.Background(), remote.Keys, func(fi remote.ObjectInfo) error { seen[fi.Name]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{one, two, three} {
		if seen[named(remote.Keys, d).Name] != 1 {
			t.Errorf("%s listed %d times, want once", d, seen[named(remote.Keys, d).Name])
		}
	}
	if len(seen) != 3 {
		t.Errorf("listed %d names, want 3", len(seen))
	}
	all := remote.NewFailover([]remote.Backend{down}, remote.FailoverOptions{})
	if err := all.ListAllCopies(context.Background(), remote.Keys, func(remote.ObjectInfo) error { return nil }); err == nil {
		t.Error("no copy answered, yet no error")
	}
}
