package archiver_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/testdata/gen"
)

// A large recording backed up with the parallel chunker (many workers)
// after a sequential backup must find every chunk already stored: the
// parallel pass cuts exactly where the sequential one did.
func TestParallelChunkingDeduplicatesAgainstSequential(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	if err := gen.WriteMedia(filepath.Join(src, "hearing.mp4"), 96<<20, 5); err != nil {
		t.Fatal(err)
	}
	r := newRepo(t)
	first, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// No parent: the file is read and chunked again, on 4 workers.
	second, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h", Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if second.Summary.FilesNew != 1 {
		t.Fatalf("second backup did not re-read the file: %+v", second.Summary)
	}
	// Many chunks, so that the workers cut in parallel. The count varies
	// with each repository's random chunker polynomial: 96 MiB at a 1 MiB
	// average gave 48 in one run, so the bound leaves room.
	if first.Summary.BlobsAdded < 24 {
		t.Fatalf("first backup stored only %d blobs", first.Summary.BlobsAdded)
	}
	// Only the two tree blobs whose mtimes may differ can be new; no data.
	if second.Summary.BlobsAdded > 2 || second.Summary.BytesAdded > 1<<20 {
		t.Errorf("parallel chunking stored %d new blobs (%d bytes): its chunks differ from the sequential pass", second.Summary.BlobsAdded, second.Summary.BytesAdded)
	}
}

// Uploads that fail slowly, while the reader outruns them and blob workers
// wait for a pack buffer, end the backup with the upload's error: no
// deadlock between the workers waiting for buffers and the uploader that
// returns them, and no snapshot.
func TestFailingUploadsEndTheBackup(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	if err := gen.WriteMedia(filepath.Join(src, "hearing.mp4"), 80<<20, 9); err != nil {
		t.Fatal(err)
	}
	local, err := remote.OpenLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	faulty := remote.NewFaulty(local, remote.FaultConfig{Seed: 3})
	r := repotest.Init(t, faulty, repo.Options{})
	faulty.SetFaults(remote.FaultConfig{Seed: 3, FailRate: 1, DelayRate: 1, Delay: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := archiver.Run(ctx, ctx, r, archiver.Options{Paths: []string{src}, Host: "h", Workers: 2})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the backup did not end after its uploads failed")
	}
	if !errors.Is(err, remote.ErrInjected) {
		t.Fatalf("backup error %v, want the injected upload failure", err)
	}
	n := 0
	if err := local.List(ctx, remote.Snapshot, func(remote.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a failed backup stored %d snapshots", n)
	}
}
