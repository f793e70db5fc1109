package report

import (
	"bytes"
	"crypto/ed25519"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
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
		if err := htmlTemplate.Execute(&b, r); err != nil {
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

// Shown times are UTC, so a report reads the same in every court.
func showTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
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

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"time":    showTime,
	"bytes":   ShowBytes,
	"short":   shortID,
	"join":    strings.Join,
	"add1":    func(i int) int { return i + 1 },
	"replica": func(c Copy) bool { return c.Role == "replica" },
}).Parse(htmlSource))
