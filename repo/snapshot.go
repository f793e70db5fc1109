package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// SaveSnapshot stores sn and sets its ID.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *snapshot.Snapshot) error {
	b, err := snapshot.Encode(sn)
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

// ErrOldSnapshotKept means ReplaceSnapshot stored the new snapshot but
// could not remove the old one, which stays as it was.
var ErrOldSnapshotKept = errors.New("the old snapshot stays")

// ReplaceSnapshot stores sn in place of the snapshot old (tag changes one
// this way: snapshots never change once written). Its steps:
//   - SecureSnapshot first, as a backup does, so that a prune that marked
//     meanwhile keeps what sn's tree needs;
//   - the new snapshot next: a crash after it leaves both, never neither;
//   - then a snapshot log record that forgets old, before old is removed,
//     so that verify takes the removal for an authorised one and never for
//     a deletion (an interruption in between leaves old stored and
//     forgotten, which verify reports as an interrupted forget);
//   - last, the removal of old.
//
// When only the last two fail, sn is stored and the error wraps
// ErrOldSnapshotKept.
func (r *Repository) ReplaceSnapshot(ctx context.Context, old blob.ID, sn *snapshot.Snapshot) error {
	if err := r.SecureSnapshot(ctx, sn.Tree); err != nil {
		return err
	}
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		return err
	}
	if err := r.AppendLog(ctx, nil, []blob.ID{old}); err != nil {
		return fmt.Errorf("record the removal of snapshot %s in the snapshot log: %v: %w", old.Short(), err, ErrOldSnapshotKept)
	}
	if err := r.RemoveSnapshot(ctx, old); err != nil {
		return fmt.Errorf("%v: %w", err, ErrOldSnapshotKept)
	}
	return nil
}

// LoadSnapshot reads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id blob.ID) (*snapshot.Snapshot, error) {
	b, err := r.LoadFile(ctx, remote.Handle{Type: remote.Snapshot, Name: id.String()})
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	sn, err := snapshot.Decode(b, id)
	if err != nil {
		return nil, fmt.Errorf("decode snapshot %s: %v: %w", id.Short(), err, ErrDamaged)
	}
	return sn, nil
}

// Snapshots loads every snapshot, oldest first. A snapshot that cannot be
// read is reported through Warn and skipped, so one damaged object does not
// hide the others; verify reports it as a problem.
func (r *Repository) Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error) {
	infos, err := r.List(ctx, remote.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	r.pruneCache(remote.Snapshot, infos)
	var out []*snapshot.Snapshot
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

// LoadTree reads and decodes a tree blob; it is the store's side of
// snapshot.TreeLoader.
func (r *Repository) LoadTree(ctx context.Context, id blob.ID) (*snapshot.Tree, error) {
	b, err := r.LoadBlob(ctx, blob.Tree, id)
	if err != nil {
		return nil, err
	}
	t, err := snapshot.DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("decode tree %s: %v: %w", id.Short(), err, ErrDamaged)
	}
	return t, nil
}
