package index

import (
	"errors"
	"reflect"
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/pack"
)

func sampleFile() *File {
	return &File{
		Supersedes: []blob.ID{{9}},
		Packs: []PackBlobs{{
			ID:   blob.ID{1},
			Size: 4321,
			Blobs: []pack.Entry{
				{Type: blob.Data, Compression: pack.CompressionNone, ID: blob.ID{2}, Offset: 0, Length: 140, RawLength: 100},
				{Type: blob.Tree, Compression: pack.CompressionZstd, ID: blob.ID{3}, Offset: 140, Length: 60, RawLength: 300},
			},
		}},
	}
}

func TestFileRoundTrip(t *testing.T) {
	f := sampleFile()
	got, err := Decode(Encode(f))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
	}
	// Explicit byte order: the first count after the magic is little-endian.
	b := Encode(f)
	if string(b[:4]) != "CBIX" || b[4] != 1 || b[5] != 1 || b[6] != 0 {
		t.Errorf("header bytes % x", b[:9])
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	b := Encode(sampleFile())
	for _, cut := range []int{0, 3, 9, len(b) - 1} {
		if _, err := Decode(b[:cut]); !errors.Is(err, ErrFormat) {
			t.Errorf("truncated at %d: %v", cut, err)
		}
	}
	huge := append([]byte(nil), b...)
	huge[5], huge[6], huge[7], huge[8] = 0xff, 0xff, 0xff, 0x7f
	if _, err := Decode(huge); !errors.Is(err, ErrFormat) {
		t.Errorf("absurd count: %v", err)
	}
	if _, err := Decode(append(b, 0)); !errors.Is(err, ErrFormat) {
		t.Errorf("trailing byte: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sampleFile()))
	f.Add([]byte("CBIX\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(Encode(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("accepted input does not round-trip: %v", err)
		}
	})
}
