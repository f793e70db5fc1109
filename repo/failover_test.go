package repo_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/repotest"
)

// A blob damaged inside a pack at the primary is read from the replica
// however the failover backend is decorated: the repository finds the
// failover's checked reads through the Unwrap chain, so wrapping it in a
// retry, a rate limit or a fault injector does not silently turn failover
// off for damaged blobs.
func TestDamagedBlobFailsOverThroughEveryDecorator(t *testing.T) {
	ctx := context.Background()
	primaryDir, replicaDir := filepath.Join(t.TempDir(), "primary"), filepath.Join(t.TempDir(), "replica")
	primary, err := remote.OpenLocal(primaryDir)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.Init(t, primary, repo.Options{})
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	id := r.BlobID(data)
	s := r.NewSaver(ctx, 1)
	if _, err := s.SaveBlob(blob.Data, id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loc, ok := r.Index().Lookup(id)
	if !ok {
		t.Fatal("saved blob is not indexed")
	}
	if err := os.CopyFS(replicaDir, os.DirFS(primaryDir)); err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the blob at the primary: the pack is still
	// there and the range reads whole; only the blob's authentication can
	// tell.
	packPath := filepath.Join(primaryDir, "data", loc.Pack.String()[:2], loc.Pack.String())
	b, err := os.ReadFile(packPath)
	if err != nil {
		t.Fatal(err)
	}
	b[loc.Offset+100] ^= 0x40
	if err := os.WriteFile(packPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	replica, err := remote.OpenLocal(replicaDir)
	if err != nil {
		t.Fatal(err)
	}

	load := func(t *testing.T, be remote.Backend) ([]byte, error) {
		t.Helper()
		r, err := repo.Open(ctx, be, repotest.Password, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		return r.LoadBlob(ctx, blob.Data, id)
	}
	// The damage is real: the primary alone refuses the blob.
	if _, err := load(t, primary); !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("damaged blob at the primary alone: %v, want ErrDamaged", err)
	}

	decorators := map[string]func(remote.Backend) remote.Backend{
		"bare":    func(be remote.Backend) remote.Backend { return be },
		"retry":   func(be remote.Backend) remote.Backend { return remote.NewRetry(be, remote.RetryPolicy{}) },
		"limiter": func(be remote.Backend) remote.Backend { return remote.NewLimiter(be, 1<<20, 1<<20) },
		"faulty":  func(be remote.Backend) remote.Backend { return remote.NewFaulty(be, remote.FaultConfig{Seed: 1}) },
		"all": func(be remote.Backend) remote.Backend {
			return remote.NewLimiter(remote.NewRetry(remote.NewFaulty(be, remote.FaultConfig{Seed: 1}), remote.RetryPolicy{}), 1<<20, 1<<20)
		},
	}
	for name, wrap := range decorators {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var warnings []string
			fo := remote.NewFailover([]remote.Backend{primary, replica}, remote.FailoverOptions{
				Check: repo.CheckName,
				Warn:  func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() },
			})
			got, err := load(t, wrap(fo))
			if err != nil {
				t.Fatalf("blob damaged at the primary, intact at the replica: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("blob read through failover differs from what was saved")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(warnings) != 1 || !strings.Contains(warnings[0], "damaged") || !strings.Contains(warnings[0], replicaDir) {
				t.Errorf("warnings %q: want one saying the pack was damaged and read from the replica", warnings)
			}
		})
	}
}

// As finds a capability below any number of decorators, and nothing where
// no backend in the chain has it.
func TestAsLooksThroughDecorators(t *testing.T) {
	local, err := remote.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrapped := remote.NewLimiter(remote.NewRetry(remote.NewFaulty(local, remote.FaultConfig{}), remote.RetryPolicy{}), 1, 1)
	if got, ok := remote.As[*remote.Local](wrapped); !ok || got != local {
		t.Errorf("As did not find the local backend under three decorators")
	}
	if _, ok := remote.As[interface {
		CreateBucketIfMissing(context.Context) error
	}](wrapped); ok {
		t.Error("As found a bucket under a local directory")
	}
}
