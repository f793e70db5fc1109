package repo_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/internal/cputime"
	"github.com/courtbak/courtbak/repo/pack"
)

// BenchmarkStartupWarm1M measures what a command pays to load the index of
// a repository with a million blobs (in 1000 index files of 64 packs)
// when the host's tables are up to date: list index/, read the manifest,
// open the tables. ns/op is one such start-up; heap-bytes/blob is the heap
// it leaves behind, divided by the blobs. The cold start (building the
// tables from every index file) is reported once as cold-ms.
func BenchmarkStartupWarm1M(b *testing.B) {
	local, err := remote.OpenLocal(filepath.Join(b.TempDir(), "repo"))
	if err != nil {
		b.Fatal(err)
	}
	benchStartup(b, local, 1000, 64, 16)
}

// BenchmarkStartupWarm100K is the start-up of a repository with 10^5
// index files (about 10^8 blobs in 64 packs of 16 between prunes, here
// one pack of 16 blobs each, as the blobs' number does not matter to a
// warm start). The repository is in memory, as writing 10^5 files with a
// sync each takes minutes here: the listing of a real backend comes on
// top (a directory of 10^5 files, or 100 LIST requests on S3).
// heap-bytes/file is the heap left behind per index file.
func BenchmarkStartupWarm100K(b *testing.B) {
	benchStartup(b, freshNames{mem.New(nil)}, 100_000, 1, 16)
}

// freshNames lists names in new strings, as a real backend does (the
// memory backend hands out the strings it keeps, which would make names
// kept by a start-up look free).
type freshNames struct{ remote.Backend }

func (b freshNames) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	return b.Backend.List(ctx, t, func(fi remote.ObjectInfo) error {
		fi.Name = strings.Clone(fi.Name)
		return fn(fi)
	})
}

func benchStartup(b *testing.B, be remote.Backend, files, packsPerFile, blobsPerPack int) {
	ctx := context.Background()
	opts := repo.Options{CacheDir: b.TempDir()}
	kdf := crypto.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
	r, err := repo.Init(ctx, be, []byte("pw"), repo.InitOptions{KDF: kdf}, opts)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	randID := func() (id blob.ID) {
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	var probe blob.ID
	for range files {
		f := &index.File{}
		for range packsPerFile {
			p := index.PackBlobs{ID: randID(), Size: 16 << 20}
			var off uint32
			for range blobsPerPack {
				e := pack.Entry{ID: randID(), Offset: off, Length: 1 << 20, RawLength: 1<<20 - crypto.Overhead}
				off += e.Length
				p.Blobs = append(p.Blobs, e)
			}
			probe = p.Blobs[0].ID
			f.Packs = append(f.Packs, p)
		}
		if _, err := r.SaveFile(ctx, remote.Index, index.Encode(f)); err != nil {
			b.Fatal(err)
		}
	}
	open := func() *repo.Repository {
		r, err := repo.Open(ctx, be, []byte("pw"), opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.LoadIndex(ctx); err != nil {
			b.Fatal(err)
		}
		if !r.Index().Has(probe) {
			b.Fatal("a stored blob is not found")
		}
		return r
	}
	start := time.Now()
	open()
	cold := time.Since(start)
	cpu := cputime.Process()
	for b.Loop() {
		open()
	}
	cpu = cputime.Process() - cpu
	// The heap one warm start leaves behind while its repository is open.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	keep := open()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	n := files * packsPerFile * blobsPerPack
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-bytes/blob")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(files), "heap-bytes/file")
	b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}
