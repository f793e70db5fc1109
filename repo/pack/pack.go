// Package pack encodes and decodes pack files: sealed blobs back to back,
// random padding, then a sealed header listing them, then the header's
// length. Only a key holder can read where one blob ends and the next
// begins; the padding and the header's entry slots (rounded up to a
// multiple of 16) keep a pack's size from giving away the exact size or
// number of the chunks in it, such as one small file backed up alone.
//
//	pack   = blob* padding sealedHeader headerLength
//	blob   = Seal(key, payload, AD = "courtbak blob v1" || type || id)
//	header = "CBPK" version:u8 count:u32 paddingLength:u32 entry*count zero*  (sealed, AD = "courtbak pack header v1")
//	entry  = type:u8 compression:u8 id:[32] length:u32 rawLength:u32
//	headerLength = u32, the length of sealedHeader
//
// The header's entries are followed by zero bytes up to a multiple of 16
// entry slots. All integers are little-endian.
package pack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo/blob"
)

// Compression of a blob's payload.
const (
	CompressionNone uint8 = 0
	CompressionZstd uint8 = 1
)

const (
	magic        = "CBPK"
	version      = 1
	entrySize    = 1 + 1 + 32 + 4 + 4
	headerPrefix = len(magic) + 1 + 4 + 4
	// entrySlots rounds the header's entries up; padUnit rounds the blob
	// bytes up, and up to padUnit-1 random bytes more are added.
	entrySlots = 16
	padUnit    = 4096
	// MaxBlobs bounds the entries of one pack so a damaged or forged length
	// cannot make a reader allocate without bound.
	MaxBlobs = 1 << 20
)

var headerAD = []byte("courtbak pack header v1")

// ErrFormat means a pack does not have the expected structure.
var ErrFormat = errors.New("malformed pack")

// Entry locates one blob in a pack.
type Entry struct {
	Type        blob.Type
	Compression uint8
	ID          blob.ID
	Offset      uint32
	Length      uint32 // sealed length in the pack
	RawLength   uint32 // plaintext length
}

// BlobAD is the associated data that binds a sealed blob to its type and id:
// a blob moved to another id or type fails authentication.
func BlobAD(t blob.Type, id blob.ID) []byte {
	ad := make([]byte, 0, 16+1+32)
	ad = append(ad, "courtbak blob v1"...)
	ad = append(ad, byte(t))
	return append(ad, id[:]...)
}

// Writer accumulates sealed blobs into one pack in memory.
type Writer struct {
	buf     []byte
	entries []Entry
}

// NewWriter returns a writer that builds the pack in buf's storage
// (callers recycle pack buffers; buf's contents are discarded).
func NewWriter(buf []byte) *Writer {
	return &Writer{buf: buf[:0]}
}

// Reserve appends room for a sealed blob of sealedLen bytes and returns
// it; the caller seals into it (possibly concurrently with other reserved
// blobs) before Finish. Blobs are sealed in place, never copied. ok is
// false when the blob does not fit the buffer's capacity: start a new pack.
// An empty writer always accepts, growing its buffer.
func (w *Writer) Reserve(t blob.Type, id blob.ID, compression uint8, rawLength, sealedLen int) (room []byte, ok bool) {
	off := len(w.buf)
	// Keep room for the padding and header too, so Finish never moves
	// the buffer.
	if need := off + sealedLen + tailRoom(len(w.entries)+1); need > cap(w.buf) {
		if off > 0 {
			return nil, false
		}
		w.buf = make([]byte, 0, need)
	}
	w.entries = append(w.entries, Entry{
		Type: t, Compression: compression, ID: id,
		Offset: uint32(off), Length: uint32(sealedLen), RawLength: uint32(rawLength),
	})
	w.buf = w.buf[:off+sealedLen]
	return w.buf[off : off : off+sealedLen], true
}

// tailRoom is the most that padding, sealed header and trailer take for
// a pack of n blobs.
func tailRoom(n int) int {
	slots := (n + entrySlots - 1) / entrySlots * entrySlots
	return 2*padUnit + crypto.Overhead + headerPrefix + entrySize*slots + 4
}

// Grow makes room for a blob of n bytes, moving the buffer if needed.
// Call it only while no reserved blob is still being sealed.
func (w *Writer) Grow(n int) {
	n += tailRoom(len(w.entries) + 1)
	if cap(w.buf)-len(w.buf) < n {
		nb := make([]byte, len(w.buf), 2*cap(w.buf)+n)
		copy(nb, w.buf)
		w.buf = nb
	}
}

// Size is the number of blob bytes so far.
func (w *Writer) Size() int { return len(w.buf) }

// Count is the number of blobs so far.
func (w *Writer) Count() int { return len(w.entries) }

// Finish appends the padding and the sealed header and returns the pack's
// bytes and entries.
func (w *Writer) Finish(key *crypto.Key) ([]byte, []Entry) {
	padding := (padUnit-len(w.buf)%padUnit)%padUnit + int(randUint32()%padUnit)
	w.buf = appendRandom(w.buf, padding)
	slots := (len(w.entries) + entrySlots - 1) / entrySlots * entrySlots
	hdr := make([]byte, 0, headerPrefix+entrySize*slots)
	hdr = append(hdr, magic...)
	hdr = append(hdr, version)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(w.entries)))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(padding))
	for _, e := range w.entries {
		hdr = append(hdr, byte(e.Type), e.Compression)
		hdr = append(hdr, e.ID[:]...)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Length)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.RawLength)
	}
	hdr = hdr[:cap(hdr)] // zero slots
	before := len(w.buf)
	w.buf = key.Seal(w.buf, hdr, headerAD)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(w.buf)-before))
	return w.buf, w.entries
}

// HeaderLength returns the sealed header's length from a pack's last 4 bytes.
func HeaderLength(tail []byte, packSize int64) (int, error) {
	if len(tail) < 4 {
		return 0, fmt.Errorf("%w: trailer of %d bytes", ErrFormat, len(tail))
	}
	n := int64(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if n < int64(crypto.Overhead+headerPrefix) || n+4 > packSize || n > int64(crypto.Overhead+headerPrefix+entrySize*(MaxBlobs+entrySlots)) {
		return 0, fmt.Errorf("%w: header length %d in a pack of %d bytes", ErrFormat, n, packSize)
	}
	return int(n), nil
}

// ParseHeader opens a sealed header and returns the entries with offsets.
// The entries must exactly tile the pack up to the header.
func ParseHeader(key *crypto.Key, sealed []byte, packSize int64) ([]Entry, error) {
	hdr, err := key.Open(nil, sealed, headerAD)
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	if len(hdr) < headerPrefix || string(hdr[:4]) != magic {
		return nil, fmt.Errorf("%w: bad header magic", ErrFormat)
	}
	if hdr[4] != version {
		return nil, fmt.Errorf("%w: pack version %d is not supported", ErrFormat, hdr[4])
	}
	count := binary.LittleEndian.Uint32(hdr[5:9])
	padding := binary.LittleEndian.Uint32(hdr[9:13])
	slots := (int(count) + entrySlots - 1) / entrySlots * entrySlots
	if count > MaxBlobs || len(hdr) != headerPrefix+slots*entrySize {
		return nil, fmt.Errorf("%w: header of %d bytes for %d entries", ErrFormat, len(hdr), count)
	}
	entries := make([]Entry, count)
	var offset uint64
	p := hdr[headerPrefix:]
	for i := range entries {
		e := &entries[i]
		e.Type = blob.Type(p[0])
		e.Compression = p[1]
		copy(e.ID[:], p[2:34])
		e.Length = binary.LittleEndian.Uint32(p[34:38])
		e.RawLength = binary.LittleEndian.Uint32(p[38:42])
		e.Offset = uint32(offset)
		offset += uint64(e.Length)
		p = p[entrySize:]
		if e.Type > blob.Tree || e.Compression > CompressionZstd {
			return nil, fmt.Errorf("%w: entry %d has unknown type %d or compression %d", ErrFormat, i, e.Type, e.Compression)
		}
	}
	if int64(offset)+int64(padding)+int64(len(sealed))+4 != packSize {
		return nil, fmt.Errorf("%w: blobs cover %d bytes, padding %d, header %d, pack is %d", ErrFormat, offset, padding, len(sealed), packSize)
	}
	return entries, nil
}

// randUint32 and appendRandom draw padding from the OS's CSPRNG: padding
// must look like ciphertext, or it would show where the blobs end.
func randUint32() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return binary.LittleEndian.Uint32(b[:])
}

func appendRandom(b []byte, n int) []byte {
	start := len(b)
	if cap(b)-start < n {
		nb := make([]byte, start, start+n)
		copy(nb, b)
		b = nb
	}
	b = b[:start+n]
	if _, err := rand.Read(b[start:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return b
}
