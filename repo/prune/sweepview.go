package prune

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// The sweep's walk of the snapshots stored since the mark, in bounded
// memory like the mark (design.md §20.5): the candidates' blobs and the
// used blobs pass through external sorts and a merge-join; only the
// candidates' trees, which the walk reads, are held in memory.

// A candidate record is a blob of a candidate: its id and the candidate's
// number in the sorted candidate ids.
const candidateSize = 32 + 4

// keepNeededSinceMark takes out of candidates every pack that a snapshot
// stored since the mark needs, indexes those again (unless dryRun), and
// returns how many it kept. r's index must hold the index in effect,
// inUseNow, behind an in-memory part (loadSweepIndex); the candidates'
// trees are added there. Safety: a backup that started before the mark
// may have deduplicated against a candidate and stored its snapshot
// since; its trees are walked over the index plus the candidates' trees,
// and a candidate that holds a blob such a snapshot uses, which no pack
// in effect but a candidate has, is kept. A candidate whose header cannot
// be read is kept too (perhaps a passing failure; the next mark decides),
// and a walk that cannot finish, or a used blob found nowhere, stops the
// sweep before anything is deleted.
func keepNeededSinceMark(ctx context.Context, r *repo.Repository, candidates map[blob.ID]index.PackBlobs, inUseNow *index.Index, roots []blob.ID, dryRun bool, dir string) (int, error) {
	tmp, err := os.MkdirTemp(dir, "sort-")
	if err != nil {
		return 0, fmt.Errorf("prune: temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	order := slices.SortedFunc(maps.Keys(candidates), func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	cs := newSorter(tmp, candidateSize, defaultRunBytes)
	kept, err := readCandidateHeaders(ctx, r, candidates, order, cs)
	if err != nil {
		return kept, err
	}
	cm, err := cs.sorted()
	if err != nil {
		return kept, err
	}
	defer cm.close()
	us := newSorter(tmp, len(blob.ID{}), defaultRunBytes)
	if err := collectUsed(ctx, r, roots, us); err != nil {
		return kept, fmt.Errorf("%w; nothing was deleted: run courtbak verify", err)
	}
	um, err := us.sorted()
	if err != nil {
		return kept, err
	}
	defer um.close()
	needed, err := joinSinceMark(cm, um, order, candidates, r.Index(), inUseNow)
	if err != nil {
		if errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w; nothing was deleted: run courtbak verify", err)
		}
		return kept, err
	}
	back := takeBack(ctx, r, candidates, needed)
	if len(back) > 0 && !dryRun {
		if _, _, err := writeNewIndex(ctx, r, back); err != nil {
			return kept, fmt.Errorf("index packs needed since the mark: %w", err)
		}
	}
	return kept + len(needed), nil
}

// readCandidateHeaders reads each candidate's header (order is the
// candidates sorted), adds one record per blob to s and the trees to r's
// index, so that the trees of new snapshots can be walked through them. A
// candidate already gone is left as it is (deleting it again is
// harmless); one whose header cannot be read is taken out of candidates,
// and counted as kept.
func readCandidateHeaders(ctx context.Context, r *repo.Repository, candidates map[blob.ID]index.PackBlobs, order []blob.ID, s *sorter) (kept int, err error) {
	rec := make([]byte, candidateSize)
	for n, id := range order {
		entries, err := r.ReadPackHeader(ctx, id, candidates[id].Size)
		switch {
		case errors.Is(err, remote.ErrNotFound):
			continue // already gone: no snapshot can use it
		case err != nil:
			if ctx.Err() != nil {
				return kept, ctx.Err()
			}
			r.Warn("keeping marked pack %s: its header cannot be read (%v)", id.Short(), err)
			delete(candidates, id)
			kept++
			continue
		}
		var trees []pack.Entry
		for _, e := range entries {
			copy(rec, e.ID[:])
			binary.BigEndian.PutUint32(rec[32:], uint32(n))
			if err := s.add(rec); err != nil {
				return kept, err
			}
			if e.Type == blob.Tree {
				trees = append(trees, e)
			}
		}
		if len(trees) > 0 {
			r.Index().AddPack(id, trees)
		}
	}
	return kept, nil
}

// joinSinceMark merge-joins the candidates' blob records with the blobs
// the new snapshots use, and returns the candidates to keep: those holding
// a used blob that no pack in effect has other than a candidate (inUseNow
// comes from a later listing than the candidates, so it may list a
// candidate again; such a listing is no other copy). A used blob that is
// neither a candidate's nor in idx fails with ErrIncomplete. Both streams
// are read to their ends.
func joinSinceMark(cands, used *merged, order []blob.ID, candidates map[blob.ID]index.PackBlobs, idx, inUseNow *index.Index) (map[blob.ID]bool, error) {
	needed := map[blob.ID]bool{}
	elsewhere := func(b blob.ID) bool {
		loc, ok := inUseNow.Lookup(b)
		_, candidate := candidates[loc.Pack]
		return ok && !candidate
	}
	var missing *blob.ID
	err := mergeJoin(cands, used, candidateSize, func(id blob.ID, group []byte) error {
		switch {
		case len(group) == 0:
			if missing == nil && !idx.Has(id) {
				missing = &id
			}
		case !elsewhere(id):
			for rec := range slices.Chunk(group, candidateSize) {
				n := binary.BigEndian.Uint32(rec[32:])
				if int(n) >= len(order) {
					return fmt.Errorf("%w: candidate %d of %d", errSortRun, n, len(order))
				}
				needed[order[n]] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, fmt.Errorf("%w (blob %s: %w)", ErrIncomplete, missing.Short(), repo.ErrBlobNotIndexed)
	}
	return needed, nil
}

// takeBack removes the needed packs from candidates and returns their
// listings, read from their headers again (they are few). One whose
// header cannot be read now stays out of candidates all the same, and is
// found unindexed by the next mark.
func takeBack(ctx context.Context, r *repo.Repository, candidates map[blob.ID]index.PackBlobs, needed map[blob.ID]bool) []index.PackBlobs {
	var back []index.PackBlobs
	for _, id := range slices.SortedFunc(maps.Keys(needed), func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }) {
		p := candidates[id]
		delete(candidates, id)
		entries, err := r.ReadPackHeader(ctx, id, p.Size)
		if err != nil {
			r.Warn("keeping marked pack %s, which a new snapshot needs, unindexed: its header cannot be read again (%v)", id.Short(), err)
			continue
		}
		back = append(back, index.PackBlobs{ID: id, Size: p.Size, Blobs: entries})
	}
	return back
}
