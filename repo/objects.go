package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// saveObject stores data under the BLAKE3 of its bytes.
func (r *Repository) saveObject(ctx context.Context, t remote.Type, data []byte) (blob.ID, error) {
	id := blob.ID(crypto.Hash(data))
	return id, r.be.Save(ctx, remote.Handle{Type: t, Name: id.String()}, data)
}

// CheckName reports whether data hashes to the object's name. It needs no
// key; the config object has no hash name and is accepted when it parses.
func CheckName(h remote.Handle, data []byte) error {
	if h.Type == remote.Config {
		_, err := ParseConfig(data)
		return err
	}
	if got := blob.ID(crypto.Hash(data)).String(); got != h.Name {
		return fmt.Errorf("%s: content hashes to %s: %w", h, got[:16], ErrDamaged)
	}
	return nil
}

// loadVerified reads a whole object and checks it against its name.
func (r *Repository) loadVerified(ctx context.Context, h remote.Handle) ([]byte, error) {
	if b, ok := r.cached(h); ok {
		return b, nil
	}
	b, err := remote.ReadAll(ctx, r.be, h)
	if err != nil {
		return nil, err
	}
	if err := CheckName(h, b); err != nil {
		return nil, err
	}
	r.cache(h, b)
	return b, nil
}

func fileAD(t remote.Type) []byte { return []byte("courtbak file v1 " + string(t)) }

// compress returns zstd-compressed data, appended to dst, when that saves
// at least 1/32 of it; otherwise data itself, so incompressible video is
// stored raw and costs nothing to restore. Large inputs are judged by a
// sample first: trying to compress a whole video chunk wastes a core.
func (r *Repository) compress(dst, data []byte) ([]byte, uint8) {
	if len(data) >= 3*sampleSize*4 && !r.worthCompressing(data) {
		return data, pack.CompressionNone
	}
	c := r.zenc.EncodeAll(data, dst[:0])
	if len(c) < len(data)-len(data)/32 {
		return c, pack.CompressionZstd
	}
	return data, pack.CompressionNone
}

const sampleSize = 8 << 10

// worthCompressing compresses three slices (start, middle, end) and
// reports whether they shrink by at least 1/32.
func (r *Repository) worthCompressing(data []byte) bool {
	var sample [3 * sampleSize]byte
	mid := len(data)/2 - sampleSize/2
	copy(sample[:], data[:sampleSize])
	copy(sample[sampleSize:], data[mid:mid+sampleSize])
	copy(sample[2*sampleSize:], data[len(data)-sampleSize:])
	var out [3*sampleSize + 512]byte
	c := r.zenc.EncodeAll(sample[:], out[:0])
	return len(c) < len(sample)-len(sample)/32
}

func (r *Repository) decompress(data []byte, compression uint8, rawLength int) ([]byte, error) {
	switch compression {
	case pack.CompressionNone:
		return data, nil
	case pack.CompressionZstd:
		out, err := r.zdec.DecodeAll(data, make([]byte, 0, rawLength))
		if err != nil {
			return nil, fmt.Errorf("decompress: %v: %w", err, ErrDamaged)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression %d: %w", compression, ErrDamaged)
}

// SaveFile seals plaintext as a file of type t (index or snapshot):
// Seal(compression byte || payload).
func (r *Repository) SaveFile(ctx context.Context, t remote.Type, plaintext []byte) (blob.ID, error) {
	payload, comp := r.compress(nil, plaintext)
	buf := make([]byte, 0, 1+len(payload))
	buf = append(buf, comp)
	buf = append(buf, payload...)
	id, err := r.saveObject(ctx, t, r.key.Seal(nil, buf, fileAD(t)))
	if err == nil && t == remote.Index {
		// An index file this process wrote is one it relies on; the prune
		// guard (pruneguard.go) notices if a prune supersedes or sweeps it.
		r.noteIndexFile(id.String(), true)
	}
	return id, err
}

// LoadFile reads, checks and opens a file written by SaveFile.
func (r *Repository) LoadFile(ctx context.Context, h remote.Handle) ([]byte, error) {
	b, err := r.loadVerified(ctx, h)
	if err != nil {
		return nil, err
	}
	return r.openFile(h, b)
}

func (r *Repository) openFile(h remote.Handle, sealed []byte) ([]byte, error) {
	plain, err := r.key.Open(nil, sealed, fileAD(h.Type))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", h, err, ErrDamaged)
	}
	if len(plain) == 0 {
		return nil, fmt.Errorf("%s: empty: %w", h, ErrDamaged)
	}
	out, err := r.decompress(plain[1:], plain[0], 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return out, nil
}

// List lists the objects of one type.
func (r *Repository) List(ctx context.Context, t remote.Type) ([]remote.ObjectInfo, error) {
	var out []remote.ObjectInfo
	err := r.be.List(ctx, t, func(fi remote.ObjectInfo) error {
		out = append(out, fi)
		return nil
	})
	return out, err
}

// LoadIndexFiles reads every index file in parallel and returns them by id.
//
// A listing is not a snapshot in time: it can include a prune's
// superseding file and miss the files that replace the ones it supersedes,
// stored just before it (design.md §20.2). So when a file listed
// supersedes another one listed, index/ is listed once more: that listing
// starts after the superseding file was stored and so shows its
// replacements. Of the files that only it shows, those that supersede
// others are left out; their own replacements might again be missing.
func (r *Repository) LoadIndexFiles(ctx context.Context) (map[string]*index.File, error) {
	return r.listAndLoadIndexFiles(ctx, nil, false)
}

// LoadIndexFileHeads is LoadIndexFiles without the packs: each File has
// its Supersedes list only, which is enough to tell which files are in
// effect. Memory grows with the index files, not with their packs or
// blobs: prune reads the listings of the files in effect one file at a
// time with LoadIndexFile.
func (r *Repository) LoadIndexFileHeads(ctx context.Context) (map[string]*index.File, error) {
	return r.listAndLoadIndexFiles(ctx, nil, true)
}

// LoadIndexFile reads and decodes one index file (through the cache
// directory). Its name is the hash of its content, so every read of one
// name returns the same listings.
func (r *Repository) LoadIndexFile(ctx context.Context, name string) (*index.File, error) {
	f, err := r.loadIndexFile(ctx, remote.Handle{Type: remote.Index, Name: name}, false)
	if err != nil {
		return nil, fmt.Errorf("load index %s: %w", name, err)
	}
	return f, nil
}

// listAndLoadIndexFiles is LoadIndexFiles; with damaged not nil, a damaged
// index file is recorded there instead of failing the load (see
// loadIndexFile).
func (r *Repository) listAndLoadIndexFiles(ctx context.Context, damaged map[string]error, headsOnly bool) (map[string]*index.File, error) {
	infos, err := r.List(ctx, remote.Index)
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	r.pruneCache(remote.Index, infos)
	files := make(map[string]*index.File, len(infos))
	if err := r.loadIndexFiles(ctx, infos, files, damaged, headsOnly); err != nil {
		return files, err
	}
	supersedesListed := false
	for _, f := range files {
		for _, s := range f.Supersedes {
			_, listed := files[s.String()]
			supersedesListed = supersedesListed || listed
		}
	}
	if !supersedesListed {
		return files, nil
	}
	again, err := r.List(ctx, remote.Index)
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	var more []remote.ObjectInfo
	for _, fi := range again {
		if _, ok := files[fi.Name]; !ok {
			more = append(more, fi)
		}
	}
	added := make(map[string]*index.File, len(more))
	if err := r.loadIndexFiles(ctx, more, added, damaged, headsOnly); err != nil {
		return files, err
	}
	for name, f := range added {
		if len(f.Supersedes) == 0 {
			files[name] = f
		}
	}
	return files, nil
}

// loadIndexFiles reads the listed index files in parallel into files;
// damaged (when not nil) receives those found damaged. With headsOnly,
// each file's Packs are dropped.
func (r *Repository) loadIndexFiles(ctx context.Context, infos []remote.ObjectInfo, files map[string]*index.File, damaged map[string]error, headsOnly bool) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 8)
	)
	for _, fi := range infos {
		wg.Add(1)
		sem <- struct{}{}
		go func(h remote.Handle) {
			defer func() { <-sem; wg.Done() }()
			f, err := r.loadIndexFile(ctx, h, damaged != nil)
			mu.Lock()
			defer mu.Unlock()
			if damaged != nil && errors.Is(err, ErrDamaged) {
				damaged[h.Name] = err
				return
			}
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("load index %s: %w", h.Name, err)
				}
				return
			}
			if headsOnly {
				f.Packs = nil
			}
			files[h.Name] = f
		}(fi.Handle)
	}
	wg.Wait()
	return firstErr
}

// LoadIndex reads every index file into the in-memory index. A file
// superseded by another present one is skipped.
//
// A damaged index file does not stop the load (see noteDamagedIndex): it
// is left out, as if it were missing.
//
// With a cache directory, the index lives in tables there, and only the
// index files they do not hold yet are read (indextables.go).
func (r *Repository) LoadIndex(ctx context.Context) error {
	r.indexLoadedAt = r.wallNow()
	if r.tableDir() != "" {
		err := r.loadIndexTables(ctx)
		var ce cacheError
		if !errors.As(err, &ce) {
			return err
		}
		r.Warn("%v; loading the index into memory instead", err)
		r.index = index.New()
	}
	damaged := map[string]error{}
	files, err := r.listAndLoadIndexFiles(ctx, damaged, false)
	if err != nil {
		return err
	}
	r.noteDamagedIndex(damaged)
	superseded := index.Superseded(files)
	r.noteIndexFiles(func(yield func(string, bool) bool) {
		for name := range files {
			if !yield(name, !superseded[name]) {
				return
			}
		}
	})
	for name, f := range files {
		if !superseded[name] {
			r.index.AddFile(f)
		}
	}
	return nil
}

// ErrBlobNotIndexed means a tree or snapshot refers to a blob no index knows.
var ErrBlobNotIndexed = errors.New("blob is not in the index")

// LoadBlob returns the plaintext of a blob, read from its pack, authenticated
// and decompressed.
func (r *Repository) LoadBlob(ctx context.Context, t blob.Type, id blob.ID) ([]byte, error) {
	loc, ok := r.index.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%s blob %s: %w", t, id, ErrBlobNotIndexed)
	}
	if loc.Type != t {
		return nil, fmt.Errorf("blob %s is a %s blob, want %s: %w", id, loc.Type, t, ErrDamaged)
	}
	h := remote.Handle{Type: remote.Data, Name: loc.Pack.String()}
	if cl, ok := remote.As[checkedLoader](r.be); ok {
		return r.loadBlobChecked(ctx, cl, t, id, loc, h)
	}
	sealed, err := remote.ReadRange(ctx, r.be, h, int64(loc.Offset), int64(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("read %s blob %s from pack %s: %w", t, id.Short(), loc.Pack.Short(), err)
	}
	plain, err := r.OpenBlob(loc, sealed)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w", t, id.Short(), loc.Pack.Short(), err)
	}
	return plain, nil
}

// OpenBlob authenticates, decrypts and decompresses one sealed blob.
func (r *Repository) OpenBlob(loc index.Location, sealed []byte) ([]byte, error) {
	plain, err := r.key.Open(nil, sealed, pack.BlobAD(loc.Type, loc.ID))
	return r.finishBlob(loc, plain, err)
}

// finishBlob decompresses an opened blob and checks its length.
func (r *Repository) finishBlob(loc index.Location, plain []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrDamaged)
	}
	out, err := r.decompress(plain, loc.Compression, int(loc.RawLength))
	if err != nil {
		return nil, err
	}
	if len(out) != int(loc.RawLength) {
		return nil, fmt.Errorf("length %d, index says %d: %w", len(out), loc.RawLength, ErrDamaged)
	}
	return out, nil
}

// ReadPackHeader reads and opens the header of a stored pack.
func (r *Repository) ReadPackHeader(ctx context.Context, id blob.ID, size int64) ([]pack.Entry, error) {
	h := remote.Handle{Type: remote.Data, Name: id.String()}
	tail, err := remote.ReadRange(ctx, r.be, h, size-4, 4)
	if err != nil {
		return nil, err
	}
	n, err := pack.HeaderLength(tail, size)
	if err != nil {
		return nil, err
	}
	sealed, err := remote.ReadRange(ctx, r.be, h, size-4-int64(n), int64(n))
	if err != nil {
		return nil, err
	}
	return pack.ParseHeader(r.key, sealed, size)
}
