package repo

import (
	"context"
	"fmt"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// Contiguous reports whether b directly follows a in the same pack, so both
// can be fetched with one read.
func Contiguous(a, b index.Location) bool {
	return a.Pack == b.Pack && a.Offset+a.Length == b.Offset
}

// LoadRun returns the plaintexts of data blobs of one pack, in ascending
// offset order and not overlapping, fetched with a single range read from
// the first one's offset to the last one's end: one request per run
// instead of one per blob matters on object storage. The blobs are
// usually back to back (see Contiguous); bytes between them (blobs nobody
// asked for) are read and dropped. If the run cannot be read or a blob in
// it fails authentication, each blob is loaded on its own through
// LoadBlob, which knows how to fetch intact copies elsewhere.
//
// The run is read into buf when it is large enough, and uncompressed blobs
// are decrypted in place there, so the plaintexts may alias buf: callers
// that recycle buf must be done with them first.
func (r *Repository) LoadRun(ctx context.Context, run []index.Location, buf []byte) ([][]byte, error) {
	size, err := RunSize(run)
	if err != nil || size == 0 {
		return nil, err
	}
	first := run[0]
	h := remote.Handle{Type: remote.Data, Name: first.Pack.String()}
	raw := buf
	if int64(cap(raw)) < size {
		raw = make([]byte, size)
	}
	raw = raw[:size]
	if err := remote.ReadRangeInto(ctx, r.be, h, int64(first.Offset), raw); err != nil {
		return r.loadRunBlobs(ctx, run)
	}
	return r.OpenRun(ctx, run, raw)
}

// RunSize checks that run is data blobs of one pack in ascending offset
// order, not overlapping, and returns the bytes from the first one's
// offset to the last one's end.
func RunSize(run []index.Location) (int64, error) {
	if len(run) == 0 {
		return 0, nil
	}
	first, last := run[0], run[len(run)-1]
	for i, loc := range run {
		if loc.Pack != first.Pack || (i > 0 && loc.Offset < run[i-1].Offset+run[i-1].Length) {
			return 0, fmt.Errorf("blob %s is not after blob %s in pack %s", loc.ID.Short(), run[max(i-1, 0)].ID.Short(), first.Pack.Short())
		}
	}
	return int64(last.Offset+last.Length) - int64(first.Offset), nil
}

// OpenRun is LoadRun with the run's bytes already read into raw (from the
// first blob's offset, RunSize bytes), for callers that read packs
// themselves: it decrypts them in place, and loads each blob on its own
// through LoadBlob should one fail authentication.
func (r *Repository) OpenRun(ctx context.Context, run []index.Location, raw []byte) ([][]byte, error) {
	size, err := RunSize(run)
	if err != nil || size == 0 {
		return nil, err
	}
	if int64(len(raw)) != size {
		return nil, fmt.Errorf("run of %d bytes in pack %s given %d bytes", size, run[0].Pack.Short(), len(raw))
	}
	first := run[0]
	out := make([][]byte, len(run))
	for i, loc := range run {
		start := loc.Offset - first.Offset
		if out[i], err = r.openBlobInPlace(loc, raw[start:start+loc.Length]); err != nil {
			return r.loadRunBlobs(ctx, run)
		}
	}
	return out, nil
}

// loadRunBlobs loads each blob of run on its own.
func (r *Repository) loadRunBlobs(ctx context.Context, run []index.Location) ([][]byte, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var err error
	out := make([][]byte, len(run))
	for i, loc := range run {
		if out[i], err = r.LoadBlob(ctx, blob.Data, loc.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// openBlobInPlace is OpenBlob decrypting into the sealed buffer itself.
func (r *Repository) openBlobInPlace(loc index.Location, sealed []byte) ([]byte, error) {
	if loc.Type != blob.Data {
		return nil, fmt.Errorf("blob %s is a %s blob, want data: %w", loc.ID.Short(), loc.Type, ErrDamaged)
	}
	plain, err := r.key.OpenInPlace(sealed, pack.BlobAD(loc.Type, loc.ID))
	return r.finishBlob(loc, plain, err)
}
