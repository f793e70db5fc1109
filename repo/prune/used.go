package prune

import (
	"encoding/binary"

	"github.com/courtbak/courtbak/repo/blob"
)

// usedSet holds the blobs that snapshots need by the first 8 bytes of their
// ids: about 10-20 bytes per blob in a Go map, against about 70 for full
// ids, which matters at hundreds of millions of blobs. Blob ids are keyed
// BLAKE3 hashes, so an unused blob shares its prefix with one of N used
// ones with probability N/2^64 (5e-12 at 10^8 blobs). Such a collision can
// only make an unused blob look used, and so keep it; it never lets a used
// blob look unused.
type usedSet map[uint64]struct{}

func prefix(id blob.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

func (s usedSet) add(id blob.ID)      { s[prefix(id)] = struct{}{} }
func (s usedSet) has(id blob.ID) bool { _, ok := s[prefix(id)]; return ok }
