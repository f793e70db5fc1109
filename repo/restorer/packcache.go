package restorer

import (
	"context"
	"math"
	"sync"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// On object storage a restore is bound by requests, not bytes. A backup
// stores several files at once, so their blobs interleave in packs, and
// the runs of one file that lie back to back in a pack are short: a 1 GB
// restore from S3 made 1,568 range reads of 60 packs, most under 1 MiB,
// and the server worked several times harder than for whole packs. Where
// storage prefers large reads (remote.ReadSize), a restore reads a pack
// whole once a second run of it is wanted, and keeps the last few such
// packs: the files restored at the same time were mostly backed up at the
// same time, into the same packs, and read their runs from memory. A pack
// only one run is wanted from costs one range read, as before.
const (
	// cachePacks is how many whole packs a restore holds at most.
	cachePacks = 6
	// maxSeen bounds the packs remembered as read once; past it they are
	// forgotten, so such a pack may cost one more range read.
	maxSeen = 1 << 16
)

// seen is what a restore has read of a pack so far: one range, or the
// whole pack (which may have left the cache since) and its size.
type seen struct {
	whole bool
	size  int
}

// smallPack is the largest pack that is read whole again after it left
// the cache: a snapshot's trees lie in packs of a few hundred KiB that
// the walk reads from throughout, while reading a large pack again for a
// few runs would fetch much more than they need.
const smallPack = 4 << 20

// packCache holds whole packs read for a restore. Its memory is
// cachePacks pack buffers (PackCap each), on top of the fetcher's budget.
type packCache struct {
	r    *repo.Repository
	bufs *buffers.List
	// smallPack is the largest pack read whole again (smallPack; tests
	// lower it).
	smallPack int

	mu    sync.Mutex
	freed *sync.Cond // signalled when a pack's last user is done
	seen  map[blob.ID]seen
	packs map[blob.ID]*cachedPack
	clock uint64 // counts uses, for cachedPack.used
}

// cachedPack is a pack being read or read. data and err are set before
// ready is closed; refs (under packCache.mu) counts its users.
type cachedPack struct {
	ready chan struct{}
	data  []byte
	buf   *[]byte
	err   error
	refs  int
	used  uint64 // packCache.clock at its last use
}

// newPackCache returns a cache for r, or nil where its storage does not
// prefer reads of a whole pack.
func newPackCache(r *repo.Repository) *packCache {
	size := r.PackCap()
	if remote.ReadSize(r.Backend()) < int64(size) {
		return nil
	}
	c := &packCache{r: r, bufs: buffers.New(cachePacks, size), smallPack: smallPack, seen: map[blob.ID]seen{}, packs: map[blob.ID]*cachedPack{}}
	c.freed = sync.NewCond(&c.mu)
	return c
}

// loadRun is repo.LoadRun, from a cached pack where one is or should be.
func (c *packCache) loadRun(ctx context.Context, run []index.Location, buf []byte) ([][]byte, error) {
	size, err := repo.RunSize(run)
	if err != nil || size == 0 {
		return nil, err
	}
	raw := buf
	if int64(cap(raw)) < size {
		raw = make([]byte, size)
	}
	raw = raw[:size]
	if ok, err := c.copyOut(ctx, run[0].Pack, int64(run[0].Offset), raw); err != nil {
		return nil, err
	} else if !ok {
		return c.r.LoadRun(ctx, run, buf)
	}
	return c.r.OpenRun(ctx, run, raw)
}

// LoadTree loads a tree blob from a cached pack where one is or should be,
// else (and should it fail authentication or decoding) as r.LoadTree does:
// a snapshot's trees lie together in a few packs, and a restore read them
// one request each (1,038 for a 1 GB restore of 3,000 files).
func (c *packCache) LoadTree(ctx context.Context, id blob.ID) (*snapshot.Tree, error) {
	loc, ok := c.r.Index().Lookup(id)
	if !ok || loc.Type != blob.Tree {
		return c.r.LoadTree(ctx, id)
	}
	sealed := make([]byte, loc.Length)
	if ok, err := c.copyOut(ctx, loc.Pack, int64(loc.Offset), sealed); err != nil {
		return nil, err
	} else if !ok {
		return c.r.LoadTree(ctx, id)
	}
	plain, err := c.r.OpenBlob(loc, sealed)
	if err != nil {
		return c.r.LoadTree(ctx, id)
	}
	t, err := snapshot.DecodeTree(plain)
	if err != nil {
		return c.r.LoadTree(ctx, id)
	}
	return t, nil
}

// copyOut fills dst from pack at offset out of the cache, reading the pack
// whole first if it should be cached. It reports false where the caller
// must read for itself: the first time a pack is asked for (a run that is
// all a restore wants of its pack is read alone), or when the pack could
// not be read whole (too large for the buffer, say) or is shorter than
// the index says, which a read of the range itself reports properly or
// gets from another copy.
func (c *packCache) copyOut(ctx context.Context, pack blob.ID, offset int64, dst []byte) (bool, error) {
	p, load := c.acquire(pack)
	if p == nil {
		return false, nil
	}
	defer c.release(pack, p)
	if load {
		c.load(ctx, pack, p)
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if p.err != nil || offset+int64(len(dst)) > int64(len(p.data)) {
		return false, nil
	}
	copy(dst, p.data[offset:])
	return true, nil
}

// acquire returns the cached pack and takes a reference to it; with load
// set, the caller must read it. It returns nil the first time a pack is
// asked for: a run that is all a restore wants of its pack is read alone.
func (c *packCache) acquire(pack blob.ID) (p *cachedPack, load bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock++
	if p := c.packs[pack]; p != nil {
		p.refs++
		p.used = c.clock
		return p, false
	}
	s, ok := c.seen[pack]
	switch {
	case !ok:
		if len(c.seen) >= maxSeen {
			clear(c.seen)
		}
		c.seen[pack] = seen{}
		return nil, false
	case s.whole && s.size > c.smallPack:
		return nil, false
	}
	// Users hold a pack only while they copy a run out of it or wait for
	// it to arrive, so a full cache frees a place soon.
	for len(c.packs) >= cachePacks && !c.evict() {
		c.freed.Wait()
	}
	p = &cachedPack{ready: make(chan struct{}), refs: 1, used: c.clock}
	c.packs[pack] = p
	return p, true
}

// load reads pack whole into p.
func (c *packCache) load(ctx context.Context, pack blob.ID, p *cachedPack) {
	defer close(p.ready)
	p.buf = c.bufs.Get()
	h := remote.Handle{Type: remote.Data, Name: pack.String()}
	p.data, p.err = remote.ReadObjectInto(ctx, c.r.Backend(), h, (*p.buf)[:0])
	s := seen{whole: true, size: len(p.data)}
	if p.err != nil {
		// Not again whole: a pack larger than the buffer would be read
		// up to its size and dropped for every run.
		s.size = math.MaxInt
	}
	c.mu.Lock()
	c.seen[pack] = s
	c.mu.Unlock()
}

// release drops a reference; a pack that could not be read leaves the
// cache with its last user.
func (c *packCache) release(pack blob.ID, p *cachedPack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.refs--
	if p.refs > 0 {
		return
	}
	if p.err != nil && c.packs[pack] == p {
		c.drop(pack)
	}
	c.freed.Broadcast()
}

// evict drops the least recently used pack nobody holds; it reports
// whether there was one.
func (c *packCache) evict() bool {
	var (
		oldest blob.ID
		found  bool
	)
	for id, p := range c.packs {
		if p.refs == 0 && (!found || p.used < c.packs[oldest].used) {
			oldest, found = id, true
		}
	}
	if found {
		c.drop(oldest)
	}
	return found
}

// drop removes pack from the cache and recycles its buffer. Its users
// are done with it.
func (c *packCache) drop(pack blob.ID) {
	p := c.packs[pack]
	delete(c.packs, pack)
	if p.buf != nil {
		c.bufs.Put(p.buf)
	}
}
