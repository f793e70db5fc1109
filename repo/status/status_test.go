package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
)

var now = time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)

// fakeRepo fabricates a copy of a repository: a config and objects of the
// given ages (listing is all status reads, so names need not be hashes).
type fakeRepo struct {
	t    *testing.T
	root string
	be   remote.Backend
}

func newFakeRepo(t *testing.T, id string) *fakeRepo {
	t.Helper()
	root := filepath.Join(t.TempDir(), "repo")
	be, err := remote.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRepo{t: t, root: root, be: be}
	f.put(remote.Handle{Type: remote.Config, Name: "config"},
		fmt.Sprintf(`{"format":"courtbak","version":%d,"id":%q}`, repo.FormatVersion, id), 30*24*time.Hour)
	return f
}

// put stores an object stored age before now.
func (f *fakeRepo) put(h remote.Handle, data string, age time.Duration) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.be.Save(ctx, h, []byte(data)); err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.root, string(h.Type), h.Name)
	switch h.Type {
	case remote.Config:
		p = filepath.Join(f.root, "config")
	case remote.Data:
		p = filepath.Join(f.root, "data", h.Name[:2], h.Name)
	}
	if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
		f.t.Fatal(err)
	}
}

// copyTo copies every object of f into other, keeping their times.
func (f *fakeRepo) copyTo(other *fakeRepo) {
	f.t.Helper()
	ctx := context.Background()
	for _, typ := range remote.AllTypes {
		_ = f.be.List(ctx, typ, func(fi remote.ObjectInfo) error {
			data, err := remote.ReadAll(ctx, f.be, fi.Handle)
			if err != nil {
				f.t.Fatal(err)
			}
			other.put(fi.Handle, string(data), now.Sub(fi.ModTime))
			return nil
		})
	}
}

func hexName(c byte, i int) string { return fmt.Sprintf("%c%063x", c, i) }

// court makes a primary with packs and snapshots, and a replica that
// lacks the newest pack and snapshot.
func court(t *testing.T) (primary, replica *fakeRepo) {
	id := strings.Repeat("ab", 32)
	primary, replica = newFakeRepo(t, id), newFakeRepo(t, id)
	for i := range 10 {
		primary.put(remote.Handle{Type: remote.Data, Name: hexName('a', i)}, strings.Repeat("x", 1000), time.Duration(10-i)*24*time.Hour)
	}
	primary.put(remote.Handle{Type: remote.Snapshot, Name: hexName('b', 1)}, "snap", 30*time.Hour)
	primary.copyTo(replica)
	primary.put(remote.Handle{Type: remote.Data, Name: hexName('a', 99)}, strings.Repeat("y", 500), 2*time.Hour)
	primary.put(remote.Handle{Type: remote.Snapshot, Name: hexName('b', 2)}, "snap2", 2*time.Hour)
	return primary, replica
}

func opener(sites map[string]*fakeRepo) Opener {
	return func(_ context.Context, url string) (remote.Backend, error) {
		if f, ok := sites[url]; ok {
			return f.be, nil
		}
		return nil, fmt.Errorf("%s: connection refused", url)
	}
}

func TestCollectMeasuresLagAgeGrowthAndVerification(t *testing.T) {
	primary, replica := court(t)
	// The city's run checked both copies; the center's later keyless run
	// found its own copy damaged.
	ctx := context.Background()
	city := Run{Finished: now.Add(-3 * time.Hour), Host: "city", Verdict: "intact", Copies: []RunCopy{
		{Location: primary.be.Location(), Status: "intact"}, {Location: replica.be.Location(), Status: "intact"}}}
	center := Run{Finished: now.Add(-time.Hour), Host: "center", Verdict: "problems", Problems: 2, Keyless: true,
		Copies: []RunCopy{{Location: replica.be.Location(), Status: "problems", Damaged: 2}}}
	if err := SaveState(ctx, primary.be, &State{Runs: []Run{city}}); err != nil {
		t.Fatal(err)
	}
	if err := SaveState(ctx, replica.be, &State{Runs: []Run{center}}); err != nil {
		t.Fatal(err)
	}
	c := Court{Label: "City court of A", Primary: Site{Label: "City", URL: "p"}, Replicas: []Site{{Label: "Center", URL: "r"}}, MaxAge: 26 * time.Hour}
	sum := Collect(context.Background(), []Court{c}, Options{Open: opener(map[string]*fakeRepo{"p": primary, "r": replica}), Now: func() time.Time { return now }})
	cs := sum.Courts[0]
	if cs.RepositoryID != strings.Repeat("ab", 32) || cs.Objects != 14 || !cs.NewestSnapshotStored.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("primary: id %s, %d objects, newest snapshot %s", cs.RepositoryID, cs.Objects, cs.NewestSnapshotStored)
	}
	// Week's growth: packs of days 1..7 ago and today's, and both snapshots.
	if want := int64(7*1000+500+4+5) / 7; cs.GrowthPerDay != want || cs.GrowthDays != 7 {
		t.Errorf("growth %d bytes/day over %g days, want %d over 7", cs.GrowthPerDay, cs.GrowthDays, want)
	}
	r := cs.Copies[1]
	if !r.Reachable || r.MissingObjects != 2 || r.MissingBytes != 505 || r.MissingSnapshots != 1 || !r.OldestMissing.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("replica lag: %+v", r)
	}
	// A fresh lag is no breach; the replica's failed verification is.
	if cs.OK || sum.OK || sum.Breached != 1 || len(cs.Breaches) != 1 || !strings.Contains(cs.Breaches[0], "Center") || !strings.Contains(cs.Breaches[0], "0 objects missing, 2 damaged") {
		t.Errorf("breaches: %q", cs.Breaches)
	}
	if r.LastVerification == nil || !r.LastVerification.Keyless || cs.Copies[0].LastVerification.Host != "city" {
		t.Errorf("last verification: %+v / %+v", r.LastVerification, cs.Copies[0].LastVerification)
	}
	// Each copy's last check is the newest run that checked it, wherever
	// it is recorded.
	if lc := cs.Copies[0].LastCheck; lc == nil || lc.Host != "city" || lc.Status != "intact" || lc.RecordedAt != "City" {
		t.Errorf("primary's last check: %+v", lc)
	}
	if lc := r.LastCheck; lc == nil || lc.Host != "center" || lc.Status != "problems" || lc.RecordedAt != "Center" {
		t.Errorf("replica's last check: %+v", lc)
	}
	// Without the center's run, the city's run is the replica's last check.
	if err := SaveState(ctx, replica.be, &State{}); err != nil {
		t.Fatal(err)
	}
	sum = Collect(ctx, []Court{c}, Options{Open: opener(map[string]*fakeRepo{"p": primary, "r": replica}), Now: func() time.Time { return now }})
	if lc := sum.Courts[0].Copies[1].LastCheck; !sum.OK || lc == nil || lc.Host != "city" || lc.RecordedAt != "City" || sum.Courts[0].Copies[1].LastVerification != nil {
		t.Errorf("replica checked by the city's run: %+v, breaches %q", lc, sum.Courts[0].Breaches)
	}
}

func TestCollectBreaches(t *testing.T) {
	primary, replica := court(t)
	sites := map[string]*fakeRepo{"p": primary, "r": replica}
	run := func(c Court, opts Options) CourtStatus {
		opts.Open, opts.Now = opener(sites), func() time.Time { return now }
		return Collect(context.Background(), []Court{c}, opts).Courts[0]
	}
	base := Court{Primary: Site{URL: "p"}, Replicas: []Site{{URL: "r"}}}
	for _, tc := range []struct {
		name   string
		court  func(Court) Court
		opts   Options
		breach string
	}{
		{"no threshold, all reachable", func(c Court) Court { return c }, Options{}, ""},
		{"newest snapshot stored too long ago", func(c Court) Court { c.MaxAge = time.Hour; return c }, Options{}, "newest snapshot was stored 2h00m ago, more than 1h"},
		{"replica lags behind the threshold", func(c Court) Court { c.MaxAge = 90 * time.Minute; return c }, Options{}, "lacks 2 objects"},
		{"replica unreachable", func(c Court) Court { c.Replicas = []Site{{Label: "DR pool", URL: "gone"}}; return c }, Options{}, "DR pool cannot be listed: gone: connection refused"},
		{"a replica of another repository", func(c Court) Court {
			sites["other"] = newFakeRepo(t, strings.Repeat("cd", 32))
			c.Replicas = []Site{{Label: "DR pool", URL: "other"}}
			return c
		}, Options{}, "DR pool holds another repository (cdcd"},
		{"keyed: one host's backups stopped", func(c Court) Court { c.MaxAge = 26 * time.Hour; return c },
			Options{Snapshots: func(context.Context, Court, remote.Backend) ([]Snapshot, error) {
				return []Snapshot{{Host: "court", Paths: []string{"/rec"}, Time: now.Add(-50 * time.Hour)}, {Host: "court", Paths: []string{"/rec"}, Time: now.Add(-30 * time.Hour)},
					{Host: "annex", Paths: []string{"/rec"}, Time: now.Add(-time.Hour)}}, nil
			}}, "the newest snapshot of /rec on court is 30h00m old"},
		{"keyed: wrong password", func(c Court) Court { return c },
			Options{Snapshots: func(context.Context, Court, remote.Backend) ([]Snapshot, error) {
				return nil, fmt.Errorf("wrong password")
			}}, "cannot be read with the password: wrong password"},
		{"keyless court among keyed ones", func(c Court) Court { return c },
			Options{Snapshots: func(context.Context, Court, remote.Backend) ([]Snapshot, error) { return nil, ErrNoPassword }}, ""},
	} {
		cs := run(tc.court(base), tc.opts)
		got := strings.Join(cs.Breaches, "; ")
		if (tc.breach == "") != cs.OK || !strings.Contains(got, tc.breach) {
			t.Errorf("%s: ok %v, breaches %q, want %q", tc.name, cs.OK, got, tc.breach)
		}
	}
	sites["void"] = &fakeRepo{be: mustLocal(t, filepath.Join(t.TempDir(), "void"))}
	cs := run(Court{Primary: Site{URL: "p"}, Replicas: []Site{{URL: "void"}}}, Options{})
	if cs.OK || !strings.Contains(strings.Join(cs.Breaches, ";"), "holds no repository") {
		t.Errorf("a replica with nothing: %q", cs.Breaches)
	}
	keyed := run(base, Options{Snapshots: func(context.Context, Court, remote.Backend) ([]Snapshot, error) {
		return []Snapshot{{Host: "court", Paths: []string{"/rec"}, Time: now.Add(-30 * time.Hour)}, {Host: "court", Paths: []string{"/rec"}, Time: now.Add(-3 * time.Hour), ID: "new"}}, nil
	}})
	if !keyed.Keyed || len(keyed.Snapshots) != 1 || keyed.Snapshots[0].ID != "new" || keyed.Snapshots[0].AgeSec != 3*3600 {
		t.Errorf("newest per host and paths: %+v", keyed.Snapshots)
	}
}

func mustLocal(t *testing.T, root string) remote.Backend {
	be, err := remote.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// counting counts the requests a backend receives.
type counting struct {
	remote.Backend
	mu           sync.Mutex
	lists, stats int
	loads, saves int
}

func (c *counting) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Backend.List(ctx, t, fn)
}

func (c *counting) Stat(ctx context.Context, h remote.Handle) (remote.ObjectInfo, error) {
	c.mu.Lock()
	c.stats++
	c.mu.Unlock()
	return c.Backend.Stat(ctx, h)
}

func (c *counting) Load(ctx context.Context, h remote.Handle, off, n int64, fn func(io.Reader) error) error {
	c.mu.Lock()
	c.loads++
	c.mu.Unlock()
	return c.Backend.Load(ctx, h, off, n, fn)
}

func (c *counting) Save(ctx context.Context, h remote.Handle, data []byte) error {
	c.mu.Lock()
	c.saves++
	c.mu.Unlock()
	return c.Backend.Save(ctx, h, data)
}

// TestCollectIsBoundedToListings proves the request count per court that
// usage.md states: per copy one listing per object type, a stat and a read
// of the verification state, and a read of the config; no other object
// read, nothing written.
func TestCollectIsBoundedToListings(t *testing.T) {
	primary, replica := court(t)
	if err := SaveState(context.Background(), primary.be, &State{Runs: []Run{{Finished: now, Verdict: "intact"}}}); err != nil {
		t.Fatal(err)
	}
	cp, cr := &counting{Backend: primary.be}, &counting{Backend: replica.be}
	open := func(_ context.Context, url string) (remote.Backend, error) {
		if url == "p" {
			return cp, nil
		}
		return cr, nil
	}
	Collect(context.Background(), []Court{{Primary: Site{URL: "p"}, Replicas: []Site{{URL: "r"}}}}, Options{Open: open, Now: func() time.Time { return now }})
	types := len(remote.AllTypes)
	if cp.lists != types || cp.stats != 1 || cp.loads != 2 || cp.saves != 0 {
		t.Errorf("primary: %d lists, %d stats, %d loads, %d saves; want %d, 1, 2 (state, config), 0", cp.lists, cp.stats, cp.loads, cp.saves, types)
	}
	if cr.lists != types || cr.stats != 1 || cr.loads != 1 || cr.saves != 0 {
		t.Errorf("replica: %d lists, %d stats, %d loads, %d saves; want %d, 1, 1 (config; no state), 0", cr.lists, cr.stats, cr.loads, cr.saves, types)
	}
}

// BenchmarkCollect100Courts summarises 100 courts of 3 copies, each copy
// holding 2,000 packs and 365 snapshots, on local storage.
func BenchmarkCollect100Courts(b *testing.B) {
	dir := b.TempDir()
	sites := map[string]remote.Backend{}
	var courts []Court
	for i := range 100 {
		c := Court{Label: fmt.Sprintf("Court %d", i), MaxAge: 26 * time.Hour}
		for j, role := range []string{"city", "center", "dr"} {
			root := filepath.Join(dir, fmt.Sprintf("%d-%s", i, role))
			if i == 0 {
				fabricate(b, root)
			} else {
				// Every court's copies hold the same listing: link the
				// first court's directories.
				if err := os.Symlink(filepath.Join(dir, "0-"+role), root); err != nil {
					b.Fatal(err)
				}
			}
			be, err := remote.OpenLocal(root)
			if err != nil {
				b.Fatal(err)
			}
			url := root
			sites[url] = be
			if j == 0 {
				c.Primary = Site{Label: role, URL: url}
			} else {
				c.Replicas = append(c.Replicas, Site{Label: role, URL: url})
			}
		}
		courts = append(courts, c)
	}
	open := func(_ context.Context, url string) (remote.Backend, error) { return sites[url], nil }
	b.ResetTimer()
	for range b.N {
		sum := Collect(context.Background(), courts, Options{Open: open})
		if len(sum.Courts) != 100 || sum.Courts[99].Objects != 2000+365+1 {
			b.Fatalf("%d courts, %d objects", len(sum.Courts), sum.Courts[99].Objects)
		}
	}
}

// fabricate writes a copy of 2,000 packs and 365 snapshots (empty files:
// listing reads names and sizes only).
func fabricate(b *testing.B, root string) {
	for _, d := range []string{"data", "snapshots", "index", "keys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`{"format":"courtbak","version":%d,"id":%q}`, repo.FormatVersion, strings.Repeat("ab", 32))
	if err := os.WriteFile(filepath.Join(root, "config"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	for i := range 2000 {
		name := hexName('a', i)
		if err := os.MkdirAll(filepath.Join(root, "data", name[:2]), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "data", name[:2], name), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 365 {
		if err := os.WriteFile(filepath.Join(root, "snapshots", hexName('b', i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPagesListCourtsNeedingAttentionFirst(t *testing.T) {
	s := &Summary{Courts: []CourtStatus{{Label: "A", OK: true}, {Label: "B"}, {Label: "C", OK: true}, {Label: "D"}}}
	var got []string
	for _, c := range s.ByAttention() {
		got = append(got, c.Label)
	}
	if strings.Join(got, "") != "BDAC" || s.Courts[0].Label != "A" {
		t.Errorf("order %v; the summary's own order changed: %v", got, s.Courts[0].Label)
	}
	page, err := s.HTML(time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if b, d, a := strings.Index(string(page), ">B<"), strings.Index(string(page), ">D<"), strings.Index(string(page), ">A<"); b < 0 || !(b < d && d < a) {
		t.Errorf("page order: B at %d, D at %d, A at %d", b, d, a)
	}
}

// A court without a label is named by its URL; credentials typed into that
// URL must not reach the summary (printed, --json, the HTML page).
func TestCollectUnlabelledCourtHidesCredentials(t *testing.T) {
	url := "s3:http://AKIAEXAMPLE:SuperSecret99@127.0.0.1:1/bucket"
	c := Court{Primary: Site{URL: url}}
	sum := Collect(context.Background(), []Court{c}, Options{Open: func(context.Context, string) (remote.Backend, error) {
		return nil, errors.New("refused")
	}, Now: func() time.Time { return now }})
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "SuperSecret99") {
		t.Errorf("the status summary shows the secret: %s", b)
	}
	if got := sum.Courts[0].Label; got != "s3:http://127.0.0.1:1/bucket" {
		t.Errorf("label %q, want the URL without its credentials", got)
	}
}
