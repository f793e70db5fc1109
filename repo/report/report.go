// Package report is the verification report of a courtbak repository: the
// data model (a versioned schema, documented in docs/report-schema.md), its
// renderings as JSON, HTML and Markdown, and the integrity seal (hash and
// optional Ed25519 signature) that makes an edited report detectable.
package report

import (
	"fmt"
	"time"
)

// Schema names the JSON document; SchemaVersion changes when a field is
// removed or changes meaning (adding fields keeps the version).
const (
	Schema        = "courtbak-verify-report"
	SchemaVersion = 1
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
)

// Report is everything one verify run found.
type Report struct {
	Schema        string     `json:"schema"`
	SchemaVersion int        `json:"schema_version"`
	Verdict       string     `json:"verdict"`
	Repository    Repository `json:"repository"`
	Courtbak      string     `json:"courtbak_version"`
	Host          string     `json:"checked_on_host"`
	Started       time.Time  `json:"started"`
	Finished      time.Time  `json:"finished"`
	Scope         Scope      `json:"scope"`
	Checked       Counts     `json:"checked"`
	// Copies lists the primary first, then each replica in the order given.
	Copies   []Copy    `json:"copies"`
	Problems []Problem `json:"problems"`
	// Notices are worth knowing but do not make the verdict fail.
	Notices []Problem `json:"notices"`
	Repairs []Repair  `json:"repairs"`
	// ManifestAvailable is false when the snapshots could not be read
	// (keyless verification); ManifestNote then says why.
	ManifestAvailable bool       `json:"manifest_available"`
	ManifestNote      string     `json:"manifest_note,omitempty"`
	Snapshots         []Snapshot `json:"snapshots"`
}

// Repository identifies the checked repository.
type Repository struct {
	ID       string `json:"id"`
	Location string `json:"location"`
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
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
	// Hashed counts the objects whose bytes were read and hashed.
	Hashed int `json:"objects_hashed"`
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
	ID       string    `json:"id"`
	Time     time.Time `json:"time,omitzero"`
	Host     string    `json:"host,omitempty"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
	Status   string    `json:"status"`
	Manifest []File    `json:"manifest"`
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

// Summary is one sentence under the headline.
func (r *Report) Summary() string {
	copies := "the repository"
	if n := len(r.Copies) - 1; n > 0 {
		copies = fmt.Sprintf("the repository or its %d %s", n, plural(n, "replica", "replicas"))
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
	return fmt.Sprintf("%d %s found; see Problems below for what to do.", n, plural(n, "problem", "problems"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
