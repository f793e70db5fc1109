package restorer_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/testdata/gen"
)

// slowDown is an S3 503 SlowDown answer as the SDK reports its status.
type slowDown struct{}

func (slowDown) Error() string       { return "api error SlowDown: Please reduce your request rate" }
func (slowDown) HTTPStatusCode() int { return 503 }

// busyServer answers 503 SlowDown to every fourth Load and delays the
// others a little, as a server past its capacity does.
type busyServer struct {
	remote.Backend
	mu    sync.Mutex
	calls int
}

func (b *busyServer) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	b.mu.Lock()
	b.calls++
	busy := b.calls%4 == 0
	b.mu.Unlock()
	if busy {
		return slowDown{}
	}
	time.Sleep(time.Millisecond)
	return b.Backend.Load(ctx, h, offset, length, fn)
}

// A restore through the adaptive limit from a server answering 503 to a
// quarter of the reads (with the pack cache, as on S3) comes out byte for
// byte; the limit fell, and every slot is given back, also by a restore
// cancelled part way.
func TestRestoreThroughAdaptiveLimitUnder503s(t *testing.T) {
	ctx := context.Background()
	_, sn, src, repoDir := restorer.BackupForTest(t, gen.Options{Seed: 5, TotalBytes: 24 << 20, SmallFiles: 60, Copies: 1})
	local, err := remote.OpenLocal(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	retry := remote.NewRetry(&busyServer{Backend: local}, remote.RetryPolicy{
		MaxAttempts: 20,
		Sleep:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	limit := remote.NewAdaptive(retry, remote.AdaptivePolicy{})
	r, err := repo.Open(ctx, largeReads{limit}, repotest.Password, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithCancel(ctx)
	_, err = restorer.Restore(cctx, r, sn, restorer.Options{Target: t.TempDir(), OnBytes: func(int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: %v", err)
	}
	if st := limit.Stats(); st.InFlight != 0 {
		t.Fatalf("after a cancelled restore: %+v, want nothing in flight", st)
	}

	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, sn, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	if same, missing := repotest.CompareRestored(t, src, target); missing != 0 || same == 0 {
		t.Fatalf("%d files restored right, %d not", same, missing)
	}
	if st := limit.Stats(); st.Drops == 0 || st.InFlight != 0 || st.Limit < 2 || st.Limit > 32 {
		t.Fatalf("after the restore: %+v, want drops, nothing in flight, a limit in [2, 32]", st)
	}
}
