package prune

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

func sortRecords(t *testing.T, s *sorter) [][]byte {
	t.Helper()
	m, err := s.sorted()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	var out [][]byte
	for {
		rec, ok, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, slices.Clone(rec))
	}
}

// Records come back in order, duplicates included, whether they fit one
// run or spill into many.
func TestSorterSortsAcrossRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, runBytes := range []int{8, 8 * 7, 8 * 1000, defaultRunBytes} {
		s := newSorter(t.TempDir(), 8, runBytes)
		var want [][]byte
		for range 5000 {
			rec := binary.BigEndian.AppendUint64(nil, rng.Uint64N(3000)) // many duplicates
			want = append(want, rec)
			if err := s.add(rec); err != nil {
				t.Fatal(err)
			}
		}
		slices.SortFunc(want, bytes.Compare)
		got := sortRecords(t, s)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("run size %d bytes: %d records back, not the %d added in order", runBytes, len(got), len(want))
		}
		if wantRuns := min(5000, (5000*8+runBytes-1)/runBytes); len(s.runs) != wantRuns {
			t.Errorf("run size %d bytes: %d runs, want %d", runBytes, len(s.runs), wantRuns)
		}
	}
	s := newSorter(t.TempDir(), 8, 64)
	if got := sortRecords(t, s); len(got) != 0 {
		t.Errorf("empty sorter returned %d records", len(got))
	}
	if err := s.add([]byte{1}); err == nil {
		t.Error("a record of the wrong size was taken")
	}
}

// A run damaged on disk (flipped, cut short, reordered, lengthened) makes
// the merge fail instead of returning fewer or other records.
func TestSorterRefusesADamagedRun(t *testing.T) {
	damage := map[string]func(b []byte) []byte{
		"flipped bit": func(b []byte) []byte { b[20] ^= 1; return b },
		"cut short":   func(b []byte) []byte { return append(b[:16:16], b[len(b)-12:]...) },
		"no trailer":  func(b []byte) []byte { return b[:8] },
		"reordered": func(b []byte) []byte {
			x := slices.Clone(b[0:8])
			copy(b[0:8], b[8:16])
			copy(b[8:16], x)
			return b
		},
		"record added": func(b []byte) []byte {
			return append(append(b[:len(b)-12:len(b)-12], make([]byte, 8)...), b[len(b)-12:]...)
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			s := newSorter(t.TempDir(), 8, 8*10)
			for i := range 25 {
				if err := s.add(binary.BigEndian.AppendUint64(nil, uint64(i*7%25+1))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.spill(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(s.runs[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.runs[1], f(b), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := s.sorted()
			if err == nil {
				defer m.close()
				for {
					var ok bool
					if _, ok, err = m.next(); err != nil || !ok {
						break
					}
				}
			}
			if !errors.Is(err, errSortRun) {
				t.Errorf("damaged run read to the end with error %v, want errSortRun", err)
			}
		})
	}
}
