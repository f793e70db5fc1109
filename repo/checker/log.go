package checker

import (
	"context"
	"errors"
	"fmt"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/report"
	"github.com/courtbak/courtbak/repo/snaplog"
)

// Problem kinds of the snapshot log (docs/report-schema.md).
const (
	KindSnapshotDeleted   = snaplog.KindSnapshotDeleted
	KindLogRecordMissing  = snaplog.KindRecordMissing
	KindLogRecordDamaged  = "log_record_damaged"
	KindLogRecordForged   = "log_record_forged"
	KindSnapshotUnlogged  = snaplog.KindUnlogged
	KindSnapshotForgotten = snaplog.KindForgottenPresent
)

// checkLog reads the primary's snapshot log and compares it with the
// snapshots stored: a snapshot the log added and no record forgot must be
// there (rollback detection, design.md §14.1). Without the key it checks
// every record against its name and format; with the key, its MAC too, so
// that a forged forget record cannot excuse a deletion. A deleted
// snapshot is repaired like a missing object, from a replica that still
// holds it.
func (c *checker) checkLog(ctx context.Context) error {
	names := handles(c.primary.objects, remote.Log)
	c.rep.Checked.LogRecords = len(names)
	records := map[string]*snaplog.Record{}
	for _, h := range names {
		data, err := remote.ReadAll(ctx, c.primary.Backend, h)
		if err != nil {
			if err := c.unreadable(ctx, c.primary, h, err); err != nil {
				return err
			}
			continue
		}
		c.read(c.primary, h, int64(len(data)), true)
		kind, action := KindLogRecordDamaged, c.repairAction()
		var rec *snaplog.Record
		if err = repo.CheckName(h, data); err != nil {
			c.markDamaged(h, false)
		} else if rec, err = snaplog.Parse(data); err != nil {
			action = "the record matches its name but is no courtbak log record: find out who wrote it"
		} else if c.r != nil && rec.MAC != c.r.LogMAC(rec.MACInput()) {
			kind, action = KindLogRecordForged, "the record was not written by a holder of the key: find out who wrote it, and check the snapshots it names"
			err = errors.New("its MAC does not verify")
		}
		if err != nil {
			c.problem(report.Problem{Copy: c.primary.Location, Kind: kind, Object: h.String(),
				Message: fmt.Sprintf("snapshot log record cannot be used: %v", err), Action: action})
			continue
		}
		records[h.Name] = rec
	}
	if len(records) == 0 && len(names) == 0 {
		c.notice(report.Problem{Copy: c.primary.Location, Kind: KindSnapshotUnlogged, Object: "log/",
			Message: "the repository has no snapshot log yet (made by an older courtbak): deleted snapshots cannot be detected until the next backup or forget starts it"})
		return nil
	}
	for sn := range snaplog.Replay(records).Forgotten {
		c.forgotten[sn] = true
	}
	snapshots := map[string]bool{}
	for _, h := range handles(c.primary.objects, remote.Snapshot) {
		snapshots[h.Name] = true
	}
	for _, f := range snaplog.Check(records, snapshots) {
		p := report.Problem{Copy: c.primary.Location, Kind: f.Kind, Object: f.Object, Snapshot: f.Snapshot, Message: f.Message}
		if !f.Problem {
			c.notice(p)
			continue
		}
		h := remote.Handle{Type: remote.Log, Name: f.Object[len("log/"):]}
		if f.Kind == KindSnapshotDeleted {
			h = remote.Handle{Type: remote.Snapshot, Name: f.Snapshot}
			p.Action = "restore it from a replica that still holds it: " + c.repairCommand() +
				"; if none does, it is lost: find out who deleted it"
		} else {
			p.Action = c.repairAction()
		}
		c.markDamaged(h, true)
		c.problem(p)
	}
	return nil
}
