package remote_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/mem"
)

// ReadObjectInto reads a whole object into the buffer's capacity, and
// refuses one that does not fit instead of returning part of it.
func TestReadObjectInto(t *testing.T) {
	ctx := context.Background()
	be := mem.New(nil)
	h := remote.Handle{Type: remote.Data, Name: "ab01"}
	data := bytes.Repeat([]byte("0123456789"), 10)
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{100, 250} {
		got, err := remote.ReadObjectInto(ctx, be, h, make([]byte, 0, c))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("into %d bytes: %q, %v", c, got, err)
		}
	}
	if _, err := remote.ReadObjectInto(ctx, be, h, make([]byte, 0, 99)); !errors.Is(err, remote.ErrTooLarge) {
		t.Fatalf("into 99 bytes: %v, want ErrTooLarge", err)
	}
}

// Through a failover, reads into a buffer come from the first copy that
// has the bytes whole: a copy without the object, or with a shorter one,
// is passed over, and the buffer holds the good copy's bytes.
func TestFailoverReadsIntoBuffer(t *testing.T) {
	ctx := context.Background()
	h := remote.Handle{Type: remote.Data, Name: "ab01"}
	data := bytes.Repeat([]byte("abcdefghij"), 10)
	missing, short, good := mem.New(nil), mem.New(nil), mem.New(nil)
	if err := short.Save(ctx, h, data[:40]); err != nil {
		t.Fatal(err)
	}
	if err := good.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	f := remote.NewFailover([]remote.Backend{missing, short, good}, remote.FailoverOptions{})
	buf := make([]byte, 50)
	if err := remote.ReadRangeInto(ctx, f, h, 30, buf); err != nil || !bytes.Equal(buf, data[30:80]) {
		t.Fatalf("range: %q, %v", buf, err)
	}
	// The short copy holds a whole object of 40 bytes: a whole read cannot
	// tell it is short, so only the missing copy is passed over here.
	f = remote.NewFailover([]remote.Backend{missing, good}, remote.FailoverOptions{})
	got, err := remote.ReadObjectInto(ctx, f, h, make([]byte, 0, 128))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("whole: %q, %v", got, err)
	}
	if _, err := remote.ReadObjectInto(ctx, f, h, make([]byte, 0, 64)); !errors.Is(err, remote.ErrTooLarge) {
		t.Fatalf("whole into 64 bytes: %v, want ErrTooLarge", err)
	}
}
