package repo

import (
	"fmt"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// OpenFile opens a sealed index or snapshot file already read from storage,
// so that verify can tell a damaged object (its bytes do not match its
// name) from one that fails to open, with a single read.
func (r *Repository) OpenFile(h remote.Handle, sealed []byte) ([]byte, error) {
	return r.openFile(h, sealed)
}

// ResetIndex empties the in-memory index, so that verify can read it again
// after a repair restored index files.
func (r *Repository) ResetIndex() { r.index = index.New() }

// ParsePackHeader opens the header of a whole pack held in memory: verify
// reads every byte of a pack anyway, and a second request for the header
// would cost a round trip per pack.
func (r *Repository) ParsePackHeader(data []byte) ([]pack.Entry, error) {
	size := int64(len(data))
	n, err := pack.HeaderLength(data, size)
	if err != nil {
		return nil, err
	}
	entries, err := pack.ParseHeader(r.key, data[size-4-int64(n):size-4], size)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrDamaged)
	}
	return entries, nil
}
