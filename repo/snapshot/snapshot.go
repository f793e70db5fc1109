// Package snapshot is the repository's model of what was backed up:
// snapshots, the trees of directory entries they point to, their encoding
// and validation, and the functions that read trees (Walk, FindNode, Diff,
// Reachable) through the small TreeLoader interface. It knows nothing of
// storage, keys or packs, so it can be tested with trees held in memory.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
)

// Snapshot records one backup: what was saved, when, from where, and the
// root tree. It is stored as a sealed JSON file under snapshots/.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username,omitempty"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags,omitempty"`
	Excludes []string  `json:"excludes,omitempty"`
	Tree     blob.ID   `json:"tree"`
	Parent   *blob.ID  `json:"parent,omitempty"`
	// Original is the snapshot a backup wrote, when this one replaced it
	// with other tags ('courtbak tag'); nil for a backup's own snapshot.
	Original *blob.ID `json:"original,omitempty"`
	Program  string   `json:"program_version"`
	Summary  *Summary `json:"summary,omitempty"`

	ID blob.ID `json:"-"` // the name of the snapshot object
}

// Summary is what a backup did, kept in its snapshot.
type Summary struct {
	FilesNew        int     `json:"files_new"`
	FilesChanged    int     `json:"files_changed"`
	FilesUnmodified int     `json:"files_unmodified"`
	DirsNew         int     `json:"dirs_new"`
	FilesFailed     int     `json:"files_failed"`
	TotalFiles      int     `json:"total_files"`
	BytesProcessed  int64   `json:"bytes_processed"`
	BytesAdded      int64   `json:"bytes_added"`
	BlobsAdded      int     `json:"blobs_added"`
	DurationSeconds float64 `json:"duration_s"`
}

// HasTag reports whether the snapshot carries tag t.
func (s *Snapshot) HasTag(t string) bool {
	for _, x := range s.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// Retag returns a copy of s whose tags are set (all of them replaced,
// when replace is true), then add, then without remove; each tag once, in
// the order first given. The copy's Original names the backup's own
// snapshot (s, or the one s already replaced), so a chain of retaggings
// always points back to it; its ID is unset until it is stored. changed
// is false when the tags stay as they are.
func (s *Snapshot) Retag(set []string, replace bool, add, remove []string) (c *Snapshot, changed bool) {
	tags := s.Tags
	if replace {
		tags = set
	}
	var out []string
	for _, t := range append(slices.Clone(tags), add...) {
		if !slices.Contains(out, t) && !slices.Contains(remove, t) {
			out = append(out, t)
		}
	}
	if slices.Equal(out, s.Tags) || (len(out) == 0 && len(s.Tags) == 0) {
		return s, false
	}
	cp := *s
	cp.Tags = out
	cp.ID = blob.ID{}
	if cp.Original == nil {
		orig := s.ID
		cp.Original = &orig
	}
	return &cp, true
}

// Encode serialises a snapshot for storage (the plaintext of the sealed
// file; its ID is the name of the object and is not part of it).
func Encode(sn *Snapshot) ([]byte, error) {
	return json.Marshal(sn)
}

// Decode parses a snapshot file's plaintext and sets its ID to id, the name
// of the object it was read from.
func Decode(b []byte, id blob.ID) (*Snapshot, error) {
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return nil, err
	}
	sn.ID = id
	return &sn, nil
}

// ErrNotFound means no snapshot matches a given id.
var ErrNotFound = errors.New("no matching snapshot")

// Find resolves "latest", a full id or a unique prefix of at least 8 hex
// digits among snaps (oldest first).
func Find(snaps []*Snapshot, ref string) (*Snapshot, error) {
	if ref == "latest" {
		if len(snaps) == 0 {
			return nil, fmt.Errorf("latest: the repository has no snapshots: %w", ErrNotFound)
		}
		return snaps[len(snaps)-1], nil
	}
	ref = strings.ToLower(ref)
	if len(ref) < 8 {
		return nil, fmt.Errorf("snapshot id %q is too short: give at least 8 hex digits or 'latest'", ref)
	}
	var found *Snapshot
	for _, sn := range snaps {
		if strings.HasPrefix(sn.ID.String(), ref) {
			if found != nil {
				return nil, fmt.Errorf("snapshot id prefix %q is ambiguous: give more digits", ref)
			}
			found = sn
		}
	}
	if found == nil {
		return nil, fmt.Errorf("snapshot %q: %w (see 'courtbak snapshots')", ref, ErrNotFound)
	}
	return found, nil
}
