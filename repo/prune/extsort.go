package prune

import (
	"bufio"
	"bytes"
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/zeebo/blake3"
)

// The mark sorts one record per listed blob and one per used blob, too
// many to hold in memory in a repository of 10^8 blobs. A sorter keeps at
// most runBytes of records in memory; each time that fills, it sorts them
// and writes them to a run file in its directory, and at the end merges
// the runs with a heap. Records are compared as bytes, so their fields are
// stored big-endian.
//
// A run file is its records, then a trailer: the record count and a MAC
// (keyed BLAKE3, 16 bytes) of the run's number, its records and the count.
// A run that is short, long, out of order or fails its MAC makes the merge
// fail: the mark then deletes nothing, where a silently shortened run could
// make a used blob look unused. Safety of the MAC over a checksum: the runs
// lie in the cache directory, which design.md §24 does not trust; the key
// is random per sort and never leaves the process, so a run rewritten
// consistently (records dropped, trailer recomputed), or one replaced by
// another run of the same sort or of an earlier prune, fails too.

// defaultRunBytes bounds a sorter's memory: 32 MiB of records, plus 4
// bytes per record for their order while sorting. A variable so that
// tests of whole prunes can make every sort spill into many runs.
var defaultRunBytes = 32 << 20

// errSortRun means a run file of an external sort was damaged on disk.
var errSortRun = errors.New("a sorted run in the prune's temporary directory is damaged")

// runTrailer is the record count (8 bytes) and the MAC (16).
const runTrailer = 8 + 16

// sorter collects fixed-size records and returns them sorted.
type sorter struct {
	dir     string
	size    int // bytes per record
	max     int // records per run
	buf     []byte
	runs    []string
	records int64
	key     []byte // of the runs' MACs: random, in memory only
}

// newSorter sorts records of size bytes, spilling runs of at most
// runBytes into dir, which must exist and be private to the caller.
func newSorter(dir string, size, runBytes int) *sorter {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return &sorter{dir: dir, size: size, max: max(1, runBytes/size), key: key}
}

// add copies one record in.
func (s *sorter) add(rec []byte) error {
	if len(rec) != s.size {
		return fmt.Errorf("sort: record of %d bytes, want %d", len(rec), s.size)
	}
	s.buf = append(s.buf, rec...) // grows as needed: a small repository needs little
	s.records++
	if len(s.buf) >= s.max*s.size {
		return s.spill()
	}
	return nil
}

// spill sorts the records in memory and writes them as one run.
func (s *sorter) spill() error {
	n := len(s.buf) / s.size
	if n == 0 {
		return nil
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	rec := func(i int32) []byte { return s.buf[int(i)*s.size : int(i+1)*s.size] }
	slices.SortFunc(order, func(a, b int32) int { return bytes.Compare(rec(a), rec(b)) })
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	mac := runMAC(s.key, len(s.runs))
	for _, i := range order {
		_, _ = w.Write(rec(i))
		_, _ = mac.Write(rec(i))
	}
	var trailer [runTrailer]byte
	binary.BigEndian.PutUint64(trailer[:8], uint64(n))
	_, _ = mac.Write(trailer[:8])
	copy(trailer[8:], mac.Sum(nil))
	_, _ = w.Write(trailer[:])
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sort: write run: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	s.buf = s.buf[:0]
	return nil
}

// sorted spills what is left and returns the merged stream of every
// record added, in order, duplicates included. The sorter takes no more
// records.
func (s *sorter) sorted() (*merged, error) {
	if err := s.spill(); err != nil {
		return nil, err
	}
	s.buf = nil
	m := &merged{size: s.size}
	for no, name := range s.runs {
		rr, err := openRun(name, s.size, runMAC(s.key, no))
		if err != nil {
			m.close()
			return nil, err
		}
		m.all = append(m.all, rr)
		ok, err := rr.next()
		if err != nil {
			m.close()
			return nil, err
		}
		if ok {
			m.h = append(m.h, rr)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// runMAC starts the MAC of run number no of a sort keyed with key.
func runMAC(key []byte, no int) *blake3.Hasher {
	h, _ := blake3.NewKeyed(key) // fails only for a key not of 32 bytes
	_, _ = h.Write(binary.BigEndian.AppendUint64(nil, uint64(no)))
	return h
}

// runReader reads one run back, checking its order, count and MAC.
type runReader struct {
	f       *os.File
	r       *bufio.Reader
	name    string
	size    int
	left    int64 // records not yet read
	count   [8]byte
	want    [16]byte
	mac     *blake3.Hasher
	cur     []byte
	prev    []byte
	started bool
	ended   bool // the MAC was checked
	bad     bool // and did not match
}

func openRun(name string, size int, mac *blake3.Hasher) (*runReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sort: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sort: %w", err)
	}
	var trailer [runTrailer]byte
	if fi.Size() < runTrailer {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s has no trailer", errSortRun, name)
	}
	if _, err := f.ReadAt(trailer[:], fi.Size()-runTrailer); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sort: %w", err)
	}
	n := binary.BigEndian.Uint64(trailer[:8])
	if n > uint64(fi.Size()) || int64(n)*int64(size) != fi.Size()-runTrailer {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s holds %d bytes, not %d records", errSortRun, name, fi.Size()-runTrailer, n)
	}
	rr := &runReader{f: f, r: bufio.NewReaderSize(f, 64<<10), name: name, size: size, left: int64(n),
		mac: mac, cur: make([]byte, size), prev: make([]byte, size)}
	copy(rr.count[:], trailer[:8])
	copy(rr.want[:], trailer[8:])
	return rr, nil
}

// next reads the next record into cur; false at the end of the run, when
// the MAC has been checked.
func (rr *runReader) next() (bool, error) {
	if rr.left == 0 {
		if !rr.ended {
			rr.ended = true
			_, _ = rr.mac.Write(rr.count[:])
			rr.bad = !bytes.Equal(rr.mac.Sum(nil)[:16], rr.want[:])
		}
		if rr.bad {
			return false, fmt.Errorf("%w: %s fails its MAC", errSortRun, rr.name)
		}
		return false, nil
	}
	rr.cur, rr.prev = rr.prev, rr.cur
	if _, err := io.ReadFull(rr.r, rr.cur); err != nil {
		return false, fmt.Errorf("%w: %s: %v", errSortRun, rr.name, err)
	}
	_, _ = rr.mac.Write(rr.cur)
	if rr.started && bytes.Compare(rr.prev, rr.cur) > 0 {
		return false, fmt.Errorf("%w: %s is out of order", errSortRun, rr.name)
	}
	rr.started = true
	rr.left--
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return bytes.Compare(h[i].cur, h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merged is the sorted stream of a sorter's records.
type merged struct {
	size int
	h    runHeap
	all  []*runReader
	rec  []byte
}

// next returns the next record, valid until the following call, or false
// at the end. An error means a run was damaged: the stream is incomplete.
func (m *merged) next() ([]byte, bool, error) {
	if len(m.h) == 0 {
		return nil, false, nil
	}
	top := m.h[0]
	m.rec = append(m.rec[:0], top.cur...)
	ok, err := top.next()
	if err != nil {
		return nil, false, err
	}
	if ok {
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return m.rec, true, nil
}

// close closes the run files (the caller removes the directory).
func (m *merged) close() {
	for _, rr := range m.all {
		_ = rr.f.Close()
	}
	m.all, m.h = nil, nil
}
