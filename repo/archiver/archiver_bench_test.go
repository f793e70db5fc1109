package archiver_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/archiver"
	"github.com/courtbak/courtbak/testdata/gen"
)

var cheapKDF = crypto.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// newRepo creates a repository in a temporary directory.
func newRepo(tb testing.TB) *repo.Repository {
	tb.Helper()
	be, err := remote.OpenLocal(filepath.Join(tb.TempDir(), "repo"))
	if err != nil {
		tb.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, []byte("pw"), repo.InitOptions{KDF: cheapKDF}, repo.Options{})
	if err != nil {
		tb.Fatal(err)
	}
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
