package restorer_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/s3test"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/repo/restorer"
	"github.com/courtbak/courtbak/testdata/gen"
)

// loadCounter counts the reads of data packs: whole objects and ranges.
type loadCounter struct {
	remote.Backend
	mu            sync.Mutex
	whole, ranged int
}

func (c *loadCounter) Load(ctx context.Context, h remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	if h.Type == remote.Data {
		c.mu.Lock()
		if offset == 0 && length == 0 {
			c.whole++
		} else {
			c.ranged++
		}
		c.mu.Unlock()
	}
	return c.Backend.Load(ctx, h, offset, length, fn)
}

func (c *loadCounter) Unwrap() remote.Backend { return c.Backend }

func (c *loadCounter) counts() (whole, ranged int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.whole, c.ranged
}

// largeReads makes a backend prefer reads of whole packs, as S3 does.
type largeReads struct{ remote.Backend }

func (largeReads) ReadSize() int64          { return 64 << 20 }
func (l largeReads) Unwrap() remote.Backend { return l.Backend }

// On S3 a restore reads a pack whole once it wants a second run of it,
// and serves the runs of the files restored at the same time, and the
// snapshot's trees, from memory: the files backed up together (their
// blobs interleave in packs) took one range read per run, most under
// 1 MiB, and a request per tree. Every file comes out byte for byte.
func TestRestoreFromS3ReadsPacksWhole(t *testing.T) {
	endpoint, _, _ := s3test.Server(t)
	s3be, err := remote.Open(context.Background(), s3test.NewBucketURL(t, endpoint), s3test.Options())
	if err != nil {
		t.Fatal(err)
	}
	counter := &loadCounter{Backend: s3be}
	r := repotest.Init(t, counter, repo.Options{})
	src := filepath.Join(t.TempDir(), "src")
	if _, err := gen.Generate(src, gen.Options{Seed: 3, TotalBytes: 48 << 20, SmallFiles: 200, Copies: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var packs int
	if err := s3be.List(ctx, remote.Data, func(remote.ObjectInfo) error { packs++; return nil }); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, res.Snapshot, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	if same, missing := repotest.CompareRestored(t, src, target); missing != 0 || same == 0 {
		t.Fatalf("%d files restored right, %d not", same, missing)
	}
	whole, ranged := counter.counts()
	t.Logf("%d packs: %d whole reads, %d range reads", packs, whole, ranged)
	if whole == 0 || whole > packs || whole+ranged > 3*packs {
		t.Fatalf("%d packs read with %d whole and %d range reads: want each pack read whole at most once, and at most three reads a pack", packs, whole, ranged)
	}
}

// A pack damaged at the primary is read whole into the cache like any
// other; its blobs fail authentication there, and are read from the
// replica one by one, so the restore still comes out whole.
func TestRestorePackCacheFailsOverDamagedBlobs(t *testing.T) {
	_, sn, src, repoDir := restorer.BackupForTest(t, gen.Options{Seed: 8, TotalBytes: 24 << 20, SmallFiles: 40, Copies: 1})
	replicaDir := filepath.Join(t.TempDir(), "replica")
	if err := os.CopyFS(replicaDir, os.DirFS(repoDir)); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
	for _, p := range packs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x10
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	primary, err := remote.OpenLocal(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := remote.OpenLocal(replicaDir)
	if err != nil {
		t.Fatal(err)
	}
	counter := &loadCounter{Backend: primary}
	fo := remote.NewFailover([]remote.Backend{largeReads{counter}, replica}, remote.FailoverOptions{})
	ctx := context.Background()
	rr, err := repo.Open(ctx, fo, repotest.Password, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rr.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, rr, sn, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	if same, missing := repotest.CompareRestored(t, src, target); missing != 0 || same == 0 {
		t.Fatalf("%d files restored right, %d not", same, missing)
	}
	if whole, _ := counter.counts(); whole == 0 {
		t.Fatal("no pack was read whole from the primary")
	}
}
