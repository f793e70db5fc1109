package prune

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
)

// Plan is what a mark leaves for the sweep. It names objects only (pack,
// index and snapshot names are visible to anyone who can list the
// storage), so it is kept as plain JSON in this host's state directory.
type Plan struct {
	// Location is the storage the plan is for, for people reading it.
	Location string `json:"location"`
	// Marked is T1: when the superseding index file was stored, on this
	// host's clock. The sweep runs at T1 plus the grace period or later.
	Marked time.Time `json:"marked"`
	// Snapshots are the snapshots the mark walked.
	Snapshots []blob.ID `json:"snapshots"`
	// Superseded are the index files the mark replaced (I1).
	Superseded []blob.ID `json:"superseded"`
	// Written are the index files the mark wrote, the superseding one last.
	Written []blob.ID `json:"written"`
	// Dead packs were indexed but held no blob a snapshot needed.
	Dead []Pack `json:"dead"`
	// Unindexed packs were in no index file in effect.
	Unindexed []Pack `json:"unindexed"`
}

// Pack is a pack's name and size.
type Pack struct {
	ID   blob.ID `json:"id"`
	Size int64   `json:"size"`
}

// Due returns when the plan may be swept with the given grace period.
func (p *Plan) Due(grace time.Duration) time.Time { return p.Marked.Add(grace) }

// Bytes returns the packs' total size.
func Bytes(packs []Pack) int64 {
	var n int64
	for _, p := range packs {
		n += p.Size
	}
	return n
}

// Dir is where prune keeps its plan and lock for r on this host: the
// repository's state directory, then one directory per storage location,
// since a replica has the same repository id as its primary and may be
// pruned on its own. "" without a cache directory.
func Dir(r *repo.Repository) string {
	state := r.StateDir()
	if state == "" {
		return ""
	}
	where := crypto.Hash([]byte(r.Backend().Location()))
	return filepath.Join(state, "prune", hex.EncodeToString(where[:8]))
}

func planPath(dir string) string { return filepath.Join(dir, "plan.json") }

// loadPlan returns the plan kept in dir, or nil if there is none.
func loadPlan(dir string) (*Plan, error) {
	b, err := os.ReadFile(planPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read prune plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("prune plan %s is unreadable (%v): delete it and run prune again, which marks afresh", planPath(dir), err)
	}
	return &p, nil
}

// savePlan stores p durably: a plan lost after its superseding index file
// was written would leave that mark for --adopt to take over.
func savePlan(dir string, p *Plan) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save prune plan: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".prune-plan-*")
	if err != nil {
		return fmt.Errorf("save prune plan: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = encodePlan(w, p)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save prune plan: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save prune plan: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save prune plan: %w", err)
	}
	if err := os.Rename(tmp.Name(), planPath(dir)); err != nil {
		return fmt.Errorf("save prune plan: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// encodePlan writes p as json.MarshalIndent(p, "", " ") would, one list
// element at a time: a mark that deletes millions of packs does not hold
// its plan twice more as JSON.
func encodePlan(w io.Writer, p *Plan) error {
	ew := &errWriter{w: w}
	field := func(name string, v any, last bool) {
		b, err := json.MarshalIndent(v, " ", " ")
		if err != nil && ew.err == nil {
			ew.err = err
		}
		ew.printf(" %q: %s%s\n", name, b, comma(last))
	}
	ew.printf("{\n")
	field("location", p.Location, false)
	field("marked", p.Marked, false)
	writeList(ew, "snapshots", p.Snapshots, false)
	writeList(ew, "superseded", p.Superseded, false)
	writeList(ew, "written", p.Written, false)
	writeList(ew, "dead", p.Dead, false)
	writeList(ew, "unindexed", p.Unindexed, true)
	ew.printf("}")
	return ew.err
}

// writeList writes one list field of a plan, an element at a time.
func writeList[T any](ew *errWriter, name string, list []T, last bool) {
	switch {
	case list == nil:
		ew.printf(" %q: null%s\n", name, comma(last))
		return
	case len(list) == 0:
		ew.printf(" %q: []%s\n", name, comma(last))
		return
	}
	ew.printf(" %q: [\n", name)
	for i, v := range list {
		b, err := json.MarshalIndent(v, "  ", " ")
		if err != nil && ew.err == nil {
			ew.err = err
		}
		ew.printf("  %s%s\n", b, comma(i == len(list)-1))
	}
	ew.printf(" ]%s\n", comma(last))
}

func comma(last bool) string {
	if last {
		return ""
	}
	return ","
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func removePlan(dir string) error {
	if err := os.Remove(planPath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove prune plan: %w", err)
	}
	return nil
}
