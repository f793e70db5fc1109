// Package retention decides which snapshots a retention policy keeps and
// which it removes. It is the decision half of the forget command: it never
// deletes anything and never modifies the snapshots it is given.
package retention

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/courtbak/courtbak/repo/snapshot"
)

// Policy says which snapshots to keep. A count of 0 means the rule is not
// used; -1 means the rule has no limit (one snapshot is kept in every
// bucket that has one).
type Policy struct {
	Last    int // keep the Last newest snapshots
	Hourly  int // keep the newest snapshot of each of the Hourly most recent hours
	Daily   int // ... days
	Weekly  int // ... ISO weeks
	Monthly int // ... months
	Yearly  int // ... years

	// Within keeps every snapshot whose time is no earlier than the time of
	// the group's newest snapshot minus Within. Zero means the rule is unused.
	Within time.Duration

	// Tags keeps every snapshot carrying any of these tags.
	Tags []string
}

// Empty reports whether no rule is set. The forget command must refuse to
// run with an empty policy, since Apply would then remove every snapshot.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 &&
		p.Monthly == 0 && p.Yearly == 0 && p.Within == 0 && len(p.Tags) == 0
}

// Validate reports every setting that is out of range, naming the
// command-line flag that sets it.
func (p Policy) Validate() error {
	var errs []error
	counts := []struct {
		flag string
		n    int
	}{
		{"--keep-last", p.Last}, {"--keep-hourly", p.Hourly}, {"--keep-daily", p.Daily},
		{"--keep-weekly", p.Weekly}, {"--keep-monthly", p.Monthly}, {"--keep-yearly", p.Yearly},
	}
	for _, c := range counts {
		if c.n < -1 {
			errs = append(errs, fmt.Errorf("%s must be -1 (unlimited) or more, got %d", c.flag, c.n))
		}
	}
	if p.Within < 0 {
		errs = append(errs, fmt.Errorf("--keep-within must not be negative, got %s", p.Within))
	}
	if slices.Contains(p.Tags, "") {
		errs = append(errs, errors.New("--keep-tag must not be empty"))
	}
	return errors.Join(errs...)
}

// Group is the snapshots of one host and one set of paths, and the decision
// for each of them.
type Group struct {
	Host   string
	Paths  []string             // sorted
	Keep   []Kept               // newest first
	Remove []*snapshot.Snapshot // newest first
}

// Kept is a snapshot the policy keeps, with the rules that keep it in the
// order "last", "hourly", "daily", "weekly", "monthly", "yearly",
// "within <duration>", "tag <tag>" (one per matching policy tag, in policy
// order).
type Kept struct {
	Snapshot *snapshot.Snapshot
	Reasons  []string
}

// bucket identifies the calendar period a snapshot falls in for one rule.
type bucket [4]int

type bucketRule struct {
	name string
	n    int
	key  func(t time.Time) bucket
}

// Apply groups snaps by host and by their sorted paths (so the order in which
// paths were given does not matter) and decides, within each group, which
// snapshots p keeps; all others are listed in Remove. Groups are sorted by
// host, then by paths. Nil entries are ignored, and snaps and the snapshots
// are not modified.
//
// Calendar buckets use each snapshot's time in its own stored location.
// Within a group, snapshots are ordered newest first, ties by ascending ID.
//
// With an empty policy Apply keeps nothing; callers must check Empty first.
func Apply(snaps []*snapshot.Snapshot, p Policy) []Group {
	type key struct{ host, paths string }
	index := map[key]int{}
	var groups []Group
	var members [][]*snapshot.Snapshot
	for _, sn := range snaps {
		if sn == nil {
			continue
		}
		paths := slices.Clone(sn.Paths)
		slices.Sort(paths)
		k := key{sn.Hostname, fmt.Sprintf("%q", paths)}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, Group{Host: sn.Hostname, Paths: paths})
			members = append(members, nil)
		}
		members[i] = append(members[i], sn)
	}
	for i := range groups {
		decide(&groups[i], members[i], p)
	}
	slices.SortFunc(groups, func(a, b Group) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return slices.Compare(a.Paths, b.Paths)
	})
	return groups
}

// decide fills g.Keep and g.Remove from sns, which it may reorder.
func decide(g *Group, sns []*snapshot.Snapshot, p Policy) {
	slices.SortStableFunc(sns, func(a, b *snapshot.Snapshot) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	reasons := make([][]string, len(sns))

	for i := range sns {
		if p.Last == 0 || (p.Last > 0 && i >= p.Last) {
			break
		}
		reasons[i] = append(reasons[i], "last")
	}

	rules := []bucketRule{
		{"hourly", p.Hourly, func(t time.Time) bucket { return bucket{t.Year(), int(t.Month()), t.Day(), t.Hour()} }},
		{"daily", p.Daily, func(t time.Time) bucket { return bucket{t.Year(), int(t.Month()), t.Day()} }},
		{"weekly", p.Weekly, func(t time.Time) bucket { y, w := t.ISOWeek(); return bucket{y, w} }},
		{"monthly", p.Monthly, func(t time.Time) bucket { return bucket{t.Year(), int(t.Month())} }},
		{"yearly", p.Yearly, func(t time.Time) bucket { return bucket{t.Year()} }},
	}
	for _, r := range rules {
		if r.n == 0 {
			continue
		}
		kept := 0
		var prev bucket
		for i, sn := range sns {
			if r.n > 0 && kept >= r.n {
				break
			}
			b := r.key(sn.Time)
			if kept > 0 && b == prev {
				continue
			}
			reasons[i] = append(reasons[i], r.name)
			prev = b
			kept++
		}
	}

	if p.Within > 0 && len(sns) > 0 {
		cutoff := sns[0].Time.Add(-p.Within)
		reason := "within " + p.Within.String()
		for i, sn := range sns {
			if sn.Time.Before(cutoff) {
				break // sorted newest first: all later ones are older still
			}
			reasons[i] = append(reasons[i], reason)
		}
	}

	for j, t := range p.Tags {
		if slices.Contains(p.Tags[:j], t) {
			continue
		}
		for i, sn := range sns {
			if sn.HasTag(t) {
				reasons[i] = append(reasons[i], "tag "+t)
			}
		}
	}

	for i, sn := range sns {
		if len(reasons[i]) > 0 {
			g.Keep = append(g.Keep, Kept{Snapshot: sn, Reasons: reasons[i]})
		} else {
			g.Remove = append(g.Remove, sn)
		}
	}
}
