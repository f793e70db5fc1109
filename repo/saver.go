package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/crashpoint"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/pack"
)

// Index files are written after this many uploaded packs or this much time:
// few index files keep loading the index fast, and an interrupt flushes one.
// A journal in the cache directory covers the packs in between.
const (
	indexFlushPacks = 64
	indexFlushEvery = 5 * time.Minute
)

// Saver stores new blobs: it packs them (data and trees apart), uploads
// full packs in the background and writes index files for uploaded packs.
// Packs are always stored before the index that names them, and the index
// before any snapshot that uses them. Safe for concurrent use.
type Saver struct {
	r       *Repository
	ctx     context.Context
	uploads chan finishedPack
	wg      sync.WaitGroup
	journal *journal

	mu        sync.Mutex
	pending   map[blob.ID]struct{}
	scratch   sync.Pool     // *[]byte for compressed blobs
	packs     *buffers.Pool // data pack buffers: one per uploader and the one filling
	packers   [2]*openPack
	unindexed []index.PackBlobs
	lastFlush time.Time
	err       error
	dead      atomic.Bool // err is set
	stats     SaverStats
}

// SaverStats counts what a Saver stored.
type SaverStats struct {
	BlobsAdded   int
	BytesAdded   int64 // plaintext bytes of new blobs
	StoredAdded  int64 // bytes uploaded: packs and index files
	PacksWritten int
}

// openPack is a pack being filled; blobs reserved in it may still be
// sealing when it becomes full, so it is sent only after they finish.
type openPack struct {
	w       *pack.Writer
	sealing sync.WaitGroup
	buf     *[]byte // from s.packs, for data packs
}

type finishedPack struct {
	data    []byte
	entries []pack.Entry
	buf     *[]byte // s.packs buffer holding data, returned after upload
}

// NewSaver starts uploaders, which use ctx. Give it a context that an
// interrupt does not cancel, so packs already built still reach storage and
// get indexed; call Flush to finish.
// With uploaders 0 the backend's preference is used (remote.Connections).
func (r *Repository) NewSaver(ctx context.Context, uploaders int) *Saver {
	if uploaders < 1 {
		uploaders = remote.Connections(r.be)
	}
	s := &Saver{
		r:         r,
		ctx:       ctx,
		uploads:   make(chan finishedPack),
		pending:   map[blob.ID]struct{}{},
		lastFlush: r.Now(),
		journal:   r.openJournal(),
	}
	// Starting a pack waits for an upload to return a buffer, so a reader
	// faster than the uploads does not pile packs up in memory.
	s.packs = buffers.NewPool(uploaders+1, s.packCap())
	for i := 0; i < uploaders; i++ {
		s.wg.Add(1)
		go s.uploader()
	}
	return s
}

// KnownAll reports whether every blob of ids is stored or being stored.
// The index answers for all of them in one batch (design.md §24: in
// sorted order, reading each block of its tables once), so checking the
// blobs of an unchanged file costs one read per block, not per blob.
func (s *Saver) KnownAll(ids []blob.ID) bool {
	return len(s.Unknown(ids)) == 0
}

// Unknown returns the blobs of ids that are neither stored nor being
// stored, asking the index in one batch as KnownAll does.
func (s *Saver) Unknown(ids []blob.ID) []blob.ID {
	missing := s.r.index.Missing(ids)
	if len(missing) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(missing, func(id blob.ID) bool {
		_, ok := s.pending[id]
		return ok
	})
}

// SaveBlob stores plaintext as a blob with the given id (from BlobID) unless
// it is known. It reports whether the blob was new. It may block while
// uploads catch up.
//
// Tree and data blobs go into packs of their own, by two protocols: a tree
// blob is small and sealed under the lock into a pack buffer that grows
// (addTree); a data blob reserves room in a fixed-size pack buffer under
// the lock and is sealed outside it, in parallel with others (reserve), and
// a full pack is sent only when every blob reserved in it is sealed.
func (s *Saver) SaveBlob(t blob.Type, id blob.ID, plaintext []byte) (bool, error) {
	if isNew, err := s.claim(id); !isNew || err != nil {
		return false, err
	}
	cbuf := s.scratchBuffer()
	payload, comp := s.r.compress(*cbuf, plaintext)
	if t == blob.Tree {
		full := s.addTree(id, comp, payload, len(plaintext))
		s.scratch.Put(cbuf)
		if full != nil {
			return true, s.send(full)
		}
		return true, nil
	}
	op, room, full, err := s.reserve(t, id, comp, len(plaintext), len(payload)+crypto.Overhead)
	if err != nil {
		s.scratch.Put(cbuf)
		return false, err
	}
	// Sealing runs outside the lock, straight into the pack's buffer.
	s.r.key.Seal(room, payload, pack.BlobAD(t, id))
	op.sealing.Done()
	if comp == pack.CompressionZstd {
		*cbuf = payload[:0] // keep the buffer compression may have grown
	}
	s.scratch.Put(cbuf)
	for _, op := range full {
		if err := s.send(op); err != nil {
			return true, err
		}
	}
	return true, nil
}

// claim marks id pending and reports whether the caller is to store it:
// not when it is stored or being stored already, nor after the saver
// failed (then with its error).
func (s *Saver) claim(id blob.ID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	if _, ok := s.pending[id]; ok || s.r.index.Has(id) {
		return false, nil
	}
	s.pending[id] = struct{}{}
	return true, nil
}

// addTree seals a tree blob into the open tree pack under the lock, and
// returns that pack when it is full, to be sent.
func (s *Saver) addTree(id blob.ID, comp uint8, payload []byte, rawLen int) *openPack {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := s.packers[blob.Tree]
	if op == nil {
		op = &openPack{w: pack.NewWriter(make([]byte, 0, 256<<10))}
		s.packers[blob.Tree] = op
	}
	sealedLen := len(payload) + crypto.Overhead
	op.w.Grow(sealedLen)
	room, _ := op.w.Reserve(blob.Tree, id, comp, rawLen, sealedLen)
	s.r.key.Seal(room, payload, pack.BlobAD(blob.Tree, id))
	s.stats.BlobsAdded++
	s.stats.BytesAdded += int64(rawLen)
	if op.w.Size() >= s.r.opts.PackSize {
		s.packers[blob.Tree] = nil
		return op
	}
	return nil
}

// reserve takes room for a sealed data blob in the open pack of type t,
// opening a pack when there is none or the blob does not fit. It returns
// the pack (counted as sealing until the caller calls op.sealing.Done),
// the room to seal into, and the packs it found full, for the caller to
// send after sealing. When every pack buffer is out, it waits for one
// without the lock, which uploaders take after each upload, and sends the
// full packs it holds first: they may be what the others wait for.
func (s *Saver) reserve(t blob.Type, id blob.ID, comp uint8, rawLen, sealedLen int) (*openPack, []byte, []*openPack, error) {
	var (
		op   *openPack
		room []byte
		full []*openPack
	)
	s.mu.Lock()
	for {
		if op = s.packers[t]; op != nil {
			var ok bool
			if room, ok = op.w.Reserve(t, id, comp, rawLen, sealedLen); ok {
				break
			}
			full, s.packers[t] = append(full, op), nil
		}
		if buf, ok := s.packs.TryGet(); ok {
			s.packers[t] = &openPack{w: pack.NewWriter(*buf), buf: buf}
			continue
		}
		s.mu.Unlock()
		for _, op := range full {
			if err := s.send(op); err != nil {
				return nil, nil, nil, err
			}
		}
		full = nil
		buf, err := s.packs.Get(s.ctx)
		if err != nil {
			s.fail(err)
			return nil, nil, nil, err
		}
		s.mu.Lock()
		if s.packers[t] != nil {
			s.packs.Put(buf) // another call opened a pack meanwhile
		} else {
			s.packers[t] = &openPack{w: pack.NewWriter(*buf), buf: buf}
		}
	}
	op.sealing.Add(1)
	if op.w.Size() >= s.r.opts.PackSize {
		full, s.packers[t] = append(full, op), nil
	}
	s.stats.BlobsAdded++
	s.stats.BytesAdded += int64(rawLen)
	s.mu.Unlock()
	return op, room, full, nil
}

// scratchBuffer returns a recycled buffer for compression output.
func (s *Saver) scratchBuffer() *[]byte {
	if b, ok := s.scratch.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// packCap is the fixed capacity of a data pack buffer: a pack never grows
// while blobs are sealed into it; a blob that does not fit starts the next
// pack. The slack keeps most packs close to PackSize.
func (s *Saver) packCap() int { return s.r.PackCap() }

// PackCap is the largest data pack this process writes (PackSize and a
// slack): a restore that reads whole packs sizes its buffers by it.
func (r *Repository) PackCap() int {
	return r.opts.PackSize + 1<<20 + 64<<10
}

func (s *Saver) send(op *openPack) error {
	op.sealing.Wait()
	data, entries := op.w.Finish(s.r.key)
	select {
	case s.uploads <- finishedPack{data: data, entries: entries, buf: op.buf}:
		return nil
	case <-s.ctx.Done():
		s.release(finishedPack{data: data, buf: op.buf})
		// The pack's blobs are marked pending but will never be stored: no
		// later blob may be deduplicated against them.
		err := fmt.Errorf("pack not uploaded: %w", s.ctx.Err())
		s.fail(err)
		return err
	}
}

func (s *Saver) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.dead.Store(true)
}

func (s *Saver) uploader() {
	defer s.wg.Done()
	for p := range s.uploads {
		if s.failed() {
			s.release(p) // drain so senders never block on a dead saver
			continue
		}
		id := blob.ID(crypto.Hash(p.data))
		if err := s.r.be.Save(s.ctx, remote.Handle{Type: remote.Data, Name: id.String()}, p.data); err != nil {
			s.release(p)
			s.fail(fmt.Errorf("upload pack %s: %w", id, err))
			continue
		}
		crashpoint.Hit(crashpoint.BackupPack)
		s.journal.add(id, len(p.data))
		s.r.index.AddPack(id, p.entries)
		size := len(p.data)
		s.release(p)
		s.mu.Lock()
		s.stats.StoredAdded += int64(size)
		s.stats.PacksWritten++
		s.unindexed = append(s.unindexed, index.PackBlobs{ID: id, Size: int64(size), Blobs: p.entries})
		due := len(s.unindexed) >= indexFlushPacks || s.r.Now().Sub(s.lastFlush) >= indexFlushEvery
		s.mu.Unlock()
		if due {
			if err := s.writeIndex(s.ctx); err != nil {
				s.fail(err)
			}
		}
	}
}

// release returns an uploaded or abandoned pack's buffer to the pool.
func (s *Saver) release(p finishedPack) {
	if p.buf != nil {
		*p.buf = p.data // the pack may have outgrown the buffer
		s.packs.Put(p.buf)
	}
}

// failed reports whether the saver has failed, without taking s.mu.
func (s *Saver) failed() bool { return s.dead.Load() }

// writeIndex stores one index file for the packs uploaded since the last one.
func (s *Saver) writeIndex(ctx context.Context) error {
	s.mu.Lock()
	packs := s.unindexed
	s.unindexed = nil
	s.lastFlush = s.r.Now()
	s.mu.Unlock()
	if len(packs) == 0 {
		return nil
	}
	data := index.Encode(&index.File{Packs: packs})
	_, err := s.r.SaveFile(ctx, remote.Index, data)
	if err != nil {
		s.mu.Lock()
		s.unindexed = append(packs, s.unindexed...)
		s.mu.Unlock()
		return fmt.Errorf("save index: %w", err)
	}
	crashpoint.Hit(crashpoint.BackupIndex)
	s.mu.Lock()
	s.stats.StoredAdded += int64(len(data)) // approximate: before compression and sealing
	s.mu.Unlock()
	return nil
}

// Flush uploads the partly filled packs, waits for every upload and writes
// the index for them, using ctx for that index. The Saver cannot be used
// afterwards.
func (s *Saver) Flush(ctx context.Context) error {
	s.mu.Lock()
	partial := s.packers
	s.packers = [2]*openPack{}
	s.mu.Unlock()
	var sendErr error
	for _, op := range partial {
		if op != nil && op.w.Count() > 0 {
			if err := s.send(op); err != nil && sendErr == nil {
				sendErr = err
			}
		}
	}
	close(s.uploads)
	s.wg.Wait()
	// Index what was uploaded even when some upload failed: those packs are
	// intact and the next run should reuse them.
	idxErr := s.writeIndex(ctx)
	if idxErr == nil {
		s.journal.finish()
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	return errors.Join(err, sendErr, idxErr)
}

// Stats returns what was stored so far.
func (s *Saver) Stats() SaverStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
