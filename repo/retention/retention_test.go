package retention_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/retention"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// zone is fixed so that results never depend on the machine's time zone.
var zone = time.FixedZone("UTC+1", 3600)

func at(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, zone)
}

// snap makes a snapshot of host court1, path /rec, whose ID starts with n.
func snap(n byte, t time.Time, tags ...string) *snapshot.Snapshot {
	return &snapshot.Snapshot{Time: t, Hostname: "court1", Paths: []string{"/rec"}, Tags: tags, ID: blob.ID{n}}
}

// history is a single group, deliberately not in time order.
// Newest first it is 8, 7, 6, 5, 4, 3, 2, 1.
func history() []*snapshot.Snapshot {
	return []*snapshot.Snapshot{
		snap(3, at(2026, 3, 1, 10, 15)), // Sunday, ISO week 9
		snap(1, at(2026, 3, 1, 9, 0), "court-hold"),
		snap(2, at(2026, 3, 1, 9, 30)),
		snap(5, at(2026, 3, 2, 20, 0)), // Monday, ISO week 10
		snap(4, at(2026, 3, 2, 8, 0), "court-hold", "audit"),
		snap(6, at(2026, 3, 9, 12, 0)), // ISO week 11
		snap(8, at(2027, 2, 1, 12, 0), "court-hold"),
		snap(7, at(2026, 4, 15, 12, 0)),
	}
}

// describe renders a group as "n reason,reason" for each kept snapshot and
// "n -" for each removed one, each part newest first.
func describe(t *testing.T, g retention.Group) []string {
	t.Helper()
	var out []string
	for _, k := range g.Keep {
		if len(k.Reasons) == 0 {
			t.Errorf("snapshot %d kept without a reason", k.Snapshot.ID[0])
		}
		out = append(out, fmt.Sprintf("%d %s", k.Snapshot.ID[0], strings.Join(k.Reasons, ",")))
	}
	for _, sn := range g.Remove {
		out = append(out, fmt.Sprintf("%d -", sn.ID[0]))
	}
	return out
}

func applyOne(t *testing.T, snaps []*snapshot.Snapshot, p retention.Policy) []string {
	t.Helper()
	groups := retention.Apply(snaps, p)
	if len(groups) != 1 {
		t.Fatalf("got %d groups, want 1", len(groups))
	}
	if n := len(groups[0].Keep) + len(groups[0].Remove); n != len(snaps) {
		t.Fatalf("group holds %d snapshots, want %d", n, len(snaps))
	}
	return describe(t, groups[0])
}

func TestApplyRules(t *testing.T) {
	tests := []struct {
		name string
		p    retention.Policy
		want []string
	}{
		{"empty policy keeps nothing", retention.Policy{},
			[]string{"8 -", "7 -", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"last 3", retention.Policy{Last: 3},
			[]string{"8 last", "7 last", "6 last", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"last unlimited", retention.Policy{Last: -1},
			[]string{"8 last", "7 last", "6 last", "5 last", "4 last", "3 last", "2 last", "1 last"}},
		{"last more than snapshots", retention.Policy{Last: 20},
			[]string{"8 last", "7 last", "6 last", "5 last", "4 last", "3 last", "2 last", "1 last"}},
		{"hourly 4", retention.Policy{Hourly: 4},
			[]string{"8 hourly", "7 hourly", "6 hourly", "5 hourly", "4 -", "3 -", "2 -", "1 -"}},
		{"hourly unlimited: 2 and 1 share 09h", retention.Policy{Hourly: -1},
			[]string{"8 hourly", "7 hourly", "6 hourly", "5 hourly", "4 hourly", "3 hourly", "2 hourly", "1 -"}},
		{"daily 3", retention.Policy{Daily: 3},
			[]string{"8 daily", "7 daily", "6 daily", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"daily unlimited", retention.Policy{Daily: -1},
			[]string{"8 daily", "7 daily", "6 daily", "5 daily", "3 daily", "4 -", "2 -", "1 -"}},
		{"daily more than days", retention.Policy{Daily: 100},
			[]string{"8 daily", "7 daily", "6 daily", "5 daily", "3 daily", "4 -", "2 -", "1 -"}},
		{"weekly unlimited", retention.Policy{Weekly: -1},
			[]string{"8 weekly", "7 weekly", "6 weekly", "5 weekly", "3 weekly", "4 -", "2 -", "1 -"}},
		{"weekly 4", retention.Policy{Weekly: 4},
			[]string{"8 weekly", "7 weekly", "6 weekly", "5 weekly", "4 -", "3 -", "2 -", "1 -"}},
		{"monthly 2", retention.Policy{Monthly: 2},
			[]string{"8 monthly", "7 monthly", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"monthly unlimited", retention.Policy{Monthly: -1},
			[]string{"8 monthly", "7 monthly", "6 monthly", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"yearly 1", retention.Policy{Yearly: 1},
			[]string{"8 yearly", "7 -", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"yearly more than years", retention.Policy{Yearly: 5},
			[]string{"8 yearly", "7 yearly", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"tags in policy order", retention.Policy{Tags: []string{"audit", "court-hold", "audit"}},
			[]string{"8 tag court-hold", "4 tag audit,tag court-hold", "1 tag court-hold", "7 -", "6 -", "5 -", "3 -", "2 -"}},
		{"tag nobody carries", retention.Policy{Tags: []string{"appeal"}},
			[]string{"8 -", "7 -", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"within spans from the newest snapshot", retention.Policy{Within: 30 * 24 * time.Hour},
			[]string{"8 within 720h0m0s", "7 -", "6 -", "5 -", "4 -", "3 -", "2 -", "1 -"}},
		{"combined rules, reasons in order",
			retention.Policy{Last: 1, Hourly: 1, Daily: 2, Weekly: 1, Monthly: 3, Yearly: 1,
				Within: 1000 * time.Hour, Tags: []string{"court-hold"}},
			[]string{
				"8 last,hourly,daily,weekly,monthly,yearly,within 1000h0m0s,tag court-hold",
				"7 daily,monthly", "6 monthly", "4 tag court-hold", "1 tag court-hold",
				"5 -", "3 -", "2 -",
			}},
		{"rules overlap but each counts its own keeps",
			retention.Policy{Last: 2, Daily: 4},
			[]string{"8 last,daily", "7 last,daily", "6 daily", "5 daily", "4 -", "3 -", "2 -", "1 -"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := applyOne(t, history(), tt.p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWeeklyAcrossYearBoundary(t *testing.T) {
	// Check the calendar facts this test relies on rather than assuming them.
	for _, c := range []struct {
		t          time.Time
		year, week int
	}{
		{at(2026, 12, 28, 12, 0), 2026, 53},
		{at(2026, 12, 31, 12, 0), 2026, 53},
		{at(2027, 1, 1, 12, 0), 2026, 53},
		{at(2027, 1, 4, 12, 0), 2027, 1},
	} {
		if y, w := c.t.ISOWeek(); y != c.year || w != c.week {
			t.Fatalf("%s is ISO week %d-W%02d, test assumes %d-W%02d", c.t, y, w, c.year, c.week)
		}
	}
	snaps := []*snapshot.Snapshot{
		snap(1, at(2026, 12, 28, 12, 0)),
		snap(2, at(2026, 12, 31, 12, 0)),
		snap(3, at(2027, 1, 1, 12, 0)),
		snap(4, at(2027, 1, 4, 12, 0)),
	}
	tests := []struct {
		name string
		p    retention.Policy
		want []string
	}{
		{"weekly: 2026-12-31 and 2027-01-01 share 2026-W53", retention.Policy{Weekly: -1},
			[]string{"4 weekly", "3 weekly", "2 -", "1 -"}},
		{"yearly splits them", retention.Policy{Yearly: -1},
			[]string{"4 yearly", "2 yearly", "3 -", "1 -"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := applyOne(t, snaps, tt.p); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBucketsUseStoredLocation(t *testing.T) {
	// 00:30 and 01:30 on 10 March at UTC+1 are the same local day, but
	// 23:30 on 9 March and 00:30 on 10 March in UTC.
	early, late := at(2026, 3, 10, 0, 30), at(2026, 3, 10, 1, 30)
	tests := []struct {
		name  string
		early time.Time
		want  []string
	}{
		{"same zone, same day", early, []string{"2 daily", "1 -"}},
		{"same instant stored in UTC is the day before", early.UTC(), []string{"2 daily", "1 daily"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snaps := []*snapshot.Snapshot{snap(1, tt.early), snap(2, late)}
			if got := applyOne(t, snaps, retention.Policy{Daily: -1}); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWithinBoundary(t *testing.T) {
	newest := at(2026, 5, 10, 12, 0)
	snaps := []*snapshot.Snapshot{
		snap(1, newest.Add(-24*time.Hour-time.Second)), // just outside
		snap(2, newest.Add(-24*time.Hour)),             // exactly at the boundary
		snap(3, newest.Add(-time.Hour)),
		snap(4, newest),
	}
	got := applyOne(t, snaps, retention.Policy{Within: 24 * time.Hour})
	want := []string{"4 within 24h0m0s", "3 within 24h0m0s", "2 within 24h0m0s", "1 -"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestEqualTimesOrderedByID(t *testing.T) {
	when := at(2026, 6, 1, 9, 0)
	snaps := []*snapshot.Snapshot{snap(2, when), snap(1, when), snap(3, when.Add(-time.Minute))}
	got := applyOne(t, snaps, retention.Policy{Last: 1, Daily: 1})
	want := []string{"1 last,daily", "2 -", "3 -"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestGrouping(t *testing.T) {
	mk := func(n byte, host string, day int, paths ...string) *snapshot.Snapshot {
		return &snapshot.Snapshot{Time: at(2026, 7, day, 12, 0), Hostname: host, Paths: paths, ID: blob.ID{n}}
	}
	snaps := []*snapshot.Snapshot{
		mk(1, "court2", 1, "/rec/b", "/rec/a"),
		mk(2, "court1", 2, "/rec"),
		nil,
		mk(3, "court2", 3, "/rec/a", "/rec/b"),
		mk(4, "court1", 4, "/rec", "/extra"),
		mk(5, "court1", 5, "/rec"),
		mk(6, "court2", 6, "/rec"),
	}
	groups := retention.Apply(snaps, retention.Policy{Last: 1})
	type summary struct {
		host  string
		paths []string
		desc  []string
	}
	want := []summary{
		{"court1", []string{"/extra", "/rec"}, []string{"4 last"}},
		{"court1", []string{"/rec"}, []string{"5 last", "2 -"}},
		{"court2", []string{"/rec"}, []string{"6 last"}},
		{"court2", []string{"/rec/a", "/rec/b"}, []string{"3 last", "1 -"}},
	}
	var got []summary
	for _, g := range groups {
		got = append(got, summary{g.Host, g.Paths, describe(t, g)})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestApplyEmptyInput(t *testing.T) {
	if groups := retention.Apply(nil, retention.Policy{Last: 1}); len(groups) != 0 {
		t.Errorf("got %d groups for no snapshots, want 0", len(groups))
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	snaps := history()
	snaps[0].Paths = []string{"/z", "/a"}
	snaps[1].Paths = []string{"/a", "/z"}
	before := make([]snapshot.Snapshot, len(snaps))
	ptrs := slices.Clone(snaps)
	for i, sn := range snaps {
		before[i] = *sn
		before[i].Paths = slices.Clone(sn.Paths)
		before[i].Tags = slices.Clone(sn.Tags)
	}
	groups := retention.Apply(snaps, retention.Policy{Last: 1, Daily: -1, Tags: []string{"court-hold"}})
	if len(groups) != 2 {
		t.Fatalf("got %d groups, want 2", len(groups))
	}
	if !slices.Equal(snaps, ptrs) {
		t.Errorf("Apply reordered its input slice")
	}
	for i, sn := range snaps {
		if !reflect.DeepEqual(*sn, before[i]) {
			t.Errorf("Apply modified snapshot %d:\n got  %+v\n want %+v", i, *sn, before[i])
		}
	}
	// The group's sorted paths must not alias a snapshot's paths.
	for _, g := range groups {
		if len(g.Paths) == 2 {
			g.Paths[0] = "/changed"
		}
	}
	if snaps[0].Paths[1] != "/a" || snaps[1].Paths[0] != "/a" {
		t.Errorf("group paths alias snapshot paths: %q %q", snaps[0].Paths, snaps[1].Paths)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    retention.Policy
		want []string // substrings of the error; nil means no error
	}{
		{"zero", retention.Policy{}, nil},
		{"all unlimited", retention.Policy{Last: -1, Hourly: -1, Daily: -1, Weekly: -1, Monthly: -1, Yearly: -1}, nil},
		{"ordinary", retention.Policy{Daily: 7, Within: time.Hour, Tags: []string{"court-hold"}}, nil},
		{"last", retention.Policy{Last: -2}, []string{"--keep-last must be -1 (unlimited) or more, got -2"}},
		{"hourly", retention.Policy{Hourly: -5}, []string{"--keep-hourly must be -1 (unlimited) or more, got -5"}},
		{"daily", retention.Policy{Daily: -3}, []string{"--keep-daily must be -1 (unlimited) or more, got -3"}},
		{"weekly", retention.Policy{Weekly: -2}, []string{"--keep-weekly must be -1 (unlimited) or more, got -2"}},
		{"monthly", retention.Policy{Monthly: -9}, []string{"--keep-monthly must be -1 (unlimited) or more, got -9"}},
		{"yearly", retention.Policy{Yearly: -2}, []string{"--keep-yearly must be -1 (unlimited) or more, got -2"}},
		{"within", retention.Policy{Within: -time.Hour}, []string{"--keep-within must not be negative, got -1h0m0s"}},
		{"empty tag", retention.Policy{Tags: []string{"a", ""}}, []string{"--keep-tag must not be empty"}},
		{"several at once", retention.Policy{Last: -2, Yearly: -7, Within: -time.Second},
			[]string{"--keep-last", "got -2", "--keep-yearly", "got -7", "--keep-within"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	tests := []struct {
		p    retention.Policy
		want bool
	}{
		{retention.Policy{}, true},
		{retention.Policy{Tags: []string{}}, true},
		{retention.Policy{Last: 1}, false},
		{retention.Policy{Hourly: -1}, false},
		{retention.Policy{Daily: 1}, false},
		{retention.Policy{Weekly: 1}, false},
		{retention.Policy{Monthly: 1}, false},
		{retention.Policy{Yearly: 1}, false},
		{retention.Policy{Within: time.Nanosecond}, false},
		{retention.Policy{Tags: []string{"court-hold"}}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Empty(); got != tt.want {
			t.Errorf("%+v.Empty() = %v, want %v", tt.p, got, tt.want)
		}
	}
}
