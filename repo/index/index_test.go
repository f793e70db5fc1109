package index

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

// refIndex is the obvious map-based index the compact one must match.
type refIndex struct {
	packs []blob.ID
	known map[blob.ID]bool
	blobs map[blob.ID]Location
}

func newRef() *refIndex {
	return &refIndex{known: map[blob.ID]bool{}, blobs: map[blob.ID]Location{}}
}

func (r *refIndex) addPack(id blob.ID, es []pack.Entry) {
	if !r.known[id] {
		r.known[id] = true
		r.packs = append(r.packs, id)
	}
	for _, e := range es {
		if _, dup := r.blobs[e.ID]; !dup {
			r.blobs[e.ID] = Location{Pack: id, Entry: e}
		}
	}
}

func (r *refIndex) packMap() map[blob.ID][]pack.Entry {
	out := map[blob.ID][]pack.Entry{}
	for _, p := range r.packs {
		out[p] = nil
	}
	for _, l := range r.blobs {
		out[l.Pack] = append(out[l.Pack], l.Entry)
	}
	for _, es := range out {
		slices.SortFunc(es, func(a, b pack.Entry) int {
			if a.Offset != b.Offset {
				return int(int64(a.Offset) - int64(b.Offset))
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
	}
	return out
}

func randID(rng *rand.Rand) blob.ID {
	var id blob.ID
	for i := 0; i < 32; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			id[i+k] = byte(v >> (8 * k))
		}
	}
	return id
}

// gen makes packs like a repository has, and some that no writer makes but
// the index must still hold exactly.
type gen struct {
	rng  *rand.Rand
	seen []blob.ID
}

func (g *gen) pack() (blob.ID, []pack.Entry) {
	n := 1 + g.rng.IntN(20)
	var off uint32
	if g.rng.IntN(20) == 0 {
		off = uint32(g.rng.IntN(1000)) // a pack that does not start at 0
	}
	es := make([]pack.Entry, 0, n)
	for range n {
		e := pack.Entry{Type: blob.Type(g.rng.IntN(2)), ID: randID(g.rng), Offset: off}
		if len(g.seen) > 0 && g.rng.IntN(10) == 0 {
			e.ID = g.seen[g.rng.IntN(len(g.seen))] // stored elsewhere already
		}
		e.Length = sealOverhead + uint32(g.rng.IntN(8<<20))
		e.RawLength = e.Length - sealOverhead
		if g.rng.IntN(3) == 0 {
			e.Compression = pack.CompressionZstd
			e.RawLength = uint32(g.rng.IntN(1 << 22))
		}
		switch g.rng.IntN(60) {
		case 0:
			e.Type = 7
		case 1:
			e.Compression = 9
		case 2:
			e.RawLength++ // uncompressed, but not sealed length minus overhead
			e.Compression = pack.CompressionNone
		case 3:
			e.Length = 3
		case 4:
			if len(es) > 0 {
				e.Offset = es[len(es)-1].Offset // overlaps the previous blob
			}
		case 5:
			if len(es) > 0 {
				e.ID = es[len(es)-1].ID // twice in one pack
			}
		case 6:
			off += uint32(g.rng.IntN(100)) // a gap
			e.Offset = off
		}
		es = append(es, e)
		off = e.Offset + e.Length
		g.seen = append(g.seen, e.ID)
	}
	g.rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	return randID(g.rng), es
}

// withParams runs f with the merge and layout thresholds set low, so that
// small tests reach every state.
func withParams(t *testing.T, min, sub int, f func()) {
	t.Helper()
	oldMin, oldSub := mergeMin, subKeysMin
	mergeMin, subKeysMin = min, sub
	defer func() { mergeMin, subKeysMin = oldMin, oldSub }()
	f()
}

func checkSame(t *testing.T, x *Index, ref *refIndex, rng *rand.Rand) {
	t.Helper()
	// Packs first: it must not see ids that pending keys repeat.
	if got, want := x.Packs(), ref.packMap(); !reflect.DeepEqual(got, want) {
		for p, es := range want {
			if !reflect.DeepEqual(got[p], es) {
				t.Fatalf("Packs()[%s] = %+v, want %+v", p.Short(), got[p], es)
			}
		}
		t.Fatalf("Packs() has %d packs, want %d", len(got), len(want))
	}
	if x.Len() != len(ref.blobs) {
		t.Fatalf("Len %d, want %d", x.Len(), len(ref.blobs))
	}
	for id, want := range ref.blobs {
		if !x.Has(id) {
			t.Fatalf("Has(%s) = false", id.Short())
		}
		got, ok := x.Lookup(id)
		if !ok || got != want {
			t.Fatalf("Lookup(%s) = %+v %v, want %+v", id.Short(), got, ok, want)
		}
	}
	for range 2000 {
		id := randID(rng)
		if _, in := ref.blobs[id]; in {
			continue
		}
		if x.Has(id) {
			t.Fatalf("Has(%s) = true for an id never added", id.Short())
		}
		if _, ok := x.Lookup(id); ok {
			t.Fatalf("Lookup(%s) found an id never added", id.Short())
		}
	}
	// Ids differing from stored ones in one byte only, so searches end
	// inside the same buckets.
	n := 0
	for id := range ref.blobs {
		for _, pos := range []int{0, 1, 2, 3, 17, 31} {
			m := id
			m[pos] ^= 1 << uint(n%8)
			if _, in := ref.blobs[m]; !in && x.Has(m) {
				t.Fatalf("Has = true for %s, a neighbour of a stored id", m.Short())
			}
		}
		if n++; n > 500 {
			break
		}
	}
	// Batches: every stored id, some twice, and unknown ones.
	var batch, unknown []blob.ID
	for id := range ref.blobs {
		batch = append(batch, id)
	}
	batch = append(batch, batch[:min(10, len(batch))]...)
	for range 20 {
		id := randID(rng)
		unknown = append(unknown, id)
		batch = append(batch, id)
	}
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	miss := x.Missing(batch)
	slices.SortFunc(miss, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	slices.SortFunc(unknown, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(miss, unknown) {
		t.Fatalf("Missing returned %d ids, want the %d unknown ones", len(miss), len(unknown))
	}
	locs, at := x.LookupAll(batch)
	if at < 0 || !slices.Contains(unknown, batch[at]) {
		t.Fatalf("LookupAll reported position %d as missing", at)
	}
	for i, id := range batch {
		if want, ok := ref.blobs[id]; ok && locs[i] != want {
			t.Fatalf("LookupAll[%d] = %+v, want %+v", i, locs[i], want)
		}
	}
	if _, at := x.LookupAll(slices.DeleteFunc(batch, func(id blob.ID) bool { return slices.Contains(unknown, id) })); at != -1 {
		t.Fatalf("LookupAll of stored ids reported position %d as missing", at)
	}
	if !reflect.DeepEqual(x.PackIDs(), ref.packs) {
		t.Fatalf("PackIDs differ: %d packs, want %d", len(x.PackIDs()), len(ref.packs))
	}
}

func TestMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mergeMin  int
		subKeysMn int
	}{
		{"no merges", 1 << 30, 1 << 30},
		{"merges, two-byte directory", 64, 1 << 30},
		{"merges, three-byte directory", 512, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withParams(t, tc.mergeMin, tc.subKeysMn, func() {
				rng := rand.New(rand.NewPCG(1, uint64(tc.mergeMin)))
				g := &gen{rng: rng}
				x, ref := New(), newRef()
				for step := range 6 {
					for range 150 + step*150 {
						id, es := g.pack()
						if rng.IntN(30) == 0 && len(ref.packs) > 0 {
							id = ref.packs[rng.IntN(len(ref.packs))] // indexed again
						}
						if rng.IntN(2) == 0 {
							x.AddPack(id, es)
						} else {
							x.AddFile(&File{Packs: []PackBlobs{{ID: id, Blobs: es}}})
						}
						ref.addPack(id, es)
					}
					checkSame(t, x, ref, rng)
				}
			})
		})
	}
}

func TestDuplicatesKeepFirstLocation(t *testing.T) {
	withParams(t, 2, 1<<30, func() {
		x := New()
		rng := rand.New(rand.NewPCG(2, 2))
		a, b, c := randID(rng), randID(rng), randID(rng)
		shared := randID(rng)
		other := randID(rng)
		e := func(id blob.ID, off uint32) pack.Entry {
			return pack.Entry{ID: id, Offset: off, Length: 1000, RawLength: 1000 - sealOverhead}
		}
		x.AddPack(a, []pack.Entry{e(other, 0), e(shared, 1000)})
		x.AddPack(b, []pack.Entry{e(shared, 0)})
		// Twice in one pack: the first listed wins, even at a later offset.
		dup := randID(rng)
		x.AddPack(c, []pack.Entry{e(dup, 1000), e(dup, 0)})
		for _, tc := range []struct {
			id   blob.ID
			pack blob.ID
			off  uint32
		}{{shared, a, 1000}, {other, a, 0}, {dup, c, 1000}} {
			loc, ok := x.Lookup(tc.id)
			if !ok || loc.Pack != tc.pack || loc.Offset != tc.off || loc.ID != tc.id {
				t.Fatalf("Lookup(%s) = %+v %v, want pack %s offset %d", tc.id.Short(), loc, ok, tc.pack.Short(), tc.off)
			}
		}
		if x.Len() != 3 {
			t.Fatalf("Len = %d, want 3", x.Len())
		}
		if es := x.Packs()[b]; len(es) != 0 {
			t.Fatalf("pack b lists %d blobs, want none (its only blob is kept in a)", len(es))
		}
	})
}

func TestLargeOffsetsWidenRecords(t *testing.T) {
	x := New()
	rng := rand.New(rand.NewPCG(3, 3))
	small := randID(rng)
	x.AddPack(randID(rng), []pack.Entry{{ID: small, Length: 100, RawLength: 100 - sealOverhead}})
	big := randID(rng)
	p := randID(rng)
	x.AddPack(p, []pack.Entry{{ID: big, Offset: 1<<32 - 1000, Length: 1<<32 - 1, RawLength: 1<<32 - 1 - sealOverhead}})
	loc, ok := x.Lookup(big)
	if !ok || loc.Pack != p || loc.Offset != 1<<32-1000 || loc.Length != 1<<32-1 {
		t.Fatalf("Lookup = %+v %v", loc, ok)
	}
	if loc, ok := x.Lookup(small); !ok || loc.Length != 100 {
		t.Fatalf("Lookup(small) = %+v %v after widening", loc, ok)
	}
}

// TestConcurrentAddAndQuery runs writers and readers together (run it with
// -race): a blob is found as soon as AddPack returns, and never with a
// wrong location.
func TestConcurrentAddAndQuery(t *testing.T) {
	withParams(t, 64, 1<<30, func() {
		const writers, packsPerWriter = 4, 300
		type added struct {
			id  blob.ID
			loc Location
		}
		var (
			mu   sync.Mutex
			done []added
			stop atomic.Bool
			wg   sync.WaitGroup
		)
		x := New()
		errs := make(chan error, 16)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 9))
				for range packsPerWriter {
					pid := randID(rng)
					var es []pack.Entry
					var off uint32
					for range 1 + rng.IntN(12) {
						e := pack.Entry{ID: randID(rng), Offset: off, Length: 5000, RawLength: 5000 - sealOverhead}
						es = append(es, e)
						off += e.Length
					}
					x.AddPack(pid, es)
					for _, e := range es {
						if !x.Has(e.ID) {
							errs <- fmt.Errorf("blob %s not found right after AddPack", e.ID.Short())
							return
						}
					}
					mu.Lock()
					for _, e := range es {
						done = append(done, added{e.ID, Location{Pack: pid, Entry: e}})
					}
					mu.Unlock()
				}
			}()
		}
		var rwg sync.WaitGroup
		for r := range 4 {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 10))
				for !stop.Load() {
					mu.Lock()
					n := len(done)
					var a added
					if n > 0 {
						a = done[rng.IntN(n)]
					}
					mu.Unlock()
					if n == 0 {
						continue
					}
					if loc, ok := x.Lookup(a.id); !ok || loc != a.loc {
						errs <- fmt.Errorf("Lookup(%s) = %+v %v, want %+v", a.id.Short(), loc, ok, a.loc)
						return
					}
					if x.Has(randID(rng)) {
						errs <- fmt.Errorf("Has = true for a random id")
						return
					}
					_ = x.Len()
				}
			}()
		}
		wg.Wait()
		stop.Store(true)
		rwg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if x.Len() != len(done) {
			t.Fatalf("Len = %d, want %d", x.Len(), len(done))
		}
	})
}

func TestSelectZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	words := make([]uint64, 40)
	for i := range words {
		words[i] = rng.Uint64() & rng.Uint64() // more zeros than ones
	}
	for range 2000 {
		pos := rng.IntN(64 * 20)
		k := rng.IntN(200)
		want, seen := -1, 0
		for p := pos; p < 64*len(words); p++ {
			if words[p>>6]>>uint(p&63)&1 == 0 {
				if seen == k {
					want = p
					break
				}
				seen++
			}
		}
		if want < 0 {
			continue
		}
		if got := selectZero(words, pos, k); got != want {
			t.Fatalf("selectZero(%d, %d) = %d, want %d", pos, k, got, want)
		}
	}
}

func TestRankBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var r rankBits
	var want []int
	ones := 0
	for i := 0; i < 3*pageLen+777; i++ {
		want = append(want, ones)
		b := rng.IntN(3) == 0
		r.append(b)
		if b {
			ones++
		}
	}
	want = append(want, ones)
	for i, w := range want {
		if got := r.rank(i); got != w {
			t.Fatalf("rank(%d) = %d, want %d", i, got, w)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	g := &gen{rng: rng}
	f := &File{Supersedes: []blob.ID{randID(rng)}}
	for range 3 {
		id, es := g.pack()
		for i := range es {
			es[i].Type %= 2
			es[i].Compression %= 2
		}
		f.Packs = append(f.Packs, PackBlobs{ID: id, Blobs: es})
	}
	got, err := Decode(Encode(f))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip differs")
	}
}

// An Index can be the base of another (prune checks a repository's index
// against the files in effect this way): batches go through both.
func TestIndexAsBaseAnswersBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	g := &gen{rng: rng}
	base, top := New(), New()
	refBase, refTop := newRef(), newRef()
	for range 50 {
		id, es := g.pack()
		base.AddPack(id, es)
		refBase.addPack(id, es)
	}
	for range 50 {
		id, es := g.pack()
		top.AddPack(id, es)
		refTop.addPack(id, es)
	}
	top.SetBase(base)
	want := refBase.blobs // the top's location wins where both hold a blob
	for id, loc := range refTop.blobs {
		want[id] = loc
	}
	var ids []blob.ID
	for id := range want {
		ids = append(ids, id)
	}
	unknown := randID(rng)
	if miss := top.Missing(append(ids, unknown)); len(miss) != 1 || miss[0] != unknown {
		t.Fatalf("Missing = %d ids, want the unknown one", len(miss))
	}
	locs, at := top.LookupAll(ids)
	if at != -1 {
		t.Fatalf("LookupAll: position %d not found", at)
	}
	for i, id := range ids {
		if locs[i] != want[id] {
			t.Fatalf("LookupAll[%d] = %+v, want %+v", i, locs[i], want[id])
		}
	}
}
