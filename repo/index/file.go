package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// File is the content of one index file: the blobs of some packs, and the
// index files it supersedes (written by prune when it rewrites the index, so
// that readers can ignore the old ones once the new one exists).
//
//	file  = "CBIX" version:u8 count:u32 supersededID:[32]*count count:u32 pack*count
//	pack  = id:[32] size:u64 count:u32 entry*count
//	entry = type:u8 compression:u8 id:[32] offset:u32 length:u32 rawLength:u32
//
// All integers are little-endian. The file is stored compressed and sealed
// like every other repository file.
type File struct {
	Supersedes []blob.ID
	Packs      []PackBlobs
}

// PackBlobs lists the blobs of one pack, in the order they are stored,
// and the pack's size (its padding makes it more than the blobs').
type PackBlobs struct {
	ID    blob.ID
	Size  int64
	Blobs []pack.Entry
}

const (
	fileMagic   = "CBIX"
	fileVersion = 1
	entrySize   = 1 + 1 + 32 + 4 + 4 + 4
	packPrefix  = 32 + 8 + 4
)

// ErrFormat means an index file does not have the expected structure.
var ErrFormat = errors.New("malformed index file")

// Encode serialises f.
func Encode(f *File) []byte {
	n := 4 + 1 + 4 + 32*len(f.Supersedes) + 4
	for _, p := range f.Packs {
		n += packPrefix + entrySize*len(p.Blobs)
	}
	b := make([]byte, 0, n)
	b = append(b, fileMagic...)
	b = append(b, fileVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		b = append(b, id[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.Size))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type), e.Compression)
			b = append(b, e.ID[:]...)
			b = binary.LittleEndian.AppendUint32(b, e.Offset)
			b = binary.LittleEndian.AppendUint32(b, e.Length)
			b = binary.LittleEndian.AppendUint32(b, e.RawLength)
		}
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrFormat)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

// count reads a count and checks that many items of size bytes can follow,
// so a damaged count cannot cause a huge allocation.
func (r *reader) count(size int) int {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(size) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: count %d exceeds the remaining %d bytes", ErrFormat, n, len(r.b))
		return 0
	}
	return int(n)
}

// Decode parses an index file.
func Decode(data []byte) (*File, error) {
	r := &reader{b: data}
	if m := r.take(4); r.err != nil || string(m) != fileMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := r.take(1); r.err == nil && v[0] != fileVersion {
		return nil, fmt.Errorf("%w: index version %d is not supported", ErrFormat, v[0])
	}
	f := &File{}
	n := r.count(32)
	for i := 0; i < n && r.err == nil; i++ {
		var id blob.ID
		copy(id[:], r.take(32))
		f.Supersedes = append(f.Supersedes, id)
	}
	n = r.count(packPrefix)
	f.Packs = make([]PackBlobs, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		var p PackBlobs
		copy(p.ID[:], r.take(32))
		if v := r.take(8); v != nil {
			p.Size = int64(binary.LittleEndian.Uint64(v))
			if p.Size < 0 || p.Size > 1<<40 {
				r.err = fmt.Errorf("%w: pack %s has size %d", ErrFormat, p.ID, p.Size)
			}
		}
		m := r.count(entrySize)
		p.Blobs = make([]pack.Entry, m)
		for j := 0; j < m && r.err == nil; j++ {
			v := r.take(entrySize)
			if v == nil {
				break
			}
			e := &p.Blobs[j]
			e.Type = blob.Type(v[0])
			e.Compression = v[1]
			copy(e.ID[:], v[2:34])
			e.Offset = binary.LittleEndian.Uint32(v[34:38])
			e.Length = binary.LittleEndian.Uint32(v[38:42])
			e.RawLength = binary.LittleEndian.Uint32(v[42:46])
			if e.Type > blob.Tree || e.Compression > pack.CompressionZstd {
				r.err = fmt.Errorf("%w: pack %s entry %d has unknown type or compression", ErrFormat, p.ID, j)
			}
		}
		f.Packs = append(f.Packs, p)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}

// Superseded returns the names of the index files that another of files
// supersedes: readers ignore those.
func Superseded(files map[string]*File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		for _, s := range f.Supersedes {
			out[s.String()] = true
		}
	}
	return out
}
