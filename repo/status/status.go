package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/report"
)

// Schema names the status document; SchemaVersion changes when a field is
// removed or changes meaning.
const (
	Schema        = "courtbak-status"
	SchemaVersion = 1
)

// Site is one copy of a court's repository to look at.
type Site struct {
	Label string
	URL   string
}

// Court is one court: its repository, its replicas and its threshold. A
// profile file fills these, or the --repo and --replica flags for one.
type Court struct {
	Label    string
	Primary  Site
	Replicas []Site
	// MaxAge is the recovery point objective: the newest snapshot (of
	// every host and set of paths, with the password) must be younger,
	// and every snapshot the primary has held that long must be at every
	// replica. 0 checks no age.
	MaxAge time.Duration
}

// Opener opens the storage at a URL.
type Opener func(ctx context.Context, url string) (remote.Backend, error)

// SnapshotLister reads the snapshots of an open repository with the
// password; it returns ErrNoPassword when it has none for the court.
type SnapshotLister func(ctx context.Context, court Court, be remote.Backend) ([]Snapshot, error)

// ErrNoPassword tells Collect that a court is looked at keyless.
var ErrNoPassword = errors.New("no password")

// Options configure Collect.
type Options struct {
	Open Opener
	// Snapshots reads snapshots with the password; nil means keyless.
	Snapshots SnapshotLister
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Workers bounds the courts looked at in parallel; 0 means 8.
	Workers int
	// GrowthWindow is the span growth per day is measured over; 0 means
	// 7 days.
	GrowthWindow time.Duration
}

// Summary is the status of every court.
type Summary struct {
	Schema        string    `json:"schema"`
	SchemaVersion int       `json:"schema_version"`
	Generated     time.Time `json:"generated"`
	// OK is false when any court breaches a threshold.
	OK       bool          `json:"ok"`
	Breached int           `json:"courts_breached"`
	Courts   []CourtStatus `json:"courts"`
}

// CourtStatus is one court's protection.
type CourtStatus struct {
	Label        string   `json:"label"`
	OK           bool     `json:"ok"`
	Breaches     []string `json:"breaches"`
	RepositoryID string   `json:"repository_id,omitempty"`
	MaxAgeSec    float64  `json:"max_age_s,omitempty"`
	// NewestSnapshotStored is when the primary stored its newest snapshot
	// object (from the listing: no password needed).
	NewestSnapshotStored time.Time `json:"newest_snapshot_stored,omitzero"`
	// Bytes and Objects are the primary's size; GrowthPerDay the bytes it
	// stored per day over GrowthDays days.
	Objects      int     `json:"objects"`
	Bytes        int64   `json:"bytes"`
	GrowthPerDay int64   `json:"growth_bytes_per_day"`
	GrowthDays   float64 `json:"growth_days"`
	// Keyed is true when the snapshots were read with the password;
	// Snapshots then holds the newest of each host and set of paths.
	Keyed     bool         `json:"keyed"`
	KeyError  string       `json:"key_error,omitempty"`
	Snapshots []Snapshot   `json:"snapshots"`
	Copies    []CopyStatus `json:"copies"`
}

// Snapshot is the newest snapshot of one host and set of paths.
type Snapshot struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	Paths  []string  `json:"paths"`
	AgeSec float64   `json:"age_s"`
	TooOld bool      `json:"too_old"`
}

// CopyStatus is one copy of a court's repository.
type CopyStatus struct {
	Label     string `json:"label"`
	Role      string `json:"role"`
	Location  string `json:"location"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// RepositoryID is the id in the copy's config ("" without one).
	RepositoryID string `json:"repository_id,omitempty"`
	Objects      int    `json:"objects"`
	Bytes        int64  `json:"bytes"`
	// NewestSnapshotStored is when this copy stored its newest snapshot
	// object.
	NewestSnapshotStored time.Time `json:"newest_snapshot_stored,omitzero"`
	// MissingObjects and MissingBytes are what the primary holds and this
	// replica lacks: the replication lag. OldestMissing is when the
	// primary stored the oldest of them.
	MissingObjects   int       `json:"missing_objects"`
	MissingBytes     int64     `json:"missing_bytes"`
	MissingSnapshots int       `json:"missing_snapshots"`
	OldestMissing    time.Time `json:"oldest_missing,omitzero"`
	// LastVerification is the newest verify run recorded at this copy.
	LastVerification *Run   `json:"last_verification"`
	StateError       string `json:"state_error,omitempty"`
	// LastCheck is the newest verify run that checked this copy, wherever
	// it was recorded: the city's run with --replica checks the center's
	// copy and records it at the city's repository.
	LastCheck *Check `json:"last_check"`
}

// Check is what one verify run found at one copy.
type Check struct {
	Finished time.Time `json:"finished"`
	Host     string    `json:"host"`
	Keyless  bool      `json:"keyless"`
	// Status is the copy's status in that run: intact, repaired, problems
	// or unreachable.
	Status  string `json:"status"`
	Missing int    `json:"missing"`
	Damaged int    `json:"damaged"`
	// RecordedAt names the copy whose verification state holds the run.
	RecordedAt string `json:"recorded_at"`
}

// lastChecks sets each copy's LastCheck from the runs every copy's state
// records, matching copies by location.
func lastChecks(copies []CopyStatus, states []*State) {
	for i := range copies {
		cp := &copies[i]
		for j, st := range states {
			if st == nil {
				continue
			}
			for k := len(st.Runs) - 1; k >= 0; k-- {
				run := &st.Runs[k]
				if cp.LastCheck != nil && !run.Finished.After(cp.LastCheck.Finished) {
					break
				}
				found := false
				for _, rc := range run.Copies {
					if rc.Location == cp.Location {
						cp.LastCheck = &Check{Finished: run.Finished, Host: run.Host, Keyless: run.Keyless, Status: rc.Status,
							Missing: rc.Missing, Damaged: rc.Damaged, RecordedAt: copies[j].Name()}
						found = true
						break
					}
				}
				if found {
					break
				}
			}
		}
	}
}

// Collect looks at every court, several at a time. It never fails as a
// whole: what cannot be reached is a breach of that court.
func Collect(ctx context.Context, courts []Court, opts Options) *Summary {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.GrowthWindow <= 0 {
		opts.GrowthWindow = 7 * 24 * time.Hour
	}
	now := opts.Now()
	s := &Summary{Schema: Schema, SchemaVersion: SchemaVersion, Generated: now.UTC(), OK: true,
		Courts: make([]CourtStatus, len(courts))}
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Workers)
	for i, c := range courts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.Courts[i] = collectCourt(ctx, c, opts, now)
		}()
	}
	wg.Wait()
	for _, c := range s.Courts {
		if !c.OK {
			s.OK = false
			s.Breached++
		}
	}
	return s
}

// errNoRepository is the error of a copy that lists no objects at all.
const errNoRepository = "no repository here"

// NewestSnapshot is the time of the court's newest snapshot: of the
// snapshots read with the password, else when the newest snapshot object
// was stored.
func (c CourtStatus) NewestSnapshot() time.Time {
	var t time.Time
	for _, s := range c.Snapshots {
		if s.Time.After(t) {
			t = s.Time
		}
	}
	if t.IsZero() {
		return c.NewestSnapshotStored
	}
	return t
}

// listing is what one copy's listing tells.
type listing struct {
	objects map[remote.Handle]remote.ObjectInfo
	err     error
}

// collectCourt looks at one court: every copy listed at once, then the
// state objects, then, with the password, the snapshots.
func collectCourt(ctx context.Context, c Court, opts Options, now time.Time) CourtStatus {
	cs := CourtStatus{Label: c.Label, MaxAgeSec: c.MaxAge.Seconds(), Snapshots: []Snapshot{}, Breaches: []string{}}
	if cs.Label == "" {
		cs.Label = remote.Redact(c.Primary.URL) // credentials typed into the URL stay out of every output
	}
	sites := append([]Site{c.Primary}, c.Replicas...)
	cs.Copies = make([]CopyStatus, len(sites))
	backends := make([]remote.Backend, len(sites))
	lists := make([]listing, len(sites))
	states := make([]*State, len(sites))
	var wg sync.WaitGroup
	for i, site := range sites {
		cp := &cs.Copies[i]
		cp.Label, cp.Location, cp.Role = site.Label, remote.Redact(site.URL), "replica"
		if i == 0 {
			cp.Role = "primary"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			be, err := opts.Open(ctx, site.URL)
			if err != nil {
				lists[i].err = err
				return
			}
			backends[i] = be
			cp.Location = remote.Redact(be.Location())
			lists[i] = listCopy(ctx, be)
			if lists[i].err != nil {
				return
			}
			st, err := LoadState(ctx, be)
			if err != nil {
				cp.StateError = err.Error()
			} else {
				cp.LastVerification, states[i] = st.Last(), st
			}
			cp.RepositoryID = repositoryID(ctx, be, lists[i].objects)
		}()
	}
	wg.Wait()
	defer func() {
		for _, be := range backends {
			if be != nil {
				be.Close()
			}
		}
	}()
	breach := func(format string, args ...any) { cs.Breaches = append(cs.Breaches, fmt.Sprintf(format, args...)) }
	lastChecks(cs.Copies, states)

	primary := lists[0].objects
	for i := range sites {
		cp := &cs.Copies[i]
		l := lists[i]
		switch {
		case l.err != nil:
			cp.Error = l.err.Error()
			breach("%s cannot be listed: %v", copyName(cp), l.err)
			continue
		case len(l.objects) == 0:
			cp.Error = errNoRepository
			breach("%s holds no repository", copyName(cp))
			continue
		}
		cp.Reachable = true
		if i > 0 && cp.RepositoryID != "" && cs.Copies[0].RepositoryID != "" && cp.RepositoryID != cs.Copies[0].RepositoryID {
			breach("%s holds another repository (%s), not a copy of %s: check its URL", copyName(cp), cp.RepositoryID, cs.Copies[0].RepositoryID)
			continue
		}
		for h, fi := range l.objects {
			cp.Objects++
			cp.Bytes += fi.Size
			if h.Type == remote.Snapshot && fi.ModTime.After(cp.NewestSnapshotStored) {
				cp.NewestSnapshotStored = fi.ModTime.UTC()
			}
		}
		switch lc := cp.LastCheck; {
		case lc == nil:
		case lc.Status == "problems":
			breach("the last verification of %s (%s, on %s) found problems: %d objects missing, %d damaged", copyName(cp),
				lc.Finished.Format(time.RFC3339), lc.Host, lc.Missing, lc.Damaged)
		case lc.Status == "unreachable":
			breach("the last verification of %s (%s, on %s) could not reach it", copyName(cp), lc.Finished.Format(time.RFC3339), lc.Host)
		}
		if i == 0 || primary == nil {
			continue
		}
		for h, fi := range primary {
			if _, ok := l.objects[h]; ok {
				continue
			}
			cp.MissingObjects++
			cp.MissingBytes += fi.Size
			if h.Type == remote.Snapshot {
				cp.MissingSnapshots++
			}
			if cp.OldestMissing.IsZero() || fi.ModTime.Before(cp.OldestMissing) {
				cp.OldestMissing = fi.ModTime.UTC()
			}
		}
		if c.MaxAge > 0 && cp.MissingObjects > 0 && !cp.OldestMissing.IsZero() && now.Sub(cp.OldestMissing) > c.MaxAge {
			breach("%s lacks %d objects (%s) the primary has held for more than %s", copyName(cp), cp.MissingObjects, report.BinarySize(cp.MissingBytes), Duration(c.MaxAge))
		}
	}
	if primary == nil {
		cs.OK = len(cs.Breaches) == 0
		return cs
	}
	p := cs.Copies[0]
	cs.Objects, cs.Bytes, cs.NewestSnapshotStored = p.Objects, p.Bytes, p.NewestSnapshotStored
	cs.GrowthPerDay, cs.GrowthDays = growth(primary, now, opts.GrowthWindow)
	cs.RepositoryID = p.RepositoryID

	if opts.Snapshots != nil {
		snaps, err := opts.Snapshots(ctx, c, backends[0])
		switch {
		case errors.Is(err, ErrNoPassword):
		case err != nil:
			cs.KeyError = err.Error()
			breach("the snapshots cannot be read with the password: %v", err)
		default:
			cs.Keyed = true
			cs.Snapshots = newestPerGroup(snaps, now, c.MaxAge)
		}
	}
	if c.MaxAge > 0 {
		switch {
		case cs.Keyed:
			for _, sn := range cs.Snapshots {
				if sn.TooOld {
					breach("the newest snapshot of %s on %s is %s old, more than %s", strings.Join(sn.Paths, ", "), sn.Host, age(time.Duration(sn.AgeSec)*time.Second), Duration(c.MaxAge))
				}
			}
			if len(cs.Snapshots) == 0 {
				breach("the repository has no snapshot")
			}
		case cs.NewestSnapshotStored.IsZero():
			breach("the repository has no snapshot")
		case now.Sub(cs.NewestSnapshotStored) > c.MaxAge:
			breach("the newest snapshot was stored %s ago, more than %s", age(now.Sub(cs.NewestSnapshotStored)), Duration(c.MaxAge))
		}
	}
	cs.OK = len(cs.Breaches) == 0
	return cs
}

// repositoryID reads a copy's config (one request) for the repository id
// it holds; "" when it has none that parses.
func repositoryID(ctx context.Context, be remote.Backend, objects map[remote.Handle]remote.ObjectInfo) string {
	h := remote.Handle{Type: remote.Config, Name: "config"}
	if _, ok := objects[h]; !ok {
		return ""
	}
	data, err := remote.ReadAll(ctx, be, h)
	if err != nil {
		return ""
	}
	conf, err := repo.ParseConfig(data)
	if err != nil {
		return ""
	}
	return conf.ID
}

// listCopy lists every object of a copy: one listing per object type (the
// storage pages it, 1,000 names a request on S3).
func listCopy(ctx context.Context, be remote.Backend) listing {
	l := listing{objects: map[remote.Handle]remote.ObjectInfo{}}
	for _, t := range remote.AllTypes {
		err := be.List(ctx, t, func(fi remote.ObjectInfo) error {
			l.objects[fi.Handle] = fi
			return nil
		})
		if err != nil {
			return listing{err: err}
		}
	}
	return l
}

// growth is the bytes per day the objects stored within window add, over
// the window or, for a younger repository, its age (at least a day).
func growth(objects map[remote.Handle]remote.ObjectInfo, now time.Time, window time.Duration) (perDay int64, days float64) {
	var (
		recent int64
		oldest time.Time
	)
	for _, fi := range objects {
		if fi.ModTime.IsZero() {
			continue
		}
		if oldest.IsZero() || fi.ModTime.Before(oldest) {
			oldest = fi.ModTime
		}
		if now.Sub(fi.ModTime) <= window {
			recent += fi.Size
		}
	}
	span := window
	if !oldest.IsZero() && now.Sub(oldest) < span {
		span = now.Sub(oldest)
	}
	days = max(span.Hours()/24, 1)
	return int64(float64(recent) / days), days
}

// newestPerGroup keeps the newest snapshot of each host and set of paths,
// sorted by host and paths, and marks those older than maxAge.
func newestPerGroup(snaps []Snapshot, now time.Time, maxAge time.Duration) []Snapshot {
	newest := map[string]Snapshot{}
	for _, s := range snaps {
		paths := slices.Clone(s.Paths)
		slices.Sort(paths)
		key := s.Host + "\x00" + strings.Join(paths, "\x00")
		if old, ok := newest[key]; !ok || s.Time.After(old.Time) {
			newest[key] = s
		}
	}
	out := make([]Snapshot, 0, len(newest))
	for _, s := range newest {
		s.Time = s.Time.UTC()
		s.AgeSec = now.Sub(s.Time).Round(time.Second).Seconds()
		s.TooOld = maxAge > 0 && now.Sub(s.Time) > maxAge
		if s.Paths == nil {
			s.Paths = []string{}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return strings.Join(out[i].Paths, ",") < strings.Join(out[j].Paths, ",")
	})
	return out
}

func copyName(c *CopyStatus) string {
	if c.Label != "" {
		return c.Label
	}
	return c.Role + " " + c.Location
}

// age shows a duration for people: "3h12m", "4d6h".
func age(d time.Duration) string {
	d = d.Round(time.Minute)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if d < time.Minute {
		return "<1m"
	}
	if h == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

// Age shows how long ago t was at now, for people ("3h12m"); "never" for
// the zero time.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(now.Sub(t))
}
