// Package report is the verification report of a courtbak repository: the
// data model (a versioned schema, documented in docs/report-schema.md), its
// renderings as JSON, HTML and Markdown, and the integrity seal (hash and
// optional Ed25519 signature) that makes an edited report detectable.
package report

import (
	"fmt"
	"strings"
	"time"
)

// Schema names the JSON document; SchemaVersion changes when a field is
// removed or changes meaning (adding fields keeps the version).
const (
	Schema        = "courtbak-verify-report"
	SchemaVersion = 2
)

// Verdicts.
const (
	VerdictIntact   = "intact"   // nothing wrong
	VerdictRepaired = "repaired" // everything wrong was repaired during this run
	VerdictProblems = "problems" // something is still wrong
)

// Copy statuses.
const (
	StatusIntact      = "intact"
	StatusRepaired    = "repaired" // its problems were repaired during the run
	StatusProblems    = "problems"
	StatusUnreachable = "unreachable"
)

// Snapshot statuses.
const (
	SnapshotIntact     = "intact"
	SnapshotDamaged    = "damaged"
	SnapshotUnreadable = "unreadable"
	// SnapshotForgotten: the snapshot log says forget removed it, yet it
	// is stored (a replica keeps what the primary forgot); not checked.
	SnapshotForgotten = "forgotten"
)

// Report is everything one verify run found.
type Report struct {
	Schema        string `json:"schema"`
	SchemaVersion int    `json:"schema_version"`
	// Title and Court head the report ("Monthly audit", "City court of
	// Novi Sad"); either may be empty.
	Title      string     `json:"title"`
	Court      string     `json:"court"`
	Verdict    string     `json:"verdict"`
	Repository Repository `json:"repository"`
	// TimeZone names the zone of the local times that HTML and Markdown
	// show next to UTC (times in JSON are UTC).
	TimeZone string    `json:"time_zone"`
	Courtbak string    `json:"courtbak_version"`
	Host     string    `json:"checked_on_host"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Scope    Scope     `json:"scope"`
	Checked  Counts    `json:"checked"`
	// Copies lists the primary first, then each replica in the order given.
	Copies   []Copy    `json:"copies"`
	Problems []Problem `json:"problems"`
	// Notices are worth knowing but do not make the verdict fail.
	Notices []Problem `json:"notices"`
	Repairs []Repair  `json:"repairs"`
	// SubsetCoverage is how far the rotating --read-data-subset has come;
	// nil unless this run read a subset.
	SubsetCoverage *SubsetCoverage `json:"subset_coverage,omitempty"`
	// ManifestSelection says which snapshots carry their manifest:
	// "latest" (the newest per host and paths), "all" or "chosen".
	ManifestSelection string `json:"manifest_selection"`
	// ManifestAvailable is false when the snapshots could not be read
	// (keyless verification); ManifestNote then says why.
	ManifestAvailable bool       `json:"manifest_available"`
	ManifestNote      string     `json:"manifest_note,omitempty"`
	Snapshots         []Snapshot `json:"snapshots"`

	// loc is the zone of shown local times; nil means UTC.
	loc *time.Location
}

// SetLocation chooses the zone HTML and Markdown show local times in, next
// to UTC, and records its name in TimeZone.
func (r *Report) SetLocation(loc *time.Location) {
	r.loc = loc
	r.TimeZone = ZoneName(loc, r.Finished)
}

// ZoneName names loc for people: its IANA name where known, else its
// abbreviation at t ("CET"), with the offset from UTC.
func ZoneName(loc *time.Location, t time.Time) string {
	if loc == nil {
		loc = time.UTC
	}
	abbr, off := t.In(loc).Zone()
	name := loc.String()
	if name == "Local" || name == "" {
		name = abbr
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("%s (UTC%s%02d:%02d)", name, sign, off/3600, off%3600/60)
}

// Repository identifies the checked repository.
type Repository struct {
	ID       string `json:"id"`
	Location string `json:"location"`
	// Label is the name people give the repository ("City court of X").
	Label string `json:"label"`
}

// SubsetCoverage is how much of the repository's data the rotating daily
// subsets have read, from the runs recorded in the repository's
// verification state.
type SubsetCoverage struct {
	// CoveredPercent is the share of the data (by pack names, which are
	// spread evenly) read by the subset runs of the last CycleRuns days,
	// this one included.
	CoveredPercent float64 `json:"covered_percent"`
	// RunsInCycle counts those runs (distinct days).
	RunsInCycle int `json:"runs_in_cycle"`
	CycleRuns   int `json:"cycle_runs"`
	// CompleteBy is the day on which every pack will have been read, if
	// a subset run happens every day from tomorrow; the zero time when
	// it already is.
	CompleteBy time.Time `json:"complete_by,omitzero"`
	// PacksReadInCycle and BytesReadInCycle add up the packs and bytes
	// those runs read at the primary.
	PacksReadInCycle int   `json:"packs_read_in_cycle"`
	BytesReadInCycle int64 `json:"bytes_read_in_cycle"`
}

// Scope is what the run was asked to check.
type Scope struct {
	Structure bool `json:"structure"`
	// ReadData is "none", "all" or "subset".
	ReadData      string  `json:"read_data"`
	SubsetPercent float64 `json:"subset_percent,omitempty"`
	// SubsetDay (days since 1970-01-01 UTC) chose the subset; this many
	// consecutive daily runs cover every pack.
	SubsetDay       int64  `json:"subset_day,omitempty"`
	SubsetCycleRuns int    `json:"subset_cycle_runs,omitempty"`
	Keyless         bool   `json:"keyless"`
	Repair          bool   `json:"repair"`
	Description     string `json:"description"`
	// Complete is true when every pack was read; otherwise Unchecked says
	// what was not read and how to read it, and the headline says the
	// copies are intact only as far as checked.
	Complete  bool   `json:"complete"`
	Unchecked string `json:"unchecked,omitempty"`
}

// Counts say how much was checked.
type Counts struct {
	Snapshots  int   `json:"snapshots"`
	Files      int64 `json:"files"`
	FileBytes  int64 `json:"file_bytes"`
	Trees      int   `json:"trees"`
	IndexFiles int   `json:"index_files"`
	LogRecords int   `json:"log_records"`
	Keys       int   `json:"keys"`
	Packs      int   `json:"packs"`
	PacksRead  int   `json:"packs_read"`
	// PackBytes is the size of the packs counted in Packs; PackBytesRead
	// of those read in full.
	PackBytes     int64 `json:"pack_bytes"`
	PackBytesRead int64 `json:"pack_bytes_read"`
	BlobsRead     int64 `json:"blobs_read"`
	ObjectsHashed int64 `json:"objects_hashed"`
	BytesRead     int64 `json:"bytes_read"`
}

// Copy is the result for one copy of the repository.
type Copy struct {
	Role     string `json:"role"` // "primary" or "replica"
	Location string `json:"location"`
	// Label is the name people give the copy ("Provincial center").
	Label   string `json:"label"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
	// Packs and PackBytes are the data packs stored there.
	Packs     int   `json:"packs"`
	PackBytes int64 `json:"pack_bytes"`
	// Hashed counts the objects whose bytes were read and hashed.
	Hashed int `json:"objects_hashed"`
	// PacksRead and PackBytesRead are the packs read in full there;
	// BytesRead is everything read there.
	PacksRead     int   `json:"packs_read"`
	PackBytesRead int64 `json:"pack_bytes_read"`
	BytesRead     int64 `json:"bytes_read"`
	// Missing, Damaged and Extra name objects ("data/<id>"): missing are
	// needed but absent, damaged do not match their name, extra are in a
	// replica but not in the primary.
	Missing []string `json:"missing"`
	Damaged []string `json:"damaged"`
	Extra   []string `json:"extra"`
}

// Problem is one thing found wrong (or, among notices, worth knowing).
type Problem struct {
	// Copy is the location of the copy the problem is in.
	Copy     string `json:"copy"`
	Kind     string `json:"kind"`
	Object   string `json:"object,omitempty"`
	Blob     string `json:"blob,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Action   string `json:"action,omitempty"`
	Repaired bool   `json:"repaired,omitempty"`
}

// Repair is one object replaced with an intact copy.
type Repair struct {
	Object string `json:"object"`
	From   string `json:"from"`
	Bytes  int64  `json:"bytes"`
}

// Snapshot describes one snapshot and its evidence manifest.
type Snapshot struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time,omitzero"`
	Host   string    `json:"host,omitempty"`
	Paths  []string  `json:"paths"`
	Tags   []string  `json:"tags"`
	Files  int64     `json:"files"`
	Bytes  int64     `json:"bytes"`
	Status string    `json:"status"`
	// ManifestIncluded says whether Manifest lists the snapshot's files
	// (see Report.ManifestSelection); when false, Manifest is empty.
	ManifestIncluded bool   `json:"manifest_included"`
	Manifest         []File `json:"manifest"`
}

// File is one manifest entry: a regular file and its whole-content BLAKE3.
type File struct {
	Path   string    `json:"path"`
	Size   uint64    `json:"size"`
	MTime  time.Time `json:"mtime"`
	BLAKE3 string    `json:"blake3"`
}

// Unresolved counts the problems not repaired.
func (r *Report) Unresolved() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Repaired {
			n++
		}
	}
	return n
}

// SetVerdict derives the verdict from the problems.
func (r *Report) SetVerdict() {
	switch {
	case r.Unresolved() > 0:
		r.Verdict = VerdictProblems
	case len(r.Problems) > 0:
		r.Verdict = VerdictRepaired
	default:
		r.Verdict = VerdictIntact
	}
}

// Headline is the verdict in words, as the clerk reads it first.
func (r *Report) Headline() string {
	h := "PROBLEMS FOUND"
	switch r.Verdict {
	case VerdictIntact:
		h = "ALL COPIES INTACT"
	case VerdictRepaired:
		h = "ALL COPIES INTACT AFTER REPAIR"
	}
	if r.Verdict != VerdictProblems && r.Scope.Unchecked != "" {
		h += " AS FAR AS CHECKED: " + r.Scope.Unchecked
	}
	return h
}

// VerdictWords is the headline without what was not checked, for the
// large banner; the renderings show Scope.Unchecked in a sentence below.
func (r *Report) VerdictWords() string {
	h, _, _ := strings.Cut(r.Headline(), ": ")
	return h
}

// Summary is one sentence under the headline.
func (r *Report) Summary() string {
	copies := "the repository"
	if n := len(r.Copies); n > 1 {
		copies = fmt.Sprintf("any of the %d copies", n)
	}
	switch r.Verdict {
	case VerdictIntact:
		return fmt.Sprintf("No problems were found in %s.", copies)
	case VerdictRepaired:
		n := len(r.Problems)
		return fmt.Sprintf("%d %s found and repaired from intact copies; the repaired repository was then checked again and found intact.",
			n, plural(n, "problem was", "problems were"))
	}
	n := r.Unresolved()
	var where []string
	for _, c := range r.Copies {
		if c.Status == StatusProblems || c.Status == StatusUnreachable {
			where = append(where, c.Name())
		}
	}
	s := fmt.Sprintf("%d %s found", n, plural(n, "problem", "problems"))
	if len(where) > 0 {
		s += " at " + strings.Join(where, ", ")
	}
	return s + "; see Problems below for what to do."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
