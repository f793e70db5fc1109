package archiver_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/repo/archiver"
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
	if first.Summary.BlobsAdded < 50 {
		t.Fatalf("first backup stored only %d blobs", first.Summary.BlobsAdded)
	}
	// Only the two tree blobs whose mtimes may differ can be new; no data.
	if second.Summary.BlobsAdded > 2 || second.Summary.BytesAdded > 1<<20 {
		t.Errorf("parallel chunking stored %d new blobs (%d bytes): its chunks differ from the sequential pass", second.Summary.BlobsAdded, second.Summary.BytesAdded)
	}
}
