package checker

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"testing"
	"time"
)

func randomNames(t *testing.T, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		names[i] = hex.EncodeToString(b)
	}
	// The edges of the id space.
	return append(names, "0000000000000000"+names[0][16:], "ffffffffffffffff"+names[0][16:])
}

func TestSubsetCoversEverythingInCeil100OverNDays(t *testing.T) {
	names := randomNames(t, 4000)
	start := time.Date(2025, 6, 30, 23, 0, 0, 0, time.UTC)
	for _, pct := range []float64{1, 5, 10, 12.5, 20, 30, 33.3, 50, 70, 99} {
		runs := int(math.Ceil(100 / pct))
		if got := NewSubset(pct, start).CycleRuns(); got != runs {
			t.Errorf("%g%%: %d runs per cycle, want %d", pct, got, runs)
		}
		seen := map[string]bool{}
		for d := 0; d < runs; d++ {
			s := NewSubset(pct, start.Add(time.Duration(d)*24*time.Hour))
			n := 0
			for _, name := range names {
				if s.Has(name) {
					seen[name] = true
					n++
				}
			}
			// About pct% a day (the names are random: allow slack).
			if frac := float64(n) / float64(len(names)) * 100; pct <= 50 && math.Abs(frac-pct) > 3+pct/5 {
				t.Errorf("%g%% on day %d: read %.1f%%", pct, d, frac)
			}
		}
		if len(seen) != len(names) {
			t.Errorf("%g%%: %d consecutive days read %d of %d packs", pct, runs, len(seen), len(names))
		}
	}
}

func TestSubsetIsStableWithinADay(t *testing.T) {
	names := randomNames(t, 200)
	morning := time.Date(2025, 1, 2, 0, 0, 1, 0, time.UTC)
	a, b := NewSubset(25, morning), NewSubset(25, morning.Add(23*time.Hour))
	for _, n := range names {
		if a.Has(n) != b.Has(n) {
			t.Fatalf("%s chosen differently on the same day", n)
		}
	}
	if all := NewSubset(100, morning); !all.All() || !all.Has(names[0]) {
		t.Error("100% is not everything")
	}
}
