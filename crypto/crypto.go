// Package crypto holds courtbak's cryptography: authenticated encryption of
// every stored byte (XChaCha20-Poly1305), password-based key files
// (argon2id), and BLAKE3 hashing, plain for object names and keyed for blob
// ids. docs/crypto.md argues the choices.
package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of every symmetric key.
const KeySize = 32

// Overhead is what Seal adds to a plaintext: a 24-byte random nonce in front
// and a 16-byte Poly1305 tag behind.
const Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrAuth means a ciphertext failed authentication: it was damaged, forged,
// or sealed with another key or associated data.
var ErrAuth = errors.New("ciphertext failed authentication (damaged, or wrong key)")

// Key is a symmetric XChaCha20-Poly1305 key.
type Key struct {
	raw [KeySize]byte
}

// NewRandomKey returns a fresh key from the operating system's CSPRNG.
func NewRandomKey() (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.raw[:]); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// KeyFromBytes wraps 32 raw bytes as a key.
func KeyFromBytes(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(b))
	}
	k := &Key{}
	copy(k.raw[:], b)
	return k, nil
}

// Bytes returns the raw key. Callers must not log it.
func (k *Key) Bytes() []byte { return k.raw[:] }

// Seal encrypts and authenticates plaintext, binding ad, and appends
// nonce||ciphertext||tag to dst. Nonces are random 192-bit values, so they
// never need coordination between hosts writing to one repository.
func (k *Key) Seal(dst, plaintext, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(k.raw[:])
	if err != nil {
		panic(err) // impossible: the key size is fixed
	}
	n := len(dst)
	dst = grow(dst, Overhead+len(plaintext))
	nonce := dst[n : n+chacha20poly1305.NonceSizeX]
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // no safe way to continue without randomness
	}
	return aead.Seal(dst[:n+len(nonce)], nonce, plaintext, ad)
}

// Open authenticates and decrypts a value made by Seal with the same ad,
// appending the plaintext to dst.
func (k *Key) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("ciphertext of %d bytes is shorter than the %d-byte overhead: %w", len(sealed), Overhead, ErrAuth)
	}
	aead, err := chacha20poly1305.NewX(k.raw[:])
	if err != nil {
		panic(err)
	}
	nonce, ct := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	out, err := aead.Open(dst, nonce, ct, ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// OpenInPlace is Open decrypting into sealed's own storage (no allocation);
// sealed is overwritten.
func (k *Key) OpenInPlace(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("ciphertext of %d bytes is shorter than the %d-byte overhead: %w", len(sealed), Overhead, ErrAuth)
	}
	ct := sealed[chacha20poly1305.NonceSizeX:]
	return k.Open(ct[:0], sealed, ad)
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// Hash returns the plain BLAKE3-256 of data: the name of every stored object.
func Hash(data []byte) [32]byte {
	return blake3.Sum256(data)
}

// NewHasher returns a streaming plain BLAKE3-256 hasher (whole-file hashes).
func NewHasher() *blake3.Hasher { return blake3.New() }

// IDKey computes blob ids: BLAKE3 keyed by a secret from the repository
// config, so that the ids visible in storage do not reveal which known
// plaintexts a repository holds.
type IDKey struct {
	key [KeySize]byte
}

// NewIDKey wraps a 32-byte secret.
func NewIDKey(b []byte) (*IDKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("blob id key must be %d bytes, got %d", KeySize, len(b))
	}
	k := &IDKey{}
	copy(k.key[:], b)
	return k, nil
}

// Sum returns the keyed BLAKE3-256 of data.
func (k *IDKey) Sum(data []byte) [32]byte {
	h, err := blake3.NewKeyed(k.key[:])
	if err != nil {
		panic(err) // impossible: the key size is fixed
	}
	_, _ = h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
