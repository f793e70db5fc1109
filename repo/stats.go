package repo

import (
	"context"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// Stats are the sizes of a repository.
type Stats struct {
	Snapshots     int     `json:"snapshots"`
	Files         int64   `json:"files"`             // file entries summed over every snapshot
	LogicalBytes  int64   `json:"logical_bytes"`     // file contents summed over every snapshot
	UniqueBytes   int64   `json:"unique_bytes"`      // distinct file data referenced, before compression
	StoredBytes   int64   `json:"stored_bytes"`      // every object in storage
	DataBlobs     int     `json:"data_blobs"`        // distinct data blobs referenced
	TreeBlobs     int     `json:"tree_blobs"`        // distinct tree blobs referenced
	IndexedBlobs  int     `json:"indexed_blobs"`     // blobs in the index, referenced or not
	Packs         int     `json:"packs"`             // pack files
	IndexFiles    int     `json:"index_files"`       // index files
	KeyFiles      int     `json:"key_files"`         // key files
	DedupRatio    float64 `json:"dedup_ratio"`       // logical / unique
	CompressRatio float64 `json:"compression_ratio"` // unique / stored
}

type treeTotals struct{ files, bytes int64 }

// Stats walks every snapshot and lists storage. The index must be loaded.
// Each distinct tree is read once: snapshots share most of theirs.
func (r *Repository) Stats(ctx context.Context, snaps []*snapshot.Snapshot) (*Stats, error) {
	st := &Stats{Snapshots: len(snaps), IndexedBlobs: r.index.Len()}
	seenData := map[blob.ID]bool{}
	totals := map[blob.ID]treeTotals{}
	var visit func(id blob.ID) (treeTotals, error)
	visit = func(id blob.ID) (treeTotals, error) {
		if t, ok := totals[id]; ok {
			return t, nil
		}
		tree, err := r.LoadTree(ctx, id)
		if err != nil {
			return treeTotals{}, err
		}
		var sum treeTotals
		for _, n := range tree.Nodes {
			switch {
			case n.Type == snapshot.NodeFile:
				sum.files++
				sum.bytes += int64(n.Size)
				for _, b := range n.Content {
					if !seenData[b] {
						seenData[b] = true
						if loc, ok := r.index.Lookup(b); ok {
							st.UniqueBytes += int64(loc.RawLength)
						}
					}
				}
			case n.Type == snapshot.NodeDir && n.Subtree != nil:
				sub, err := visit(*n.Subtree)
				if err != nil {
					return treeTotals{}, err
				}
				sum.files += sub.files
				sum.bytes += sub.bytes
			}
		}
		totals[id] = sum
		return sum, nil
	}
	for _, sn := range snaps {
		t, err := visit(sn.Tree)
		if err != nil {
			return nil, err
		}
		st.Files += t.files
		st.LogicalBytes += t.bytes
	}
	st.DataBlobs, st.TreeBlobs = len(seenData), len(totals)
	counts := map[remote.Type]*int{remote.Data: &st.Packs, remote.Index: &st.IndexFiles, remote.Keys: &st.KeyFiles}
	for _, t := range remote.AllTypes {
		err := r.be.List(ctx, t, func(fi remote.ObjectInfo) error {
			st.StoredBytes += fi.Size
			if c := counts[t]; c != nil {
				*c++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if st.UniqueBytes > 0 {
		st.DedupRatio = float64(st.LogicalBytes) / float64(st.UniqueBytes)
	}
	if st.StoredBytes > 0 {
		st.CompressRatio = float64(st.UniqueBytes) / float64(st.StoredBytes)
	}
	return st, nil
}
