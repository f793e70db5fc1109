// Package snaplog is the repository's snapshot log: an append-only record
// of which snapshots were added and which were forgotten, so that a
// snapshot deleted behind courtbak's back (a rollback of the storage,
// ransomware, an operator's mistake) is visible to verify, with and
// without the password, while forget, an authorised deletion, is not a
// finding. The format is specified in docs/design.md §14.1.
//
// Each record is an immutable object in log/, named by the BLAKE3-256 of
// its bytes like every other object, in plain JSON: snapshot ids are
// object names, which storage shows anyway. A record names the records
// it followed (the heads of the log when it was written), so the log is a
// DAG whose every record but the newest is named by a later one: deleting
// a record is visible too. A record carries a MAC under the repository's
// blob-id key, so that with the password a forged forget record is seen.
package snaplog

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Version is the record format version.
const Version = 1

// Record is one entry of the log.
type Record struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host,omitempty"`
	// Prev names the records this one follows: the log's heads when it
	// was written (none for the first record).
	Prev []string `json:"prev"`
	// Added and Forgotten are snapshot ids (object names in snapshots/).
	Added     []string `json:"added,omitempty"`
	Forgotten []string `json:"forgotten,omitempty"`
	// MAC is the keyed BLAKE3 (blob-id key), in hex, of MACInput.
	MAC string `json:"mac"`
}

// macDomain separates the log's MAC from blob ids under the same key.
const macDomain = "courtbak snapshot log v1\n"

// MACInput is what the MAC covers: a domain string and the record's JSON
// with MAC empty.
func (r Record) MACInput() []byte {
	r.MAC = ""
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // strings, ints and a time
	}
	return append([]byte(macDomain), b...)
}

// Encode sets the record's MAC with mac and returns its stored bytes.
func Encode(r *Record, mac func([]byte) string) ([]byte, error) {
	r.Version = Version
	r.MAC = mac(r.MACInput())
	return json.Marshal(r)
}

// Parse decodes a stored record.
func Parse(data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("log record does not parse: %v", err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("log record version %d is not supported by this courtbak", r.Version)
	}
	for _, list := range [][]string{r.Prev, r.Added, r.Forgotten} {
		for _, id := range list {
			if !isName(id) {
				return nil, fmt.Errorf("log record names %q, which is no object name", id)
			}
		}
	}
	return &r, nil
}

func isName(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Heads are the records no other record names as its predecessor, sorted.
func Heads(records map[string]*Record) []string {
	named := map[string]bool{}
	for _, r := range records {
		for _, p := range r.Prev {
			named[p] = true
		}
	}
	var heads []string
	for id := range records {
		if !named[id] {
			heads = append(heads, id)
		}
	}
	sort.Strings(heads)
	return heads
}

// State is what the log says about snapshots.
type State struct {
	// Added maps each snapshot id the log added to the record adding it.
	Added map[string]string
	// Forgotten maps each snapshot id the log forgot to the record.
	Forgotten map[string]string
}

// Replay folds the records into a State.
func Replay(records map[string]*Record) State {
	s := State{Added: map[string]string{}, Forgotten: map[string]string{}}
	for id, r := range records {
		for _, sn := range r.Added {
			s.Added[sn] = id
		}
		for _, sn := range r.Forgotten {
			s.Forgotten[sn] = id
		}
	}
	return s
}

// Finding kinds.
const (
	// KindSnapshotDeleted: the log added a snapshot that is gone, and no
	// record forgot it. A problem.
	KindSnapshotDeleted = "snapshot_deleted"
	// KindRecordMissing: a record names a predecessor that is gone. A
	// problem.
	KindRecordMissing = "log_record_missing"
	// KindUnlogged: a snapshot the log does not know (written by an older
	// courtbak, or a backup interrupted between its snapshot and its
	// record; the next record adopts it). A notice.
	KindUnlogged = "snapshot_unlogged"
	// KindForgottenPresent: a forgotten snapshot is still stored (a
	// forget interrupted between its record and its deletion; forget it
	// again). A notice.
	KindForgottenPresent = "snapshot_forgotten_present"
)

// Finding is one thing Check found.
type Finding struct {
	Kind string
	// Object is "log/<id>" or "snapshots/<id>".
	Object   string
	Snapshot string
	Message  string
	Problem  bool
}

// Check compares the log with the snapshots stored (by id). An empty log
// (a repository from before the log) finds nothing.
func Check(records map[string]*Record, snapshots map[string]bool) []Finding {
	if len(records) == 0 {
		return nil
	}
	var out []Finding
	for _, id := range sortedKeys(records) {
		for _, p := range records[id].Prev {
			if records[p] == nil {
				out = append(out, Finding{Kind: KindRecordMissing, Object: "log/" + p, Problem: true,
					Message: fmt.Sprintf("log record %s is missing, but log record %s follows it: records are never deleted", short(p), short(id))})
			}
		}
	}
	s := Replay(records)
	for _, sn := range sortedKeys(s.Added) {
		_, forgotten := s.Forgotten[sn]
		switch {
		case !snapshots[sn] && !forgotten:
			r := records[s.Added[sn]]
			out = append(out, Finding{Kind: KindSnapshotDeleted, Object: "snapshots/" + sn, Snapshot: sn, Problem: true,
				Message: fmt.Sprintf("snapshot %s is gone, deleted without forget: log record %s added it (%s, host %q) and no record forgot it",
					short(sn), short(s.Added[sn]), r.Time.UTC().Format(time.RFC3339), r.Host)})
		}
	}
	for _, sn := range sortedKeys(snapshots) {
		_, added := s.Added[sn]
		_, forgotten := s.Forgotten[sn]
		switch {
		case forgotten:
			out = append(out, Finding{Kind: KindForgottenPresent, Object: "snapshots/" + sn, Snapshot: sn,
				Message: fmt.Sprintf("snapshot %s was forgotten (log record %s) but is still stored: a replica keeps what its primary forgot, or a forget was interrupted (forget it again); it is not checked, and its data may be pruned already",
					short(sn), short(s.Forgotten[sn]))})
		case !added:
			out = append(out, Finding{Kind: KindUnlogged, Object: "snapshots/" + sn, Snapshot: sn,
				Message: fmt.Sprintf("snapshot %s is not in the snapshot log yet: written by an older courtbak or by a backup interrupted before its log record; the next backup or forget adds it", short(sn))})
		}
	}
	return out
}

func short(id string) string { return id[:min(8, len(id))] }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
