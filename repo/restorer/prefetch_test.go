package restorer

import (
	"context"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/snapshot"
	"github.com/courtbak/courtbak/testdata/gen"
)

// slowBackend answers each read after a delay, like a distant server, and
// records how many reads were in flight at most.
type slowBackend struct {
	remote.Backend
	inFlight, most atomic.Int64
}

func (s *slowBackend) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond)
	return s.Backend.Load(ctx, h, offset, length, fn)
}

// The walk through the prefetcher visits exactly what the plain walk
// visits, in the same order, while loading several trees at once.
func TestTreePrefetcherWalksTheSameTreeLoadingAhead(t *testing.T) {
	ctx := context.Background()
	_, sn, _, repoDir := BackupForTest(t, gen.Options{Seed: 12, TotalBytes: 1 << 20, SmallFiles: 300, Copies: 0})
	r, _ := reopen(t, repoDir)
	var want []string
	if err := snapshot.Walk(ctx, r, sn.Tree, func(p string, _ *snapshot.Node) error { want = append(want, p); return nil }); err != nil {
		t.Fatal(err)
	}

	be, err := remote.OpenLocal(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowBackend{Backend: be}
	rs, err := repo.Open(ctx, slow, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	slow.most.Store(0)
	p := newTreePrefetcher(ctx, rs)
	defer p.close()
	var got []string
	if err := snapshot.Walk(ctx, p, sn.Tree, func(path string, _ *snapshot.Node) error { got = append(got, path); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the walk through the prefetcher visited %d paths, the plain walk %d, or in another order", len(got), len(want))
	}
	if slow.most.Load() < 2 {
		t.Errorf("at most %d tree read in flight: nothing was loaded ahead", slow.most.Load())
	}
	t.Logf("%d paths, up to %d tree reads at once", len(got), slow.most.Load())
}
