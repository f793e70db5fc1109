// Package status answers, for every court, whether its backups are
// protected: the newest snapshot and its age, each replica's lag behind the
// primary, the last verification and how much of the data it has covered,
// and the repository's size and growth. It works from storage listings and
// from the small verification state that every verify run leaves in the
// repository it checked, so that the provincial center, which holds no
// passwords, can run it; with the password it also reads the snapshots.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/report"
)

// StateHandle is where a verify run records its result in the repository it
// checked: a small JSON object, not encrypted (it holds no file names, only
// counts, verdicts and copy labels), so that status can read it without the
// password. It is outside the repository's object types: replication,
// keyless verification and prune never see it, and every copy keeps the
// results of the runs that checked that copy.
var StateHandle = remote.Handle{Type: "state", Name: "verify.json"}

// StateSchema names the state document.
const StateSchema = "courtbak-verify-state"

// maxRuns bounds the runs a state keeps (a year of daily runs, and some).
const maxRuns = 400

// maxStateBytes bounds the state object read: it is untrusted input.
const maxStateBytes = 4 << 20

// State is the history of verify runs against one copy, oldest first.
type State struct {
	Schema        string `json:"schema"`
	SchemaVersion int    `json:"schema_version"`
	Runs          []Run  `json:"runs"`
}

// Run is the outcome of one verify run.
type Run struct {
	Finished time.Time `json:"finished"`
	Host     string    `json:"host"`
	Keyless  bool      `json:"keyless"`
	// Verdict is the report's: intact, repaired or problems.
	Verdict  string `json:"verdict"`
	Problems int    `json:"problems"`
	// ReadData is "none", "all" or "subset", as in the report's scope.
	ReadData      string  `json:"read_data"`
	SubsetPercent float64 `json:"subset_percent,omitempty"`
	SubsetDay     int64   `json:"subset_day,omitempty"`
	CycleRuns     int     `json:"subset_cycle_runs,omitempty"`
	// PacksRead and PackBytesRead are what the run read at this copy.
	PacksRead     int   `json:"packs_read"`
	PackBytesRead int64 `json:"pack_bytes_read"`
	Packs         int   `json:"packs"`
	// Copies is each copy's status in that run, primary first.
	Copies []RunCopy `json:"copies"`
	// Coverage is the rotating subset's coverage after the run.
	Coverage *report.SubsetCoverage `json:"subset_coverage,omitempty"`
}

// RunCopy is one copy's result in a run.
type RunCopy struct {
	Label    string `json:"label,omitempty"`
	Location string `json:"location"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	Missing  int    `json:"missing"`
	Damaged  int    `json:"damaged"`
}

// Last returns the newest run, or nil.
func (s *State) Last() *Run {
	if s == nil || len(s.Runs) == 0 {
		return nil
	}
	return &s.Runs[len(s.Runs)-1]
}

// LoadState reads the verification state of be; a copy that has none yet
// gives an empty state. A state that does not parse is an error: it was
// damaged or written by something else.
func LoadState(ctx context.Context, be remote.Backend) (*State, error) {
	fi, err := be.Stat(ctx, StateHandle)
	if errors.Is(err, remote.ErrNotFound) {
		return &State{Schema: StateSchema, SchemaVersion: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read verification state: %w", err)
	}
	if fi.Size > maxStateBytes {
		return nil, fmt.Errorf("verification state %s is %d bytes, more than a state can be", StateHandle, fi.Size)
	}
	data, err := remote.ReadAll(ctx, be, StateHandle)
	if err != nil {
		return nil, fmt.Errorf("read verification state: %w", err)
	}
	return ParseState(data)
}

// ParseState decodes a state object.
func ParseState(data []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("verification state does not parse: %w", err)
	}
	if s.Schema != StateSchema || s.SchemaVersion != 1 {
		return nil, fmt.Errorf("verification state has schema %q version %d, want %s version 1", s.Schema, s.SchemaVersion, StateSchema)
	}
	return &s, nil
}

// SaveState stores s at be, keeping its newest maxRuns runs.
func SaveState(ctx context.Context, be remote.Backend, s *State) error {
	if len(s.Runs) > maxRuns {
		s.Runs = s.Runs[len(s.Runs)-maxRuns:]
	}
	s.Schema, s.SchemaVersion = StateSchema, 1
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	if err := be.Save(ctx, StateHandle, data); err != nil {
		return fmt.Errorf("save verification state: %w", err)
	}
	return nil
}

// RunOf summarises a finished report as a run.
func RunOf(rep *report.Report) Run {
	r := Run{Finished: rep.Finished, Host: rep.Host, Keyless: rep.Scope.Keyless, Verdict: rep.Verdict,
		Problems: rep.Unresolved(), ReadData: rep.Scope.ReadData, SubsetPercent: rep.Scope.SubsetPercent,
		SubsetDay: rep.Scope.SubsetDay, CycleRuns: rep.Scope.SubsetCycleRuns, Copies: []RunCopy{}}
	for i, c := range rep.Copies {
		if i == 0 {
			r.PacksRead, r.PackBytesRead, r.Packs = c.PacksRead, c.PackBytesRead, c.Packs
		}
		r.Copies = append(r.Copies, RunCopy{Label: c.Label, Location: c.Location, Role: c.Role, Status: c.Status,
			Missing: len(c.Missing), Damaged: len(c.Damaged)})
	}
	return r
}

// Record adds the run of rep to s, and, when rep read a rotating subset,
// sets rep.SubsetCoverage from the runs so far (this one included).
func (s *State) Record(rep *report.Report) {
	run := RunOf(rep)
	s.Runs = append(s.Runs, run)
	if rep.Scope.ReadData == "subset" {
		rep.SubsetCoverage = Coverage(s.Runs, run)
		s.Runs[len(s.Runs)-1].Coverage = rep.SubsetCoverage
	}
}

// Coverage computes how much of the data the rotating subset runs have read
// by the end of run last (a subset run, the newest of runs).
//
// Day d's subset is the window [d*w, (d+1)*w) of the space of pack names
// (see checker.Subset), so the windows of distinct days within one cycle
// of CycleRuns days do not overlap, and each adds the run's percentage.
// Runs count when they are of the same kind (keyed or keyless) and
// percentage, and took place in the last CycleRuns days; a run that read
// all data in that time makes the coverage complete. A day missed within
// the cycle is read again, nearly exactly, CycleRuns days later: so with
// daily runs from tomorrow, everything has been read CycleRuns days after
// the last missed day.
func Coverage(runs []Run, last Run) *report.SubsetCoverage {
	cycle := int64(max(last.CycleRuns, 1))
	c := &report.SubsetCoverage{CycleRuns: int(cycle)}
	today := last.SubsetDay
	days := map[int64]bool{}
	full := false
	for _, r := range runs {
		if r.Keyless != last.Keyless {
			continue
		}
		day := r.SubsetDay
		if r.ReadData == "all" {
			day = r.Finished.UTC().Unix() / 86400
		}
		if day <= today-cycle || day > today {
			continue
		}
		switch {
		case r.ReadData == "all":
			full = true
		case r.ReadData == "subset" && r.SubsetPercent == last.SubsetPercent:
		default:
			continue
		}
		if r.ReadData == "subset" && !days[day] {
			days[day] = true
			c.PacksReadInCycle += r.PacksRead
			c.BytesReadInCycle += r.PackBytesRead
		}
	}
	c.RunsInCycle = len(days)
	c.CoveredPercent = min(100, float64(len(days))*last.SubsetPercent)
	if full {
		c.CoveredPercent = 100
	}
	if c.CoveredPercent >= 100 {
		return c
	}
	missed := today - cycle
	for d := today; d > today-cycle; d-- {
		if !days[d] {
			missed = d
			break
		}
	}
	c.CompleteBy = time.Unix((missed+cycle)*86400, 0).UTC()
	return c
}
