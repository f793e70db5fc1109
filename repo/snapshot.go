package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
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
	Program  string    `json:"program_version"`
	Summary  *Summary  `json:"summary,omitempty"`

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

// SaveSnapshot stores sn and sets its ID.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) error {
	b, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	id, err := r.SaveFile(ctx, remote.Snapshot, b)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	sn.ID = id
	crashpoint.Hit(crashpoint.BackupSnapshot)
	// The snapshot is stored: a record that fails to be written only
	// leaves it unlogged until the next record adopts it.
	if err := r.AppendLog(ctx, []blob.ID{id}, nil); err != nil {
		r.Warn("snapshot %s is stored, but the snapshot log could not record it (the next backup will): %v", id.Short(), err)
	}
	return nil
}

// LoadSnapshot reads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id blob.ID) (*Snapshot, error) {
	b, err := r.LoadFile(ctx, remote.Handle{Type: remote.Snapshot, Name: id.String()})
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return nil, fmt.Errorf("decode snapshot %s: %v: %w", id.Short(), err, ErrDamaged)
	}
	sn.ID = id
	return &sn, nil
}

// Snapshots loads every snapshot, oldest first. A snapshot that cannot be
// read is reported through Warn and skipped, so one damaged object does not
// hide the others; verify reports it as a problem.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	infos, err := r.List(ctx, remote.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	r.pruneCache(remote.Snapshot, infos)
	var out []*Snapshot
	for _, fi := range infos {
		id, err := blob.ParseID(fi.Name)
		if err != nil {
			r.Warn("ignoring stray object snapshots/%s", fi.Name)
			continue
		}
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.Warn("skipping snapshot %s: %v", id.Short(), err)
			continue
		}
		out = append(out, sn)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// ErrSnapshotNotFound means no snapshot matches a given id.
var ErrSnapshotNotFound = errors.New("no matching snapshot")

// FindSnapshot resolves "latest", a full id or a unique prefix of at least
// 8 hex digits among snaps (oldest first).
func FindSnapshot(snaps []*Snapshot, ref string) (*Snapshot, error) {
	if ref == "latest" {
		if len(snaps) == 0 {
			return nil, fmt.Errorf("latest: the repository has no snapshots: %w", ErrSnapshotNotFound)
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
		return nil, fmt.Errorf("snapshot %q: %w (see 'courtbak snapshots')", ref, ErrSnapshotNotFound)
	}
	return found, nil
}

// RemoveSnapshot deletes a snapshot object (forget). The data it alone
// needed stays until a prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id blob.ID) error {
	h := remote.Handle{Type: remote.Snapshot, Name: id.String()}
	if err := r.be.Remove(ctx, h); err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("remove snapshot %s: %w", id.Short(), err)
	}
	crashpoint.Hit(crashpoint.ForgetRemove)
	if p := r.cachePath(h); p != "" {
		_ = os.Remove(p)
	}
	return nil
}
