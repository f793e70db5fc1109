package repo

import (
	"context"
	"fmt"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
)

// checkedLoader is storage that can read a range from whichever copy of the
// repository passes a check (remote.Failover). Storage cannot tell a
// damaged blob inside a pack; its authentication can, so LoadBlob hands
// that over as the check, and a blob damaged at the primary is read from a
// replica. It is found through the backend's Unwrap chain (remote.As), so
// decorating a Failover does not turn this off.
type checkedLoader interface {
	LoadChecked(ctx context.Context, h remote.Handle, offset, length int64, check func([]byte) error) ([]byte, error)
}

// loadBlobChecked is LoadBlob over a checkedLoader.
func (r *Repository) loadBlobChecked(ctx context.Context, cl checkedLoader, t blob.Type, id blob.ID, loc index.Location, h remote.Handle) ([]byte, error) {
	var plain []byte
	_, err := cl.LoadChecked(ctx, h, int64(loc.Offset), int64(loc.Length), func(sealed []byte) error {
		var err error
		plain, err = r.OpenBlob(loc, sealed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w", t, id.Short(), loc.Pack.Short(), err)
	}
	return plain, nil
}
