package restorer

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/buffers"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/testdata/gen"
)

// wholeCounter prefers whole-pack reads, as S3 does, and counts them.
type wholeCounter struct {
	remote.Backend
	whole atomic.Int64
}

func (w *wholeCounter) ReadSize() int64 { return 64 << 20 }

func (w *wholeCounter) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if h.Type == remote.Data && offset == 0 && length == 0 {
		w.whole.Add(1)
	}
	return w.Backend.Load(ctx, h, offset, length, fn)
}

// The cache's rules, pack by pack: the first run of a pack is left to a
// range read; the second reads the pack whole, and later ones come from
// memory; of the packs that left the cache (six newer ones came), a small
// one is read whole again and a large one is left to range reads. What
// comes out of the cache is the pack's stored bytes.
func TestPackCacheRules(t *testing.T) {
	ctx := context.Background()
	be := &wholeCounter{Backend: mem.New(nil)}
	r := repotest.Init(t, be, repo.Options{PackSize: 2 << 20})
	src := filepath.Join(t.TempDir(), "src")
	if _, err := gen.Generate(src, gen.Options{Seed: 4, TotalBytes: 48 << 20, SmallFiles: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h"}); err != nil {
		t.Fatal(err)
	}
	type at struct {
		pack   blob.ID
		offset int64
		length int
	}
	sizes := map[blob.ID]int64{}
	if err := be.List(ctx, remote.Data, func(fi remote.ObjectInfo) error {
		id, err := blob.ParseID(fi.Name)
		sizes[id] = fi.Size
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var packs []at
	for id, entries := range r.Index().Packs() {
		// Packs larger than the cache's buffers (a single large chunk)
		// are tried below with buffers made small.
		if sizes[id] <= int64(r.PackCap()) {
			e := entries[len(entries)-1]
			packs = append(packs, at{id, int64(e.Offset), int(e.Length)})
		}
	}
	// The smallest pack first, the largest second.
	slices.SortFunc(packs, func(a, b at) int { return cmp.Compare(sizes[a.pack], sizes[b.pack]) })
	packs[1], packs[len(packs)-1] = packs[len(packs)-1], packs[1]
	if len(packs) < cachePacks+2 {
		t.Fatalf("%d packs, want at least %d", len(packs), cachePacks+2)
	}
	c := newPackCache(r)
	if c == nil {
		t.Fatal("no pack cache where storage prefers large reads")
	}
	copyOut := func(c *packCache, p at) bool {
		t.Helper()
		dst := make([]byte, p.length)
		ok, err := c.copyOut(ctx, p.pack, p.offset, dst)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			want, err := remote.ReadRange(ctx, be.Backend, remote.Handle{Type: remote.Data, Name: p.pack.String()}, p.offset, int64(p.length))
			if err != nil || !bytes.Equal(dst, want) {
				t.Fatalf("pack %s at %d out of the cache differs from storage (%v)", p.pack.Short(), p.offset, err)
			}
		}
		return ok
	}
	wholeReads := func(want int64) {
		t.Helper()
		if got := be.whole.Load(); got != want {
			t.Fatalf("%d whole reads, want %d", got, want)
		}
	}

	small, large := packs[0], packs[1]
	for _, p := range []at{small, large} {
		if copyOut(c, p) {
			t.Fatal("the first run of a pack came from the cache")
		}
	}
	wholeReads(0)
	for range 2 {
		for _, p := range []at{small, large} {
			if !copyOut(c, p) {
				t.Fatal("a run of a pack read twice did not come from the cache")
			}
		}
	}
	wholeReads(2)
	// Six newer packs push both out.
	for _, p := range packs[2 : 2+cachePacks] {
		copyOut(c, p)
		copyOut(c, p)
	}
	wholeReads(2 + cachePacks)
	if sizes[small.pack] >= sizes[large.pack] {
		t.Fatalf("packs of %d and %d bytes: want two sizes", sizes[small.pack], sizes[large.pack])
	}
	c.smallPack = int(sizes[small.pack])
	if !copyOut(c, small) {
		t.Fatal("a small pack that left the cache was not read whole again")
	}
	wholeReads(3 + cachePacks)
	if copyOut(c, large) {
		t.Fatal("a large pack that left the cache was read whole again")
	}
	wholeReads(3 + cachePacks)

	// A pack too large for the buffers is tried whole once, then left to
	// range reads.
	c = newPackCache(r)
	c.bufs = buffers.New(cachePacks, int(sizes[large.pack])-1)
	for i := range 3 {
		if copyOut(c, large) {
			t.Fatalf("read %d of a pack larger than the buffers came from the cache", i+1)
		}
	}
	wholeReads(4 + cachePacks)
}
