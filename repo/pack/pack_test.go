package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/repo/blob"
)

func testKey(t testing.TB) *crypto.Key {
	k, err := crypto.KeyFromBytes(bytes.Repeat([]byte{3}, crypto.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// buildPack seals blobs of the given sizes into one pack.
func buildPack(t testing.TB, k *crypto.Key, sizes ...int) ([]byte, []Entry, [][]byte) {
	w := NewWriter(make([]byte, 0, 1<<20))
	var plains [][]byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		id := blob.ID(crypto.Hash(p))
		room, ok := w.Reserve(blob.Data, id, CompressionNone, n, n+crypto.Overhead)
		if !ok {
			t.Fatal("reserve failed")
		}
		k.Seal(room, p, BlobAD(blob.Data, id))
		plains = append(plains, p)
	}
	data, entries := w.Finish(k)
	return data, entries, plains
}

func TestPackRoundTrip(t *testing.T) {
	k := testKey(t)
	data, entries, plains := buildPack(t, k, 100, 0, 5000)
	n, err := HeaderLength(data[len(data)-4:], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseHeader(k, data[len(data)-4-n:len(data)-4], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("%d entries, want %d", len(got), len(entries))
	}
	for i, e := range got {
		if e != entries[i] {
			t.Errorf("entry %d = %+v, want %+v", i, e, entries[i])
		}
		sealed := data[e.Offset : e.Offset+e.Length]
		p, err := k.Open(nil, sealed, BlobAD(e.Type, e.ID))
		if err != nil || !bytes.Equal(p, plains[i]) {
			t.Errorf("blob %d: %v", i, err)
		}
		// A blob moved to another id fails authentication.
		if _, err := k.Open(nil, sealed, BlobAD(e.Type, blob.ID{})); err == nil {
			t.Errorf("blob %d opens under another id", i)
		}
	}
}

// A pack's size must not give away the size of the chunks in it: a pack
// holding one small blob is padded, by a random amount.
func TestPackSizeIsPadded(t *testing.T) {
	k := testKey(t)
	sizes := map[int]bool{}
	for i := 0; i < 5; i++ {
		data, entries, _ := buildPack(t, k, 2)
		blobEnd := int(entries[0].Length)
		if len(data) < blobEnd+padUnit {
			t.Fatalf("pack of %d bytes for a %d-byte blob: not padded", len(data), blobEnd)
		}
		sizes[len(data)] = true
	}
	if len(sizes) == 1 {
		t.Error("five packs of the same blob have the same size: padding is not random")
	}
}

func TestReserveRefusesOverflow(t *testing.T) {
	w := NewWriter(make([]byte, 0, 100+tailRoom(1)))
	if _, ok := w.Reserve(blob.Data, blob.ID{1}, 0, 10, 60); !ok {
		t.Fatal("first reserve refused")
	}
	if _, ok := w.Reserve(blob.Data, blob.ID{2}, 0, 10, 60); ok {
		t.Fatal("reserve beyond capacity accepted: the buffer would move under concurrent sealing")
	}
	big := NewWriter(nil)
	if room, ok := big.Reserve(blob.Data, blob.ID{3}, 0, 10, 500); !ok || cap(room) != 500 || cap(big.buf) < 500+tailRoom(1) {
		t.Fatal("an empty writer must accept any blob")
	}
}

func TestParseHeaderRejectsDamage(t *testing.T) {
	k := testKey(t)
	data, _, _ := buildPack(t, k, 10, 20)
	size := int64(len(data))
	n, _ := HeaderLength(data[len(data)-4:], size)
	hdr := data[len(data)-4-n : len(data)-4]
	if _, err := ParseHeader(k, hdr, size+1); !errors.Is(err, ErrFormat) {
		t.Errorf("wrong pack size: %v", err)
	}
	bad := append([]byte(nil), hdr...)
	bad[len(bad)/2] ^= 0x40
	if _, err := ParseHeader(k, bad, size); err == nil {
		t.Error("damaged header accepted")
	}
	if _, err := HeaderLength([]byte{0xff, 0xff, 0xff, 0x7f}, size); !errors.Is(err, ErrFormat) {
		t.Errorf("absurd header length: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	k := testKey(f)
	data, _, _ := buildPack(f, k, 10, 20)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		n, err := HeaderLength(data[len(data)-4:], int64(len(data)))
		if err != nil {
			return
		}
		entries, err := ParseHeader(k, data[len(data)-4-n:len(data)-4], int64(len(data)))
		if err == nil && len(entries) > 0 && int(entries[len(entries)-1].Offset+entries[len(entries)-1].Length) > len(data) {
			t.Fatalf("accepted header points past the pack")
		}
	})
}
