package crypto

import (
	"math/rand/v2"
	"testing"
)

// Per-blob costs of a backup (keyed id, sealing) and of the whole-file hash,
// on chunk-sized inputs (chunks average about 1.5 MiB). Run with -cpu 1 to
// measure one core.

const benchBlob = 1 << 20

func benchData() []byte {
	b := make([]byte, benchBlob)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(b)
	return b
}

// BenchmarkHash is plain BLAKE3-256: object names and whole-file hashes.
func BenchmarkHash(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = Hash(data)
	}
}

// BenchmarkHasherStream is the streaming whole-file hash, fed in chunks.
func BenchmarkHasherStream(b *testing.B) {
	data := benchData()
	h := NewHasher()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = h.Write(data)
	}
}

// BenchmarkIDKeySum is keyed BLAKE3: every chunk's blob id.
func BenchmarkIDKeySum(b *testing.B) {
	data := benchData()
	k, err := NewIDKey(data[:KeySize])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = k.Sum(data)
	}
}

// BenchmarkSeal is XChaCha20-Poly1305 sealing of a blob.
func BenchmarkSeal(b *testing.B) {
	data := benchData()
	k, err := NewRandomKey()
	if err != nil {
		b.Fatal(err)
	}
	ad := []byte("courtbak blob v1 plus type and id, about 49 bytes.")
	dst := make([]byte, 0, len(data)+Overhead)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst = k.Seal(dst[:0], data, ad)
	}
}

// BenchmarkOpen is authenticated decryption, the restore side of Seal.
func BenchmarkOpen(b *testing.B) {
	data := benchData()
	k, err := NewRandomKey()
	if err != nil {
		b.Fatal(err)
	}
	sealed := k.Seal(nil, data, nil)
	dst := make([]byte, 0, len(data))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		if dst, err = k.Open(dst[:0], sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}
