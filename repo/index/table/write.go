package table

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/courtbak/courtbak/repo/blob"
)

// builder writes a table file section by section: packs in id order, then
// records in id order. The dir is kept in memory until the end (8 bytes
// per 32 records).
type builder struct {
	f       *os.File
	w       *bufio.Writer
	t       *Table // for the MAC
	payload []byte
	blockNo uint64

	packs, n uint64
	lastPack blob.ID
	lastRec  blob.ID
	dir      []uint64
	bucket   uint64 // buckets below this one are set in dir
	inRecs   bool
}

// dirBitsFor picks the dir size for about n records.
func dirBitsFor(n uint64) uint32 {
	b := bits.Len64(n / recordsPerBucket)
	return uint32(min(b, 40))
}

func create(dir string, key []byte, estimate uint64) (*builder, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	mac, err := newMAC(key, nonce)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".tmp-*.tbl")
	if err != nil {
		return nil, err
	}
	t := &Table{key: key, nonce: nonce, mac: mac, bits: dirBitsFor(estimate)}
	b := &builder{f: f, w: bufio.NewWriterSize(f, 1<<20), t: t, blockNo: 1, payload: make([]byte, 0, payloadSize)}
	b.dir = make([]uint64, 1<<t.bits+1)
	// The header block is written last, when the counts are known.
	if _, err := b.w.Write(make([]byte, blockSize)); err != nil {
		b.abort()
		return nil, err
	}
	return b, nil
}

func (b *builder) abort() {
	_ = b.f.Close()
	_ = os.Remove(b.f.Name())
}

func (b *builder) flushBlock() error {
	if len(b.payload) == 0 {
		return nil
	}
	p := b.payload[:payloadSize] // zero padding beyond len stays zero: cleared below
	clear(p[len(b.payload):])
	mac := b.t.blockMAC(b.blockNo, p)
	if _, err := b.w.Write(mac[:]); err != nil {
		return err
	}
	if _, err := b.w.Write(p); err != nil {
		return err
	}
	b.blockNo++
	b.payload = b.payload[:0]
	return nil
}

func (b *builder) put(item []byte, per int) error {
	b.payload = append(b.payload, item...)
	if len(b.payload) == per*len(item) {
		return b.flushBlock()
	}
	return nil
}

func (b *builder) addPack(p Pack) error {
	if b.inRecs || (b.packs > 0 && bytes.Compare(p.ID[:], b.lastPack[:]) <= 0) {
		return fmt.Errorf("table: packs out of order")
	}
	if b.packs >= MaxPacks {
		return fmt.Errorf("table: more than %d packs", MaxPacks)
	}
	b.lastPack = p.ID
	b.packs++
	var item [packSize]byte
	copy(item[:], p.ID[:])
	binary.LittleEndian.PutUint64(item[32:], uint64(p.Size))
	return b.put(item[:], perPackBlk)
}

func (b *builder) addRecord(r *Record) error {
	if !b.inRecs {
		b.inRecs = true
		if err := b.flushBlock(); err != nil {
			return err
		}
	}
	if b.n > 0 && bytes.Compare(r.ID[:], b.lastRec[:]) <= 0 {
		return fmt.Errorf("table: records out of order")
	}
	if uint64(r.Pack) >= b.packs {
		return fmt.Errorf("table: record names pack %d of %d", r.Pack, b.packs)
	}
	k := bucketOf(&r.ID, b.t.bits)
	for ; b.bucket <= k; b.bucket++ {
		b.dir[b.bucket] = b.n
	}
	b.lastRec = r.ID
	b.n++
	var item [recordSize]byte
	appendRecord(item[:0], r)
	return b.put(item[:], perRecBlock)
}

// finish writes the dir and the header and moves the file into place.
// It returns the file's name and nonce.
func (b *builder) finish() (string, [32]byte, error) {
	fail := func(err error) (string, [32]byte, error) {
		b.abort()
		return "", [32]byte{}, err
	}
	if !b.inRecs {
		b.inRecs = true
	}
	if err := b.flushBlock(); err != nil {
		return fail(err)
	}
	for ; b.bucket < uint64(len(b.dir)); b.bucket++ {
		b.dir[b.bucket] = b.n
	}
	var item [8]byte
	for _, v := range b.dir {
		binary.LittleEndian.PutUint64(item[:], v)
		if err := b.put(item[:], perDirBlock); err != nil {
			return fail(err)
		}
	}
	if err := b.flushBlock(); err != nil {
		return fail(err)
	}
	if err := b.w.Flush(); err != nil {
		return fail(err)
	}
	h := make([]byte, payloadSize)
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[4:], version)
	copy(h[8:40], b.t.nonce[:])
	binary.LittleEndian.PutUint64(h[40:], b.n)
	binary.LittleEndian.PutUint64(h[48:], b.packs)
	binary.LittleEndian.PutUint32(h[56:], b.t.bits)
	mac := b.t.blockMAC(0, h)
	if _, err := b.f.WriteAt(append(mac[:], h...), 0); err != nil {
		return fail(err)
	}
	if err := b.f.Sync(); err != nil {
		return fail(err)
	}
	if err := b.f.Close(); err != nil {
		_ = os.Remove(b.f.Name())
		return "", [32]byte{}, err
	}
	name := blob.ID(b.t.nonce).String() + ".tbl"
	if err := os.Rename(b.f.Name(), filepath.Join(filepath.Dir(b.f.Name()), name)); err != nil {
		_ = os.Remove(b.f.Name())
		return "", [32]byte{}, err
	}
	return name, b.t.nonce, nil
}

// Build writes a table of the given packs and records (in any order; a
// record names its pack by position in packs). Of records with the same
// id, the first is kept; of packs with the same id, the first.
func Build(dir string, key []byte, packs []Pack, recs []Record) (string, [32]byte, error) {
	order := make([]uint32, len(packs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		if c := bytes.Compare(packs[a].ID[:], packs[b].ID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	remap := make([]uint32, len(packs))
	b, err := create(dir, key, uint64(len(recs)))
	if err != nil {
		return "", [32]byte{}, err
	}
	var next uint32
	for i, p := range order {
		if i > 0 && packs[p].ID == packs[order[i-1]].ID {
			remap[p] = next - 1
			continue
		}
		remap[p] = next
		next++
		if err := b.addPack(packs[p]); err != nil {
			b.abort()
			return "", [32]byte{}, err
		}
	}
	// Equal ids are ordered by pack number, which follows the input order:
	// the first listing wins, and the sort need not be stable (a stable
	// sort of millions of records is several times slower).
	slices.SortFunc(recs, func(a, b Record) int {
		if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Pack, b.Pack)
	})
	for i := range recs {
		if i > 0 && recs[i].ID == recs[i-1].ID {
			continue
		}
		r := recs[i]
		if int(r.Pack) >= len(packs) {
			b.abort()
			return "", [32]byte{}, fmt.Errorf("table: record names pack %d of %d", r.Pack, len(packs))
		}
		r.Pack = remap[r.Pack]
		if err := b.addRecord(&r); err != nil {
			b.abort()
			return "", [32]byte{}, err
		}
	}
	return b.finish()
}

// scanner reads one section of a table in order, many blocks at a time.
type scanner struct {
	t         *Table
	next, end uint64 // blocks
	item, per uint64
	left      uint64 // items still to return
	buf       []byte
	pos, slot uint64
	err       error
	cur       []byte
}

const scanBlocks = 64

func (t *Table) scan(start, n, item, per uint64) *scanner {
	return &scanner{t: t, next: start, end: start + sectionBlocks(n, per), item: item, per: per, left: n}
}

func (t *Table) scanPacks() *scanner   { return t.scan(t.packStart, t.packs, packSize, perPackBlk) }
func (t *Table) scanRecords() *scanner { return t.scan(t.recStart, t.n, recordSize, perRecBlock) }

// advance moves to the next item; false at the end or on an error.
func (s *scanner) advance() bool {
	s.cur = nil
	if s.left == 0 || s.err != nil {
		return false
	}
	if s.pos >= uint64(len(s.buf)) {
		count := min(scanBlocks, s.end-s.next)
		s.buf, s.err = s.t.readBlocks(s.next, count)
		if s.err != nil {
			return false
		}
		s.next += count
		s.pos = 0
	}
	s.cur = s.buf[s.pos : s.pos+s.item]
	s.pos += s.item
	if s.slot++; s.slot == s.per { // the rest of the block is padding
		s.slot = 0
		s.pos = (s.pos + payloadSize - 1) / payloadSize * payloadSize
	}
	s.left--
	return true
}

// Merge writes one table holding every pack and record of tables. Of
// records with the same id, the one of the earliest table is kept. It
// reads each table once, in order; its memory is 4 bytes per pack (the
// renumbering) plus the new table's dir.
func Merge(dir string, key []byte, tables []*Table) (string, [32]byte, error) {
	var estimate uint64
	for _, t := range tables {
		estimate += t.n
	}
	b, err := create(dir, key, estimate)
	if err != nil {
		return "", [32]byte{}, err
	}
	fail := func(err error) (string, [32]byte, error) {
		b.abort()
		return "", [32]byte{}, err
	}
	// Packs: a k-way merge by id; remap[t][i] is pack i of table t's new number.
	remap := make([][]uint32, len(tables))
	ps := make([]*scanner, len(tables))
	pi := make([]uint32, len(tables))
	for i, t := range tables {
		remap[i] = make([]uint32, t.packs)
		ps[i] = t.scanPacks()
		ps[i].advance()
	}
	for {
		best := -1
		for i, s := range ps {
			if s.err != nil {
				return fail(s.err)
			}
			if s.cur == nil {
				continue
			}
			if best < 0 || bytes.Compare(s.cur[:32], ps[best].cur[:32]) < 0 {
				best = i
			}
		}
		if best < 0 {
			break
		}
		p := decodePack(ps[best].cur)
		if p.Size < 0 {
			return fail(fmt.Errorf("%w: pack %s has size %d", ErrDamaged, p.ID.Short(), p.Size))
		}
		if err := b.addPack(p); err != nil {
			return fail(err)
		}
		for i, s := range ps {
			if s.cur != nil && bytes.Equal(s.cur[:32], p.ID[:]) {
				remap[i][pi[i]] = uint32(b.packs - 1)
				pi[i]++
				s.advance()
			}
		}
	}
	for _, s := range ps {
		if s.err != nil {
			return fail(s.err)
		}
	}
	// Records: a k-way merge by id, keeping the earliest table's record.
	rs := make([]*scanner, len(tables))
	for i, t := range tables {
		rs[i] = t.scanRecords()
		rs[i].advance()
	}
	for {
		best := -1
		for i, s := range rs {
			if s.err != nil {
				return fail(s.err)
			}
			if s.cur == nil {
				continue
			}
			if best < 0 || bytes.Compare(s.cur[:32], rs[best].cur[:32]) < 0 {
				best = i
			}
		}
		if best < 0 {
			break
		}
		r := decodeRecord(rs[best].cur)
		if uint64(r.Pack) >= uint64(len(remap[best])) {
			return fail(fmt.Errorf("%w: record names pack %d of %d", ErrDamaged, r.Pack, len(remap[best])))
		}
		r.Pack = remap[best][r.Pack]
		if err := b.addRecord(&r); err != nil {
			return fail(err)
		}
		for _, s := range rs {
			if s.cur != nil && bytes.Equal(s.cur[:32], r.ID[:]) {
				s.advance()
			}
		}
	}
	for _, s := range rs {
		if s.err != nil {
			return fail(s.err)
		}
	}
	return b.finish()
}
