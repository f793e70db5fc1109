package restorer

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// Small files are fetched in batches: the case files of a hearing are a few
// KiB each and lie side by side in a few packs, so one range read per file
// costs a request (a round trip, and the server's work to authenticate and
// seek) for a few KiB. On object storage, requests rather than bytes then
// bound a restore: 3,000 case files took 3,000 requests, where the packs
// holding them needed a handful. A batch is the small files whose blobs
// lie in one span of one pack no longer than maxRun, read with one request.
const (
	// smallFile is the largest file restored in a batch.
	smallFile = 1 << 20
	// maxGap is the longest stretch of bytes no file of a batch needs that
	// is read along with the others (see batcher.cut).
	maxGap = 256 << 10
	// maxPending bounds the packs whose files are being gathered; the
	// oldest is cut into batches when another pack is needed.
	maxPending = 64
	// maxGroupFiles bounds the files gathered for one pack.
	maxGroupFiles = 1024
)

// smallJob is a file of a batch and its blobs' locations.
type smallJob struct {
	fileJob
	locs []index.Location
}

// batch is small files whose blobs lie between start and end in one pack.
type batch struct {
	start, end int64
	files      []smallJob
}

// group is the small files found so far whose blobs lie in one pack.
type group struct {
	files []smallJob
	need  int64 // bytes of their blobs
}

// batcher gathers small files by pack as the walk delivers them, and cuts
// each pack's files into batches: the walk does not follow pack order
// (files are stored by several workers at once), so the files of a batch
// are found by sorting a pack's files by offset.
type batcher struct {
	r       *repo.Repository
	maxSpan int64
	pending map[blob.ID]*group
	order   []blob.ID // pending packs, oldest first
}

func newBatcher(r *repo.Repository, maxSpan int64) *batcher {
	return &batcher{r: r, maxSpan: maxSpan, pending: map[blob.ID]*group{}}
}

// add takes j into its pack's group if it is small and all its blobs lie
// in one pack; it reports whether it did, and returns the batches that are
// complete and must be restored now.
func (b *batcher) add(j fileJob) (taken bool, full []*batch) {
	if j.node.Size == 0 || j.node.Size > smallFile {
		return false, nil
	}
	locs := make([]index.Location, 0, len(j.node.Content))
	var need int64
	for _, id := range j.node.Content {
		loc, ok := b.r.Index().Lookup(id)
		if !ok || (len(locs) > 0 && loc.Pack != locs[0].Pack) {
			// Unindexed blobs get their error on the normal path.
			return false, nil
		}
		locs = append(locs, loc)
		need += int64(loc.Length)
	}
	if len(locs) == 0 {
		return false, nil
	}
	if start, end := span(locs); end-start > b.maxSpan {
		return false, nil
	}
	pack := locs[0].Pack
	g := b.pending[pack]
	if g == nil {
		if len(b.order) >= maxPending {
			full = append(full, b.cut(b.order[0])...)
		}
		g = &group{}
		b.pending[pack] = g
		b.order = append(b.order, pack)
	}
	g.files = append(g.files, smallJob{fileJob: j, locs: locs})
	g.need += need
	if g.need >= b.maxSpan || len(g.files) >= maxGroupFiles {
		full = append(full, b.cut(pack)...)
	}
	return true, full
}

// cut ends the group of pack and returns its batches: its files sorted by
// offset, split where the next file would make the span longer than
// maxSpan or leave a gap over maxGap (reading a gap costs more than a
// request over a slow link).
func (b *batcher) cut(pack blob.ID) []*batch {
	g := b.pending[pack]
	delete(b.pending, pack)
	b.order = slices.DeleteFunc(b.order, func(p blob.ID) bool { return p == pack })
	type placed struct {
		f          smallJob
		start, end int64
	}
	ps := make([]placed, len(g.files))
	for i, f := range g.files {
		s, e := span(f.locs)
		ps[i] = placed{f, s, e}
	}
	slices.SortFunc(ps, func(a, b placed) int { return cmp.Compare(a.start, b.start) })
	var out []*batch
	var cur *batch
	for _, p := range ps {
		if cur != nil && max(cur.end, p.end)-cur.start <= b.maxSpan && p.start-cur.end <= maxGap {
			cur.end = max(cur.end, p.end)
			cur.files = append(cur.files, p.f)
			continue
		}
		cur = &batch{start: p.start, end: p.end, files: []smallJob{p.f}}
		out = append(out, cur)
	}
	return out
}

// flush returns the batches of every pack still gathering files.
func (b *batcher) flush() []*batch {
	var out []*batch
	for len(b.order) > 0 {
		out = append(out, b.cut(b.order[0])...)
	}
	return out
}

func span(locs []index.Location) (start, end int64) {
	start, end = int64(locs[0].Offset), int64(locs[0].Offset+locs[0].Length)
	for _, l := range locs[1:] {
		start, end = min(start, int64(l.Offset)), max(end, int64(l.Offset+l.Length))
	}
	return start, end
}

// locations returns the distinct blobs of bt in pack order, as LoadRun
// wants them.
func (bt *batch) locations() []index.Location {
	var out []index.Location
	seen := map[blob.ID]bool{}
	for _, f := range bt.files {
		for _, l := range f.locs {
			if !seen[l.ID] {
				seen[l.ID] = true
				out = append(out, l)
			}
		}
	}
	slices.SortFunc(out, func(a, b index.Location) int { return cmp.Compare(a.Offset, b.Offset) })
	return out
}

// restoreBatch restores the files of bt from one read of their span, and
// calls done for each file with its outcome. Should the read or a blob's
// authentication fail, LoadRun reads each blob on its own, from the next
// copy where there are replicas; should that fail too, each file is
// restored on its own, so that one unreadable blob costs only the files
// that need it.
func restoreBatch(ctx context.Context, r *repo.Repository, fe *fetcher, stage []byte, bt *batch, onBytes func(int64), done func(fileJob, fileID, error)) {
	locs := bt.locations()
	held, buf, _ := fe.get(bt.end-bt.start, true)
	plains, err := fe.loadRun(ctx, r, locs, buf)
	if err != nil {
		// The memory goes back first: the files restored one by one wait
		// for their own.
		fe.done(fetched{buf: buf, held: held})
		for _, f := range bt.files {
			id, err := restoreFile(ctx, stage, f.dir.h, f.node, func(w io.Writer) error {
				return writeContent(ctx, r, fe, f.node, w, onBytes)
			})
			done(f.fileJob, id, err)
		}
		return
	}
	defer fe.done(fetched{buf: buf, held: held})
	byID := make(map[blob.ID][]byte, len(locs))
	for i, l := range locs {
		byID[l.ID] = plains[i]
	}
	for _, f := range bt.files {
		id, err := restoreFile(ctx, stage, f.dir.h, f.node, func(w io.Writer) error {
			return writeBlobs(f.node, byID, w, onBytes)
		})
		done(f.fileJob, id, err)
	}
}

// writeBlobs writes a file's content from blobs already opened, checking
// its recorded size and BLAKE3.
func writeBlobs(n snapshot.Node, byID map[blob.ID][]byte, w io.Writer, onBytes func(int64)) error {
	v := newVerifier(n)
	for _, id := range n.Content {
		data, ok := byID[id]
		if !ok {
			return fmt.Errorf("data blob %s was not fetched", id.Short())
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		v.add(data)
		if onBytes != nil {
			onBytes(int64(len(data)))
		}
	}
	return v.check()
}
