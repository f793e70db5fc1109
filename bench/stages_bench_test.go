// Package bench holds the benchmarks that compare courtbak with restic and
// borg (run.sh) and the stage benchmarks that live with no single package:
// zstd as the repository configures it, and all stages of a backup chained
// on one core.
package bench

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/courtbak/courtbak/chunking"
	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/testdata/gen"
)

// newEncoder matches repo's compressor: zstd at SpeedFastest, EncodeAll per
// blob. Concurrency 1 keeps the measurement on one core.
func newEncoder(b *testing.B) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	return enc
}

func randomData(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(b)
	return b
}

// caseFiles returns the small text and JSON case files the generator
// writes, the compressible blobs of a court repository.
func caseFiles(b *testing.B) [][]byte {
	dir := b.TempDir()
	files, err := gen.Generate(dir, gen.Options{Seed: 5, TotalBytes: 4 << 20, SmallFiles: 600})
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		if f.Kind != "case" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkZstdIncompressible is the compression attempt every media chunk
// gets before it is stored raw.
func BenchmarkZstdIncompressible(b *testing.B) {
	data := randomData(1 << 20)
	enc := newEncoder(b)
	dst := make([]byte, 0, len(data)+len(data)/64)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst = enc.EncodeAll(data, dst[:0])
	}
	b.ReportMetric(float64(len(dst))/float64(len(data)), "ratio")
}

// BenchmarkZstdText compresses case files one blob each, as a backup does.
func BenchmarkZstdText(b *testing.B) {
	texts := caseFiles(b)
	enc := newEncoder(b)
	var in, out int
	for _, t := range texts {
		in += len(t)
	}
	dst := make([]byte, 0, 64<<10)
	b.SetBytes(int64(in))
	for b.Loop() {
		out = 0
		for _, t := range texts {
			dst = enc.EncodeAll(t, dst[:0])
			out += len(dst)
		}
	}
	b.ReportMetric(float64(out)/float64(in), "ratio")
	b.ReportMetric(float64(in)/float64(len(texts)), "bytes/file")
}

// BenchmarkZstdTextBlock compresses the case files as one 1 MiB block: the
// rate on text without per-blob overhead.
func BenchmarkZstdTextBlock(b *testing.B) {
	block := bytes.Join(caseFiles(b), nil)
	block = block[:min(len(block), 1<<20)]
	enc := newEncoder(b)
	dst := make([]byte, 0, len(block))
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		dst = enc.EncodeAll(block, dst[:0])
	}
	b.ReportMetric(float64(len(dst))/float64(len(block)), "ratio")
}

// BenchmarkPipelineOneCore chains every CPU stage of backing up new,
// incompressible data on one core: chunking, the whole-file hash, the
// keyed blob id, the compression attempt and sealing. Divided by the
// number of cores it bounds what a parallel pipeline can reach, reading
// and uploading aside.
func BenchmarkPipelineOneCore(b *testing.B) {
	p, err := chunking.NewParams()
	if err != nil {
		b.Fatal(err)
	}
	data := randomData(64 << 20)
	secret := randomData(crypto.KeySize)
	idKey, err := crypto.NewIDKey(secret)
	if err != nil {
		b.Fatal(err)
	}
	key, err := crypto.KeyFromBytes(secret)
	if err != nil {
		b.Fatal(err)
	}
	enc := newEncoder(b)
	buf := make([]byte, p.MaxSize)
	zbuf := make([]byte, 0, p.MaxSize+p.MaxSize/64)
	sealed := make([]byte, 0, p.MaxSize+crypto.Overhead)
	c := chunking.New(bytes.NewReader(data), p)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data), p)
		h := crypto.NewHasher()
		for {
			chunk, err := c.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			_, _ = h.Write(chunk)
			id := idKey.Sum(chunk)
			zbuf = enc.EncodeAll(chunk, zbuf[:0])
			payload := chunk
			if len(zbuf) < len(chunk)-len(chunk)/32 {
				payload = zbuf
			}
			sealed = key.Seal(sealed[:0], payload, id[:])
		}
		_ = h.Sum(nil)
	}
}
