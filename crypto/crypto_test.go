package crypto

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var cheap = KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

func TestSealOpenBindsAssociatedData(t *testing.T) {
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hearing 2026-11-27, courtroom 3")
	sealed := k.Seal(nil, msg, []byte("type-a"))
	if len(sealed) != len(msg)+Overhead {
		t.Fatalf("sealed length %d, want %d", len(sealed), len(msg)+Overhead)
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("plaintext visible in ciphertext")
	}
	got, err := k.Open(nil, sealed, []byte("type-a"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %v %q", err, got)
	}
	if _, err := k.Open(nil, sealed, []byte("type-b")); !errors.Is(err, ErrAuth) {
		t.Errorf("other associated data: %v", err)
	}
	other, _ := NewRandomKey()
	if _, err := other.Open(nil, sealed, []byte("type-a")); !errors.Is(err, ErrAuth) {
		t.Errorf("other key: %v", err)
	}
	for i := range sealed {
		flipped := append([]byte(nil), sealed...)
		flipped[i] ^= 1
		if _, err := k.Open(nil, flipped, []byte("type-a")); !errors.Is(err, ErrAuth) {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := k.Open(nil, sealed[:Overhead-1], nil); !errors.Is(err, ErrAuth) {
		t.Errorf("short input: %v", err)
	}
	again := k.Seal(nil, msg, []byte("type-a"))
	if bytes.Equal(again[:24], sealed[:24]) {
		t.Error("two seals used the same nonce")
	}
	inPlace, err := k.OpenInPlace(append([]byte(nil), sealed...), []byte("type-a"))
	if err != nil || !bytes.Equal(inPlace, msg) {
		t.Errorf("open in place: %v %q", err, inPlace)
	}
}

func TestKeyFileWrongPasswordAndDamage(t *testing.T) {
	master, _ := NewRandomKey()
	kf, err := NewKeyFile(master, []byte("pw"), cheap, "host", "user", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := kf.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parsed.Open([]byte("pw"))
	if err != nil || !bytes.Equal(got.Bytes(), master.Bytes()) {
		t.Fatalf("open: %v", err)
	}
	if _, err := parsed.Open([]byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	parsed.Wrapped[len(parsed.Wrapped)-1] ^= 1
	if _, err := parsed.Open([]byte("pw")); err == nil || errors.Is(err, ErrWrongPassword) {
		t.Errorf("damaged key file: %v", err)
	}
	parsed.Params.MemoryKiB = 1 << 30
	if _, err := parsed.Open([]byte("pw")); err == nil {
		t.Error("absurd argon2id parameters accepted")
	}
}

func TestKeyedHashDiffersFromPlain(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	k, err := NewIDKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("exhibit A")
	if k.Sum(data) == Hash(data) {
		t.Error("keyed id equals the plain hash: storage would reveal known plaintexts")
	}
	k2, _ := NewIDKey(bytes.Repeat([]byte{8}, KeySize))
	if k.Sum(data) == k2.Sum(data) {
		t.Error("different keys give the same id")
	}
	// BLAKE3-256 of the empty input, as b3sum prints it.
	if got := Hash(nil); got[0] != 0xaf || got[1] != 0x13 || got[31] != 0x62 {
		t.Errorf("BLAKE3 of empty input = %x", got)
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := KeyFromBytes(bytes.Repeat([]byte{1}, KeySize))
	f.Add(k.Seal(nil, []byte("seed"), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		// Forged input must never authenticate, and never panic.
		if _, err := k.Open(nil, sealed, []byte("other")); err == nil {
			t.Fatal("forged ciphertext accepted")
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	master, _ := NewRandomKey()
	kf, _ := NewKeyFile(master, []byte("pw"), cheap, "h", "u", time.Unix(0, 0))
	b, _ := kf.Marshal()
	f.Add(b)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		if kf.Params.Validate() == nil && kf.Params.MemoryKiB > 64*1024 {
			return // valid but too costly to try in a fuzz loop
		}
		_, _ = kf.Open([]byte("pw")) // must not panic
	})
}
