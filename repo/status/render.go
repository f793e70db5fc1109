package status

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/courtbak/courtbak/repo/report"
)

// JSON encodes the summary as indented JSON, ending in a newline.
func (s *Summary) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return b.Bytes(), nil
}

// ByAttention returns the courts that need attention first, each group in
// the order given, as people read the page; JSON keeps the given order.
func (s *Summary) ByAttention() []CourtStatus {
	out := slices.Clone(s.Courts)
	slices.SortStableFunc(out, func(a, b CourtStatus) int {
		switch {
		case a.OK == b.OK:
			return 0
		case !a.OK:
			return -1
		}
		return 1
	})
	return out
}

// Headline is the summary in words.
func (s *Summary) Headline() string {
	n := len(s.Courts)
	switch {
	case n == 1 && s.OK:
		return "THE COURT IS PROTECTED"
	case n == 1:
		return "THE COURT NEEDS ATTENTION"
	}
	if s.OK {
		return fmt.Sprintf("ALL %d %s PROTECTED", n, plural(n, "COURT", "COURTS"))
	}
	return fmt.Sprintf("%d OF %d %s %s ATTENTION", s.Breached, n, plural(n, "COURT", "COURTS"), plural(s.Breached, "NEEDS", "NEED"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// LagText says in words how far a replica is behind.
func (c CopyStatus) LagText() string {
	switch {
	case !c.Reachable && c.Error == errNoRepository:
		return errNoRepository
	case !c.Reachable:
		return "unreachable"
	case c.Role == "primary":
		return "primary copy"
	case c.MissingObjects == 0:
		return "up to date"
	}
	s := fmt.Sprintf("%d objects (%s) behind", c.MissingObjects, report.BinarySize(c.MissingBytes))
	if c.MissingSnapshots > 0 {
		s += fmt.Sprintf(", %d %s", c.MissingSnapshots, plural(c.MissingSnapshots, "snapshot", "snapshots"))
	}
	return s
}

// VerifyText says in words what the last verification that checked the
// copy found, and how much data the copy's own last run has covered.
func (c CopyStatus) VerifyText(now time.Time) string {
	lc := c.LastCheck
	if lc == nil {
		if c.StateError != "" {
			return "unknown: " + c.StateError
		}
		return "never verified"
	}
	kind := "with the password"
	if lc.Keyless {
		kind = "keyless"
	}
	s := fmt.Sprintf("%s %s ago (%s", lc.Status, Age(lc.Finished, now), kind)
	if lc.RecordedAt != c.Name() {
		s += ", by the run recorded at " + lc.RecordedAt
	}
	if v := c.LastVerification; v != nil {
		switch v.ReadData {
		case "all":
			s += "; all data read " + Age(v.Finished, now) + " ago"
		case "subset":
			s += fmt.Sprintf("; %g%% daily subset", v.SubsetPercent)
			if v.Coverage != nil {
				s += fmt.Sprintf(", %.0f%% covered", v.Coverage.CoveredPercent)
				if !v.Coverage.CompleteBy.IsZero() {
					s += ", all by " + v.Coverage.CompleteBy.Format("2006-01-02")
				}
			}
		}
	}
	return s + ")"
}

// Duration shows a threshold as people write it: "26h", "90m", "1h30m".
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Name is the copy's label, else its role and location.
func (c CopyStatus) Name() string { return copyName(&c) }

// NewestText says when the newest backup of the court was made.
func (c CourtStatus) NewestText(now time.Time) string {
	if c.Keyed && len(c.Snapshots) > 0 {
		var parts []string
		for _, s := range c.Snapshots {
			parts = append(parts, fmt.Sprintf("%s %s: %s ago", s.Host, strings.Join(s.Paths, ","), Age(s.Time, now)))
		}
		return strings.Join(parts, "; ")
	}
	if c.NewestSnapshotStored.IsZero() {
		return "no snapshot"
	}
	return Age(c.NewestSnapshotStored, now) + " ago (stored)"
}

//go:embed status.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"size": report.BinarySize,
	"age":  Age,
	"when": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return "never"
		}
		if _, off := t.In(loc).Zone(); off == 0 {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return t.In(loc).Format("2006-01-02 15:04 MST") + " (" + t.UTC().Format("15:04 UTC") + ")"
	},
	"zone": report.ZoneName,
	"maxage": func(sec float64) string {
		return Duration(time.Duration(sec) * time.Second)
	},
}).Parse(htmlSource))

// HTML renders the summary as a self-contained dashboard page, times in
// loc next to UTC.
func (s *Summary) HTML(loc *time.Location) ([]byte, error) {
	if loc == nil {
		loc = time.UTC
	}
	var b bytes.Buffer
	err := htmlTemplate.Execute(&b, struct {
		*Summary
		Loc *time.Location
	}{s, loc})
	if err != nil {
		return nil, fmt.Errorf("render status page: %w", err)
	}
	return b.Bytes(), nil
}
