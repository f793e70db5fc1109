package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/snaplog"
)

// LogMAC is the MAC of a snapshot log record (snaplog.Record.MAC).
func (r *Repository) LogMAC(input []byte) string { return r.BlobID(input).String() }

// LoadLog reads every record of the snapshot log. A record that is
// damaged or whose MAC does not verify is named through Warn and left out.
func (r *Repository) LoadLog(ctx context.Context) (map[string]*snaplog.Record, error) {
	infos, err := r.List(ctx, remote.Log)
	if err != nil {
		return nil, fmt.Errorf("list the snapshot log: %w", err)
	}
	r.pruneCache(remote.Log, infos)
	records := make(map[string]*snaplog.Record, len(infos))
	for _, fi := range infos {
		b, err := r.loadVerified(ctx, fi.Handle)
		var rec *snaplog.Record
		if err == nil {
			rec, err = snaplog.Parse(b)
		}
		if err == nil && rec.MAC != r.LogMAC(rec.MACInput()) {
			err = errors.New("its MAC does not verify: it was not written by a holder of the key")
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.Warn("skipping snapshot log record %s: %v", fi.Handle, err)
			continue
		}
		records[fi.Name] = rec
	}
	return records, nil
}

// AppendLog writes a record to the snapshot log: the snapshots added and
// forgotten, after the log's current heads. Snapshots stored that the log
// does not know yet (an older courtbak's, or a backup interrupted before
// its record) are added too: that is how a repository made before the log
// starts one. forget calls it before it deletes anything, a backup after
// its snapshot is stored, so that an interruption never makes an
// authorised change look like a deletion.
func (r *Repository) AppendLog(ctx context.Context, added, forgotten []blob.ID) error {
	records, err := r.LoadLog(ctx)
	if err != nil {
		return err
	}
	state := snaplog.Replay(records)
	rec := &snaplog.Record{Time: r.Now().UTC(), Prev: snaplog.Heads(records)}
	rec.Host, _ = os.Hostname()
	for _, id := range added {
		rec.Added = append(rec.Added, id.String())
	}
	for _, id := range forgotten {
		rec.Forgotten = append(rec.Forgotten, id.String())
	}
	stored, err := r.List(ctx, remote.Snapshot)
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for _, fi := range stored {
		_, logged := state.Added[fi.Name]
		_, gone := state.Forgotten[fi.Name]
		if _, err := blob.ParseID(fi.Name); err == nil && !logged && !gone &&
			!slices.Contains(rec.Added, fi.Name) && !slices.Contains(rec.Forgotten, fi.Name) {
			rec.Added = append(rec.Added, fi.Name)
		}
	}
	slices.Sort(rec.Added)
	data, err := snaplog.Encode(rec, r.LogMAC)
	if err != nil {
		return err
	}
	id, err := r.saveObject(ctx, remote.Log, data)
	if err != nil {
		return fmt.Errorf("write snapshot log record: %w", err)
	}
	crashpoint.Hit(crashpoint.LogRecord)
	r.cache(remote.Handle{Type: remote.Log, Name: id.String()}, data)
	return nil
}
