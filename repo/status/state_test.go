package status

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/report"
)

func subsetRun(day int64, pct float64, cycle int) Run {
	return Run{ReadData: "subset", SubsetDay: day, SubsetPercent: pct, CycleRuns: cycle, PacksRead: 10, PackBytesRead: 1000,
		Finished: time.Unix(day*86400+3600, 0).UTC()}
}

func TestCoverageCountsDistinctDaysOfTheCycle(t *testing.T) {
	day := func(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }
	const today = 20000
	for _, tc := range []struct {
		name     string
		runs     []Run
		covered  float64
		inCycle  int
		complete time.Time
	}{
		{"first run", []Run{subsetRun(today, 15, 7)}, 15, 1, day(today + 6)},
		{"three days in a row, one twice", []Run{subsetRun(today-2, 15, 7), subsetRun(today-1, 15, 7), subsetRun(today-1, 15, 7), subsetRun(today, 15, 7)}, 45, 3, day(today + 4)},
		{"a gap restarts the estimate", []Run{subsetRun(today-3, 15, 7), subsetRun(today-1, 15, 7), subsetRun(today, 15, 7)}, 45, 3, day(today - 2 + 7)},
		{"runs older than the cycle do not count", []Run{subsetRun(today-7, 15, 7), subsetRun(today, 15, 7)}, 15, 1, day(today + 6)},
		{"another percentage does not count", []Run{subsetRun(today-1, 10, 10), subsetRun(today, 15, 7)}, 15, 1, day(today + 6)},
		{"a whole cycle", []Run{subsetRun(today-6, 15, 7), subsetRun(today-5, 15, 7), subsetRun(today-4, 15, 7), subsetRun(today-3, 15, 7), subsetRun(today-2, 15, 7), subsetRun(today-1, 15, 7), subsetRun(today, 15, 7)}, 100, 7, time.Time{}},
		{"a full read in the cycle", []Run{{ReadData: "all", Finished: day(today - 2)}, subsetRun(today, 15, 7)}, 100, 1, time.Time{}},
	} {
		c := Coverage(tc.runs, tc.runs[len(tc.runs)-1])
		if c.CoveredPercent != tc.covered || c.RunsInCycle != tc.inCycle || !c.CompleteBy.Equal(tc.complete) || c.CycleRuns != 7 {
			t.Errorf("%s: %+v, want %g%% in %d runs, complete by %s", tc.name, c, tc.covered, tc.inCycle, tc.complete)
		}
		if c.PacksReadInCycle != 10*tc.inCycle || c.BytesReadInCycle != 1000*int64(tc.inCycle) {
			t.Errorf("%s: %d packs, %d bytes in the cycle", tc.name, c.PacksReadInCycle, c.BytesReadInCycle)
		}
	}
}

func TestStateRoundTripsAndRejectsForeignObjects(t *testing.T) {
	ctx := context.Background()
	be, err := remote.Open(ctx, filepath.Join(t.TempDir(), "repo"), remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadState(ctx, be)
	if err != nil || s.Last() != nil {
		t.Fatalf("no state yet: %+v, %v", s, err)
	}
	rep := &report.Report{Verdict: report.VerdictIntact, Finished: time.Now().UTC(),
		Scope:  report.Scope{ReadData: "subset", SubsetPercent: 50, SubsetDay: 20000, SubsetCycleRuns: 2},
		Copies: []report.Copy{{Role: "primary", Location: "/r", Label: "City", Status: "intact", PacksRead: 3, Packs: 6}}}
	for range maxRuns + 5 {
		s.Record(rep)
	}
	if rep.SubsetCoverage == nil || rep.SubsetCoverage.CoveredPercent != 50 {
		t.Fatalf("coverage %+v", rep.SubsetCoverage)
	}
	if err := SaveState(ctx, be, s); err != nil {
		t.Fatal(err)
	}
	back, err := LoadState(ctx, be)
	if err != nil || len(back.Runs) != maxRuns || back.Last().Copies[0].Label != "City" || back.Last().PacksRead != 3 {
		t.Fatalf("state read back: %d runs, %v", len(back.Runs), err)
	}
	if err := be.Save(ctx, StateHandle, []byte(`{"schema":"other"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(ctx, be); err == nil {
		t.Error("a state of another schema was accepted")
	}
}
