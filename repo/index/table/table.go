// Package table keeps a repository's index on local disk: sorted,
// immutable tables of blob locations in the cache directory, read a block
// at a time, so that a process's memory does not grow with the repository.
// A table is local state, never part of the repository: it is built from
// index files and can always be built again (docs/design.md §24).
//
// A table file is a sequence of 4096-byte blocks. Each block is a 16-byte
// MAC followed by 4080 bytes of payload; the MAC is a keyed BLAKE3 of the
// table's random nonce, the block's number and its payload, with a key
// derived from the repository's master key. So a block that was damaged,
// moved, or taken from another table fails to read, and nobody without
// the repository password can forge an entry ("blob X is stored") that
// would make a backup skip data. Sections, each starting on a block:
//
//	header  1 block:  "CBTB" version:u32 nonce[32] records:u64 packs:u64 dirBits:u32
//	packs   102 per block, sorted by id: id[32] size:u64
//	records 85 per block, sorted by id: id[32] pack:u32 offset:u32 length:u32 raw:u32
//	dir     510 per block: u64 index of the first record whose id's top
//	        dirBits bits are at least b, for b = 0 … 2^dirBits
//
// The pack field holds the pack's number in the packs section in bits
// 0–29, the blob type in bit 30 and zstd compression in bit 31. All
// integers are little-endian.
package table

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

const (
	blockSize   = 4096
	macSize     = 16
	payloadSize = blockSize - macSize
	recordSize  = 48
	packSize    = 40
	perRecBlock = payloadSize / recordSize // 85
	perPackBlk  = payloadSize / packSize   // 102
	perDirBlock = payloadSize / 8          // 510
	magic       = "CBTB"
	version     = 1
	// MaxPacks is the number of packs one table can name.
	MaxPacks = 1 << 30
	// recordsPerBucket is the average number of records one dir entry
	// spans: a lookup reads them with one request (usually one block).
	recordsPerBucket = 32
	// maxBucket refuses a dir entry spanning more records than any honest
	// table has in one bucket, so a damaged dir cannot cause a huge read.
	maxBucket = 64 * perRecBlock
)

// ErrDamaged means a table file does not authenticate or is inconsistent.
var ErrDamaged = errors.New("index table is damaged")

// Record is one blob's location, with its pack as a number in the table's
// (or a build's) pack list.
type Record struct {
	ID          blob.ID
	Pack        uint32
	Type        blob.Type
	Compression uint8
	Offset      uint32
	Length      uint32
	RawLength   uint32
}

// Pack is a pack's id and size.
type Pack struct {
	ID   blob.ID
	Size int64
}

// Table is an open table file. Its methods are safe for concurrent use.
type Table struct {
	f     *os.File
	key   []byte
	nonce [32]byte
	mac   *blake3.Hasher // keyed, nonce written; cloned per block
	n     uint64         // records
	packs uint64
	bits  uint32
	// first blocks of the sections
	packStart, recStart, dirStart uint64

	// Authenticated payloads of blocks read before: the file never changes
	// once written, so a cached block is as good as a fresh read. The dir
	// has a cache of its own, as every lookup reads a dir block first and
	// the dir is 1/192 of the records' size: up to 4 million records, all
	// of it stays cached, and record blocks do not push it out.
	recs, dirs blockCache
	// reads counts the blocks read from the file and authenticated (the
	// benchmarks report it per query).
	reads atomic.Uint64
	// pinned are payloads read and authenticated once by Pin, kept for
	// the table's life; written only by Pin, before lookups start.
	pinned map[uint64][]byte
}

// Cache bounds, in blocks of 4080 bytes of payload: 512 KiB of record and
// pack blocks and 1 MiB of dir blocks per table, whatever its size.
const (
	cachedBlocks    = 128
	cachedDirBlocks = 256
)

// blockCache keeps the payloads of up to max single blocks, already
// authenticated. When full, an arbitrary block makes room: lookups of
// hashed ids have no recency to exploit beyond what a sorted batch's
// reader keeps itself.
type blockCache struct {
	mu     sync.Mutex
	max    int
	blocks map[uint64][]byte
}

func (c *blockCache) get(no uint64) ([]byte, bool) {
	c.mu.Lock()
	p, ok := c.blocks[no]
	c.mu.Unlock()
	return p, ok
}

// put keeps payload p of block no. Payloads are never written to once
// cached: an evicted one may still be in use by a lookup.
func (c *blockCache) put(no uint64, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocks == nil {
		c.blocks = make(map[uint64][]byte, c.max)
	}
	if len(c.blocks) >= c.max {
		for k := range c.blocks {
			delete(c.blocks, k)
			break
		}
	}
	c.blocks[no] = p
}

func (c *blockCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.blocks)
}

// Len is the number of records.
func (t *Table) Len() int { return int(t.n) }

// Packs is the number of packs.
func (t *Table) NumPacks() int { return int(t.packs) }

// Nonce identifies the table; the manifest records it.
func (t *Table) Nonce() [32]byte { return t.nonce }

// Close closes the file.
func (t *Table) Close() error { return t.f.Close() }

func newMAC(key []byte, nonce [32]byte) (*blake3.Hasher, error) {
	h, err := blake3.NewKeyed(key)
	if err != nil {
		return nil, err
	}
	_, _ = h.Write(nonce[:])
	return h, nil
}

func (t *Table) blockMAC(no uint64, payload []byte) [macSize]byte {
	h := t.mac.Clone()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], no)
	_, _ = h.Write(b[:])
	_, _ = h.Write(payload)
	var out [macSize]byte
	d := h.Digest()
	_, _ = d.Read(out[:])
	return out
}

// readBlocks reads count blocks from block first, checks each, and returns
// their payloads concatenated (MACs removed). It bypasses the caches: for
// the header and for sequential scans.
func (t *Table) readBlocks(first, count uint64) ([]byte, error) {
	if t.pinned != nil {
		if p, ok := t.pinnedBlocks(first, count); ok {
			return p, nil
		}
	}
	t.reads.Add(count)
	buf := make([]byte, count*blockSize)
	if _, err := t.f.ReadAt(buf, int64(first*blockSize)); err != nil {
		return nil, fmt.Errorf("%w: read blocks %d+%d: %v", ErrDamaged, first, count, err)
	}
	out := buf[:0]
	for i := uint64(0); i < count; i++ {
		b := buf[i*blockSize : (i+1)*blockSize]
		want := t.blockMAC(first+i, b[macSize:])
		if !bytes.Equal(want[:], b[:macSize]) {
			return nil, fmt.Errorf("%w: block %d fails authentication", ErrDamaged, first+i)
		}
		out = append(out, b[macSize:]...) // moves left within buf: never overlaps ahead
	}
	return out, nil
}

// pinnedBlocks returns the payloads of blocks [first, first+count) if all
// are pinned.
func (t *Table) pinnedBlocks(first, count uint64) ([]byte, bool) {
	if count == 1 {
		p, ok := t.pinned[first]
		return p, ok
	}
	var out []byte
	for i := first; i < first+count; i++ {
		p, ok := t.pinned[i]
		if !ok {
			return nil, false
		}
		out = append(out, p...)
	}
	return out, true
}

// Pin reads the packs section, and the dir when it takes at most
// maxDir bytes, into memory once, authenticated, so that a lookup then
// reads only the records of its bucket: a third of the block reads of a
// hit. The packs cost 40 bytes a pack; the dir about a quarter of a byte
// a blob, hence its bound.
func (t *Table) Pin(maxDir int64) error {
	pinned := map[uint64][]byte{}
	pin := func(first, count uint64) error {
		for done := uint64(0); done < count; done += scanBlocks {
			n := min(scanBlocks, count-done)
			p, err := t.readBlocks(first+done, n)
			if err != nil {
				return err
			}
			for i := uint64(0); i < n; i++ {
				pinned[first+done+i] = p[i*payloadSize : (i+1)*payloadSize : (i+1)*payloadSize]
			}
		}
		return nil
	}
	if err := pin(t.packStart, t.recStart-t.packStart); err != nil {
		return err
	}
	if dirBlocks := sectionBlocks(1<<t.bits+1, perDirBlock); int64(dirBlocks*payloadSize) <= maxDir {
		if err := pin(t.dirStart, dirBlocks); err != nil {
			return err
		}
	}
	t.pinned = pinned
	return nil
}

// block returns the authenticated payload of block no, from a cache or
// read and checked now. Callers only read the payloads they are given.
func (t *Table) block(no uint64) ([]byte, error) {
	c := &t.recs
	if no >= t.dirStart {
		c = &t.dirs
	}
	if p, ok := c.get(no); ok {
		return p, nil
	}
	p, err := t.readBlocks(no, 1)
	if err != nil {
		return nil, err
	}
	c.put(no, p)
	return p, nil
}

// reader reads the blocks of one lookup, or of a batch of lookups in
// ascending order of id, and keeps the last few it was given. Sorted ids
// ask for dir and record blocks in ascending order, so a batch reads and
// authenticates each block once even where the table's caches are too
// small to keep it: the blobs of a batch that share a block cost one read.
type reader struct {
	t    *Table
	memo [4]struct {
		no uint64
		p  []byte // nil: empty
	}
	next int
}

func (rd *reader) block(no uint64) ([]byte, error) {
	for i := range rd.memo {
		if m := &rd.memo[i]; m.p != nil && m.no == no {
			return m.p, nil
		}
	}
	p, err := rd.t.block(no)
	if err != nil {
		return nil, err
	}
	m := &rd.memo[rd.next]
	m.no, m.p = no, p
	rd.next = (rd.next + 1) % len(rd.memo)
	return p, nil
}

func sectionBlocks(n, per uint64) uint64 { return (n + per - 1) / per }

// Open opens a table file and checks its header against the nonce the
// manifest recorded for it.
func Open(path string, key []byte, nonce [32]byte) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	t, err := open(f, key, nonce)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func open(f *os.File, key []byte, nonce [32]byte) (*Table, error) {
	mac, err := newMAC(key, nonce)
	if err != nil {
		return nil, err
	}
	t := &Table{f: f, key: key, nonce: nonce, mac: mac}
	t.recs.max, t.dirs.max = cachedBlocks, cachedDirBlocks
	h, err := t.readBlocks(0, 1)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != magic || binary.LittleEndian.Uint32(h[4:8]) != version || !bytes.Equal(h[8:40], nonce[:]) {
		return nil, fmt.Errorf("%w: bad header", ErrDamaged)
	}
	t.n = binary.LittleEndian.Uint64(h[40:48])
	t.packs = binary.LittleEndian.Uint64(h[48:56])
	t.bits = binary.LittleEndian.Uint32(h[56:60])
	if t.bits > 40 || t.packs > MaxPacks || t.n > 1<<40 {
		return nil, fmt.Errorf("%w: bad header", ErrDamaged)
	}
	t.packStart = 1
	t.recStart = t.packStart + sectionBlocks(t.packs, perPackBlk)
	t.dirStart = t.recStart + sectionBlocks(t.n, perRecBlock)
	end := t.dirStart + sectionBlocks(1<<t.bits+1, perDirBlock)
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if uint64(fi.Size()) != end*blockSize {
		return nil, fmt.Errorf("%w: size %d, header implies %d", ErrDamaged, fi.Size(), end*blockSize)
	}
	return t, nil
}

// dirEntry returns entry b of the dir.
func (rd *reader) dirEntry(b uint64) (uint64, error) {
	p, err := rd.block(rd.t.dirStart + b/perDirBlock)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p[(b%perDirBlock)*8:]), nil
}

// dir returns the record range of bucket b.
func (rd *reader) dir(b uint64) (lo, hi uint64, err error) {
	if lo, err = rd.dirEntry(b); err != nil {
		return 0, 0, err
	}
	if hi, err = rd.dirEntry(b + 1); err != nil {
		return 0, 0, err
	}
	if lo > hi || hi > rd.t.n || hi-lo > maxBucket {
		return 0, 0, fmt.Errorf("%w: dir entry %d", ErrDamaged, b)
	}
	return lo, hi, nil
}

// record returns record i.
func (rd *reader) record(i uint64) ([]byte, error) {
	p, err := rd.block(rd.t.recStart + i/perRecBlock)
	if err != nil {
		return nil, err
	}
	o := (i % perRecBlock) * recordSize
	return p[o : o+recordSize], nil
}

func bucketOf(id *blob.ID, bits uint32) uint64 {
	if bits == 0 {
		return 0
	}
	return binary.BigEndian.Uint64(id[:8]) >> (64 - bits)
}

// Find returns the record of id.
func (t *Table) Find(id blob.ID) (Record, bool, error) {
	rd := reader{t: t}
	return rd.find(&id)
}

// find looks id up: the dir entry of its bucket, then a binary search over
// the bucket's records (usually in one block, two at a boundary).
func (rd *reader) find(id *blob.ID) (Record, bool, error) {
	t := rd.t
	if t.n == 0 {
		return Record{}, false, nil
	}
	lo, hi, err := rd.dir(bucketOf(id, t.bits))
	if err != nil || lo == hi {
		return Record{}, false, err
	}
	var ferr error
	k := sort.Search(int(hi-lo), func(k int) bool {
		rec, err := rd.record(lo + uint64(k))
		if err != nil {
			ferr = err
			return true
		}
		return bytes.Compare(rec[:32], id[:]) >= 0
	})
	if ferr != nil {
		return Record{}, false, ferr
	}
	if uint64(k) == hi-lo {
		return Record{}, false, nil
	}
	rec, err := rd.record(lo + uint64(k))
	if err != nil {
		return Record{}, false, err
	}
	if !bytes.Equal(rec[:32], id[:]) {
		return Record{}, false, nil
	}
	r := decodeRecord(rec)
	if uint64(r.Pack) >= t.packs {
		return Record{}, false, fmt.Errorf("%w: record names pack %d of %d", ErrDamaged, r.Pack, t.packs)
	}
	return r, true, nil
}

// Pack returns pack number i.
func (t *Table) Pack(i uint32) (Pack, error) {
	rd := reader{t: t}
	return rd.pack(i)
}

func (rd *reader) pack(i uint32) (Pack, error) {
	if uint64(i) >= rd.t.packs {
		return Pack{}, fmt.Errorf("%w: pack %d of %d", ErrDamaged, i, rd.t.packs)
	}
	p, err := rd.block(rd.t.packStart + uint64(i)/perPackBlk)
	if err != nil {
		return Pack{}, err
	}
	return decodePack(p[(uint64(i)%perPackBlk)*packSize:]), nil
}

// HasPack reports whether the table names pack id (a binary search over
// the pack blocks: for journal recovery, which is rare).
func (t *Table) HasPack(id blob.ID) (bool, error) {
	nb := sectionBlocks(t.packs, perPackBlk)
	var ferr error
	i := sort.Search(int(nb), func(k int) bool {
		if ferr != nil {
			return true
		}
		p, err := t.block(t.packStart + uint64(k))
		if err != nil {
			ferr = err
			return true
		}
		inBlock := min(perPackBlk, t.packs-uint64(k)*perPackBlk)
		last := p[(inBlock-1)*packSize:]
		return bytes.Compare(last[:32], id[:]) >= 0
	})
	if ferr != nil || uint64(i) == nb {
		return false, ferr
	}
	p, err := t.block(t.packStart + uint64(i))
	if err != nil {
		return false, err
	}
	inBlock := min(perPackBlk, t.packs-uint64(i)*perPackBlk)
	for s := uint64(0); s < inBlock; s++ {
		if bytes.Equal(p[s*packSize:s*packSize+32], id[:]) {
			return true, nil
		}
	}
	return false, nil
}

func decodeRecord(b []byte) Record {
	var r Record
	copy(r.ID[:], b[:32])
	v := binary.LittleEndian.Uint32(b[32:36])
	r.Pack = v & (MaxPacks - 1)
	r.Type = blob.Type(v >> 30 & 1)
	r.Compression = uint8(v >> 31)
	r.Offset = binary.LittleEndian.Uint32(b[36:40])
	r.Length = binary.LittleEndian.Uint32(b[40:44])
	r.RawLength = binary.LittleEndian.Uint32(b[44:48])
	return r
}

func appendRecord(b []byte, r *Record) []byte {
	b = append(b, r.ID[:]...)
	v := r.Pack | uint32(r.Type&1)<<30 | uint32(r.Compression&1)<<31
	b = binary.LittleEndian.AppendUint32(b, v)
	b = binary.LittleEndian.AppendUint32(b, r.Offset)
	b = binary.LittleEndian.AppendUint32(b, r.Length)
	return binary.LittleEndian.AppendUint32(b, r.RawLength)
}

func decodePack(b []byte) Pack {
	var p Pack
	copy(p.ID[:], b[:32])
	p.Size = int64(binary.LittleEndian.Uint64(b[32:40]))
	return p
}

// Entry converts a record to a pack entry.
func (r *Record) Entry() pack.Entry {
	return pack.Entry{Type: r.Type, Compression: r.Compression, ID: r.ID, Offset: r.Offset, Length: r.Length, RawLength: r.RawLength}
}

// Fits reports whether a pack entry can be stored in a record (type and
// compression are one bit each).
func Fits(e *pack.Entry) bool {
	return e.Type <= blob.Tree && e.Compression <= pack.CompressionZstd
}

func newNonce() ([32]byte, error) {
	var n [32]byte
	_, err := rand.Read(n[:])
	return n, err
}
