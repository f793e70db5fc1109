package report

import (
	"fmt"
	"slices"
	"strings"
)

// Manifest selections, as Report.ManifestSelection names them.
const (
	ManifestLatest = "latest" // the newest snapshot of each host and set of paths
	ManifestAll    = "all"
	ManifestChosen = "chosen" // snapshots named on the command line (and perhaps the newest)
)

// ManifestChoice says which snapshots' file lists a report carries: a year
// of nightly snapshots of 100,000 files each would be gigabytes if every
// manifest were included, while the newest snapshot of each backup set is
// what an audit asks about.
type ManifestChoice struct {
	All bool
	// Latest adds the newest snapshot of each host and set of paths.
	Latest bool
	// IDs are snapshot ids or unique prefixes of at least 8 hex digits.
	IDs []string
}

// ParseManifestChoice reads --manifest values: "latest", "all" or snapshot
// ids, repeatable and comma-separated; none means "latest".
func ParseManifestChoice(values []string) (ManifestChoice, error) {
	var c ManifestChoice
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			switch s = strings.ToLower(strings.TrimSpace(s)); {
			case s == "":
			case s == ManifestAll:
				c.All = true
			case s == ManifestLatest:
				c.Latest = true
			case len(s) >= 8 && len(s) <= 64 && strings.Trim(s, "0123456789abcdef") == "":
				c.IDs = append(c.IDs, s)
			default:
				return c, fmt.Errorf("--manifest %q: give latest, all, or snapshot ids (at least 8 hex digits)", s)
			}
		}
	}
	if !c.All && len(c.IDs) == 0 {
		c.Latest = true
	}
	return c, nil
}

// Selection names the choice as Report.ManifestSelection does.
func (c ManifestChoice) Selection() string {
	switch {
	case c.All:
		return ManifestAll
	case len(c.IDs) > 0:
		return ManifestChosen
	}
	return ManifestLatest
}

// Select returns the indexes in snaps (oldest first, as reports list them)
// whose manifests the choice includes. Unreadable snapshots (no time or
// host) never count as a newest one. A chosen id that matches no snapshot,
// or more than one, is an error.
func (c ManifestChoice) Select(snaps []Snapshot) (map[int]bool, error) {
	out := map[int]bool{}
	if c.All {
		for i := range snaps {
			out[i] = true
		}
		return out, nil
	}
	if c.Latest {
		newest := map[string]int{}
		for i, s := range snaps {
			if s.Status == SnapshotUnreadable {
				continue
			}
			paths := slices.Clone(s.Paths)
			slices.Sort(paths)
			key := s.Host + "\x00" + strings.Join(paths, "\x00")
			if j, ok := newest[key]; !ok || !snaps[j].Time.After(s.Time) {
				newest[key] = i
			}
		}
		for _, i := range newest {
			out[i] = true
		}
	}
	for _, id := range c.IDs {
		found := -1
		for i, s := range snaps {
			if strings.HasPrefix(s.ID, id) {
				if found >= 0 {
					return nil, fmt.Errorf("--manifest %s: the prefix names more than one snapshot; give more digits", id)
				}
				found = i
			}
		}
		if found < 0 {
			return nil, fmt.Errorf("--manifest %s: no such snapshot in the repository", id)
		}
		out[found] = true
	}
	return out, nil
}
