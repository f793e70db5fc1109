package status

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
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

// VerifyText says in words what the last verification of a copy found.
func (c CopyStatus) VerifyText(now time.Time) string {
	v := c.LastVerification
	if v == nil {
		if c.StateError != "" {
			return "unknown: " + c.StateError
		}
		return "never verified here"
	}
	kind := "with the password"
	if v.Keyless {
		kind = "keyless"
	}
	data := "no data read"
	switch v.ReadData {
	case "all":
		data = "all data read"
	case "subset":
		data = fmt.Sprintf("%g%% subset", v.SubsetPercent)
		if v.Coverage != nil {
			data += fmt.Sprintf(", %.0f%% covered", v.Coverage.CoveredPercent)
			if !v.Coverage.CompleteBy.IsZero() {
				data += " (all by " + v.Coverage.CompleteBy.Format("2006-01-02") + ")"
			}
		}
	}
	return fmt.Sprintf("%s %s ago (%s, %s)", v.Verdict, Age(v.Finished, now), kind, data)
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
