package chunking

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"sync"
)

// Parallel chunks one stream on several cores and yields exactly the
// chunks a sequential Chunker would.
//
// Why this is possible: a cut depends only on the 64 bytes before it (the
// rolling hash window) and on the distance from the previous cut (minimum
// and maximum size). A chunker started anywhere finds cuts that, once one
// of them coincides with a cut of the sequential pass, coincide forever
// after. So the stream is read in rounds; each round is split into
// segments chunked concurrently, each segment running a little past its
// end; the segments' cut lists are stitched at the first cut they share.
// Where no shared cut shows up (rare: long stretches cut only by the
// maximum size), the stitch falls back to chunking sequentially from the
// last certain cut, so the result is always exact.
type Parallel struct {
	p        Params
	rounds   chan round
	cur      round
	pos      int // next chunk starts at cur.data[pos]
	stop     chan struct{}
	stopOnce sync.Once
}

type round struct {
	data []byte
	cuts []int // chunk ends in data, ascending
	err  error // io.EOF after the last round
}

// NewParallel starts chunking rd with workers goroutines, reading segment
// bytes per worker per round. One round is prepared ahead while the
// previous one is consumed; call Close when done early.
func NewParallel(rd io.Reader, p Params, workers, segment int) *Parallel {
	// Unbuffered: the producer prepares the next round while the consumer
	// drains the current one; two rounds in memory at most.
	pc := &Parallel{p: p, rounds: make(chan round), stop: make(chan struct{})}
	go pc.produce(rd, workers, segment)
	return pc
}

// Close stops the background work. Safe to call more than once.
func (pc *Parallel) Close() {
	pc.stopOnce.Do(func() { close(pc.stop) })
	for range pc.rounds {
		// drain, so the producer can exit
	}
}

// Next returns the next chunk, copied into buf (grown if needed), or
// io.EOF after the last one.
func (pc *Parallel) Next(buf []byte) ([]byte, error) {
	for len(pc.cur.cuts) == 0 {
		if pc.cur.err != nil {
			return nil, pc.cur.err
		}
		r, ok := <-pc.rounds
		if !ok {
			return nil, io.EOF
		}
		pc.cur, pc.pos = r, 0
	}
	end := pc.cur.cuts[0]
	pc.cur.cuts = pc.cur.cuts[1:]
	chunk := append(buf[:0], pc.cur.data[pc.pos:end]...)
	pc.pos = end
	return chunk, nil
}

func (pc *Parallel) produce(rd io.Reader, workers, segment int) {
	defer close(pc.rounds)
	var leftover []byte
	for {
		data := make([]byte, len(leftover), len(leftover)+workers*segment)
		copy(data, leftover)
		n, err := io.ReadFull(rd, data[len(data):cap(data)])
		data = data[:len(data)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			pc.send(round{err: err})
			return
		}
		cuts := cutRound(data, pc.p, workers, eof)
		last := 0
		if len(cuts) > 0 {
			last = cuts[len(cuts)-1]
		}
		r := round{data: data, cuts: cuts}
		if eof {
			r.err = io.EOF
		}
		if !pc.send(r) || eof {
			return
		}
		leftover = data[last:]
	}
}

func (pc *Parallel) send(r round) bool {
	select {
	case pc.rounds <- r:
		return true
	case <-pc.stop:
		return false
	}
}

// cutsFrom returns the chunk ends a chunker started at data[0] finds in
// data, as offsets into data. The last end is len(data), which is a real
// cut only at the end of the stream.
func cutsFrom(data []byte, p Params) []int {
	ch := New(bytes.NewReader(data), p)
	var cuts []int
	buf := make([]byte, 0, p.MaxSize)
	pos := 0
	for {
		c, err := ch.Next(buf)
		if err != nil {
			return cuts // io.EOF: a bytes.Reader fails no other way
		}
		pos += len(c)
		cuts = append(cuts, pos)
	}
}

// cutRound returns the sequential chunk ends in data, which starts at a
// real cut. Without eof, the tail after the last returned end is left for
// the next round.
func cutRound(data []byte, p Params, workers int, eof bool) []int {
	n := len(data)
	seg := n / workers
	// A segment's chunker usually meets the sequential cuts within a few
	// chunks of its start; past the overlap the stitch falls back to a
	// sequential pass, so the overlap trades work for rare fallbacks.
	overlap := int(min(p.MaxSize, p.MinSize+4<<p.AverageBits))
	if workers < 2 || seg < 2*overlap {
		return trimTail(cutsFrom(data, p), n, eof)
	}
	// lists[i] holds the cuts of a chunker started at starts[i], running
	// overlap bytes past the next segment's start.
	starts := make([]int, workers)
	lists := make([][]int, workers)
	var wg sync.WaitGroup
	for i := range starts {
		starts[i] = i * seg
	}
	for i := range starts {
		end := n
		if i+1 < workers {
			end = starts[i+1] + overlap
		}
		wg.Add(1)
		go func(i, end int) {
			defer wg.Done()
			cuts := cutsFrom(data[starts[i]:end], p)
			for j := range cuts {
				cuts[j] += starts[i]
			}
			lists[i] = trimTail(cuts, end, end == n && eof)
		}(i, end)
	}
	wg.Wait()

	out := lists[0]
	for i := 1; i < workers; i++ {
		out = stitch(data, p, out, lists[i], starts[i], eof)
	}
	return out
}

// stitch continues the exact cut list out with next, the list of a
// chunker started at start, from the first cut at or after start that
// both share: from there both chunkers are in the same state. Without a
// shared cut it chunks sequentially from out's last cut before start to
// the end of the data.
func stitch(data []byte, p Params, out, next []int, start int, eof bool) []int {
	k := sort.SearchInts(out, start)
	for i := k; i < len(out); i++ {
		if j := sort.SearchInts(next, out[i]); j < len(next) && next[j] == out[i] {
			return append(out[:i+1:i+1], next[j+1:]...)
		}
	}
	from := 0
	if k > 0 {
		from = out[k-1]
	}
	cuts := cutsFrom(data[from:], p)
	for j := range cuts {
		cuts[j] += from
	}
	return append(out[:k:k], trimTail(cuts, len(data), eof)...)
}

// trimTail drops the final end when it is only where the data stopped.
func trimTail(cuts []int, end int, eof bool) []int {
	if !eof && len(cuts) > 0 && cuts[len(cuts)-1] == end {
		return cuts[:len(cuts)-1]
	}
	return cuts
}
