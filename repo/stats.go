package repo

import (
	"context"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
)

// Stats are the sizes of a repository.
type Stats struct {
	Snapshots     int     `json:"snapshots"`
	Files         int64   `json:"files"`
	LogicalBytes  int64   `json:"logical_bytes"` // file contents summed over every snapshot
	UniqueBytes   int64   `json:"unique_bytes"`  // distinct file data referenced, before compression
	StoredBytes   int64   `json:"stored_bytes"`  // every object in storage
	DataBlobs     int     `json:"data_blobs"`    // distinct data blobs referenced
	TreeBlobs     int     `json:"tree_blobs"`    // distinct tree blobs referenced
	IndexedBlobs  int     `json:"indexed_blobs"` // blobs in the index, referenced or not
	Packs         int     `json:"packs"`
	IndexFiles    int     `json:"index_files"`
	KeyFiles      int     `json:"key_files"`
	DedupRatio    float64 `json:"dedup_ratio"`       // logical / unique
	CompressRatio float64 `json:"compression_ratio"` // unique / stored
}

// Stats walks every snapshot and lists storage. The index must be loaded.
func (r *Repository) Stats(ctx context.Context, snaps []*Snapshot) (*Stats, error) {
	st := &Stats{Snapshots: len(snaps), IndexedBlobs: r.index.Len()}
	seenData := map[blob.ID]bool{}
	seenTree := map[blob.ID]bool{}
	for _, sn := range snaps {
		seenTree[sn.Tree] = true
		err := r.Walk(ctx, sn.Tree, func(_ string, n *Node) error {
			switch n.Type {
			case NodeFile:
				st.Files++
				st.LogicalBytes += int64(n.Size)
				for _, id := range n.Content {
					if !seenData[id] {
						seenData[id] = true
						if loc, ok := r.index.Lookup(id); ok {
							st.UniqueBytes += int64(loc.RawLength)
						}
					}
				}
			case NodeDir:
				if n.Subtree != nil && seenTree[*n.Subtree] {
					return ErrSkipDir // counted already
				}
				if n.Subtree != nil {
					seenTree[*n.Subtree] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	st.DataBlobs, st.TreeBlobs = len(seenData), len(seenTree)
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
