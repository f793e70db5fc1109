package report

import (
	"bytes"
	"crypto/ed25519"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"path"
	"strings"
	"time"
)

// Encode renders r in format f and seals it, signing with key unless nil.
func Encode(f Format, r *Report, key ed25519.PrivateKey) ([]byte, error) {
	body, err := Render(f, r)
	if err != nil {
		return nil, err
	}
	return SealBody(f, body, key), nil
}

// Render returns the report in format f without its seal.
func Render(f Format, r *Report) ([]byte, error) {
	r = normalized(r)
	switch f {
	case JSON:
		b, err := MarshalJSON(r)
		if err != nil {
			return nil, err
		}
		// The seal adds the last member and closes the object.
		return bytes.TrimSuffix(b, []byte("\n}\n")), nil
	case HTML:
		var b bytes.Buffer
		if err := htmlTemplate.Execute(&b, newView(r)); err != nil {
			return nil, fmt.Errorf("render HTML report: %w", err)
		}
		return b.Bytes(), nil
	case Markdown:
		return renderMarkdown(r), nil
	}
	return nil, fmt.Errorf("unknown report format %q", f)
}

// MarshalJSON encodes r as indented JSON without HTML escaping (paths stay
// readable), ending in a newline.
func MarshalJSON(r *Report) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(normalized(r)); err != nil {
		return nil, fmt.Errorf("encode JSON report: %w", err)
	}
	return b.Bytes(), nil
}

// normalized returns a copy of r whose lists are empty rather than nil, so
// that JSON readers always find arrays.
func normalized(r *Report) *Report {
	c := *r
	if c.TimeZone == "" {
		c.TimeZone = ZoneName(c.loc, c.Finished)
	}
	c.Copies = nonNil(c.Copies)
	for i := range c.Copies {
		c.Copies[i].Missing = nonNil(c.Copies[i].Missing)
		c.Copies[i].Damaged = nonNil(c.Copies[i].Damaged)
		c.Copies[i].Extra = nonNil(c.Copies[i].Extra)
	}
	c.Problems = nonNil(c.Problems)
	c.Notices = nonNil(c.Notices)
	c.Repairs = nonNil(c.Repairs)
	c.Snapshots = nonNil(c.Snapshots)
	for i := range c.Snapshots {
		c.Snapshots[i].Paths = nonNil(c.Snapshots[i].Paths)
		c.Snapshots[i].Tags = nonNil(c.Snapshots[i].Tags)
		c.Snapshots[i].Manifest = nonNil(c.Snapshots[i].Manifest)
	}
	return &c
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// when shows t in zone loc with UTC next to it, "2025-03-01 03:00:00 CET
// (02:00:00 UTC)", so a report reads the same in every court; the UTC date
// is repeated when it differs.
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "unknown"
	}
	u := t.UTC()
	if loc == nil || loc == time.UTC {
		return u.Format("2006-01-02 15:04:05 UTC")
	}
	l := t.In(loc)
	if name, off := l.Zone(); off == 0 && (name == "UTC" || l.Location().String() == "UTC") {
		return u.Format("2006-01-02 15:04:05 UTC")
	}
	utc := u.Format("15:04:05 UTC")
	if l.Format("2006-01-02") != u.Format("2006-01-02") {
		utc = u.Format("2006-01-02 15:04:05 UTC")
	}
	return l.Format("2006-01-02 15:04:05 MST") + " (" + utc + ")"
}

// localTime shows t in loc without zone, for columns whose heading names
// the zone.
func localTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "unknown"
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04:05")
}

// zoneAbbr is loc's abbreviation at t ("CET", "UTC").
func zoneAbbr(t time.Time, loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	abbr, _ := t.In(loc).Zone()
	return abbr
}

// Period is the span of the snapshots' times.
type Period struct{ From, To time.Time }

// Period returns the times of the oldest and newest readable snapshot.
func (r *Report) Period() Period {
	var p Period
	for _, s := range r.Snapshots {
		if s.Time.IsZero() {
			continue
		}
		if p.From.IsZero() || s.Time.Before(p.From) {
			p.From = s.Time
		}
		if s.Time.After(p.To) {
			p.To = s.Time
		}
	}
	return p
}

// PeriodText says when the snapshots were taken, "" when none is readable.
func (r *Report) PeriodText() string {
	p := r.Period()
	switch {
	case p.From.IsZero():
		return ""
	case p.From.Equal(p.To):
		return "taken " + when(p.From, r.loc)
	}
	return "taken from " + when(p.From, r.loc) + " to " + when(p.To, r.loc)
}

// CopyName is the label of the copy at location, else the location.
func (r *Report) CopyName(location string) string {
	for _, c := range r.Copies {
		if c.Location == location && c.Label != "" {
			return c.Label
		}
	}
	return location
}

// Name is the copy's label, else its location.
func (c Copy) Name() string {
	if c.Label != "" {
		return c.Label
	}
	return c.Location
}

// ReadSummary says in words what was read back at the copy.
func (c Copy) ReadSummary() string {
	if c.Error != "" {
		return "nothing (the copy could not be listed)"
	}
	s := fmt.Sprintf("%d of %d data packs (%s of %s)", c.PacksRead, c.Packs, BinarySize(c.PackBytesRead), BinarySize(c.PackBytes))
	meta := c.Hashed - c.PacksRead
	return s + fmt.Sprintf(" and %d of %d other objects; %s in all", meta, c.Objects-c.Packs, BinarySize(c.BytesRead))
}

// CoverageSummary says in words how far the rotating subset has come.
func (r *Report) CoverageSummary() string {
	sc := r.SubsetCoverage
	if sc == nil {
		return ""
	}
	s := fmt.Sprintf("The daily rotating check has read back %.0f%% of the stored data in the last %d days (%d of %d daily runs, %d %s, %s).",
		sc.CoveredPercent, sc.CycleRuns, sc.RunsInCycle, sc.CycleRuns, sc.PacksReadInCycle, plural(sc.PacksReadInCycle, "pack", "packs"), BinarySize(sc.BytesReadInCycle))
	if sc.CompleteBy.IsZero() {
		return s + " Every pack has been read back within that time."
	}
	return s + fmt.Sprintf(" If it runs every day, all of it will have been read back by %s.", localDate(sc.CompleteBy, r.loc))
}

func localDate(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02")
}

// BinarySize formats a size in binary units for people: "512 B",
// "28.61 MiB".
func BinarySize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ShowBytes formats a size for people, keeping the exact count.
func ShowBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%s (%d bytes)", BinarySize(n), n)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// view is what the HTML template renders: the report and the helpers that
// need its time zone.
type view struct {
	*Report
}

func newView(r *Report) view { return view{r} }

// When shows t in the report's zone with UTC next to it.
func (v view) When(t time.Time) string { return when(t, v.loc) }

// Local shows t in the report's zone, for columns headed by the zone.
func (v view) Local(t time.Time) string { return localTime(t, v.loc) }

// Zone is the abbreviation of the report's zone.
func (v view) Zone() string { return zoneAbbr(v.Finished, v.loc) }

// manifestOpenBelow is the manifest size up to which its folders are shown
// open; larger manifests start collapsed, so that a page of 100,000 files
// opens fast (closed sections are not laid out).
const manifestOpenBelow = 300

// manifestPart is the most files one collapsible section holds.
const manifestPart = 1000

// fileGroup is one collapsible section of a manifest: files of one folder,
// at most manifestPart of them.
type fileGroup struct {
	Dir         string
	Part, Parts int
	Files       []File
	Bytes       int64
	Open        bool
}

// Groups splits a snapshot's manifest (in path order) into folders.
func (v view) Groups(s Snapshot) []fileGroup {
	var out []fileGroup
	open := len(s.Manifest) <= manifestOpenBelow
	for i := 0; i < len(s.Manifest); {
		dir := path.Dir(s.Manifest[i].Path)
		j := i
		for j < len(s.Manifest) && path.Dir(s.Manifest[j].Path) == dir {
			j++
		}
		parts := (j - i + manifestPart - 1) / manifestPart
		for k := 0; k < parts; k++ {
			g := fileGroup{Dir: dir, Part: k + 1, Parts: parts, Open: open,
				Files: s.Manifest[i+k*manifestPart : min(j, i+(k+1)*manifestPart)]}
			for _, f := range g.Files {
				g.Bytes += int64(f.Size)
			}
			out = append(out, g)
		}
		i = j
	}
	return out
}

// breakable escapes a path or URL for HTML and lets the browser break the
// line only after a separator (/ _ . ? & =), never inside a word.
func breakable(s string) template.HTML {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(template.HTMLEscapeString(string(r)))
		if strings.ContainsRune("/_.?&=", r) {
			b.WriteString("<wbr>")
		}
	}
	return template.HTML(b.String())
}

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes":   ShowBytes,
	"size":    BinarySize,
	"short":   shortID,
	"join":    strings.Join,
	"path":    breakable,
	"base":    path.Base,
	"add1":    func(i int) int { return i + 1 },
	"replica": func(c Copy) bool { return c.Role == "replica" },
}).Parse(htmlSource))
