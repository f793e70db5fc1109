package archiver_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/repo/repotest"
	"github.com/courtbak/courtbak/testdata/gen"
)

// newRepo creates a repository in a temporary directory: the benchmarks
// measure the pipeline against a real disk.
func newRepo(tb testing.TB) *repo.Repository {
	tb.Helper()
	r, _ := repotest.NewLocal(tb, repo.Options{})
	return r
}

// BenchmarkBackupLargeFile measures the first backup of one large,
// incompressible recording: the pipeline against the chunker's limit.
func BenchmarkBackupLargeFile(b *testing.B) {
	src := b.TempDir()
	const size = 256 << 20
	if err := gen.WriteMedia(filepath.Join(src, "hearing.mp4"), size, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRepo(b)
		b.StartTimer()
		if _, err := archiver.Run(context.Background(), context.Background(), r, archiver.Options{Paths: []string{src}, Host: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
