package mem_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/backendtest"
	"github.com/courtbak/courtbak/remote/mem"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(*testing.T) remote.Backend { return mem.New(nil) })
}

// Objects are dated by the injected clock, and a caller reusing its buffer
// after Save does not change what was stored.
func TestClockAndCopies(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	be := mem.New(func() time.Time { return at })
	buf := []byte("hearing")
	h := remote.Handle{Type: remote.Snapshot, Name: "ab"}
	if err := be.Save(ctx, h, buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	got, err := remote.ReadAll(ctx, be, h)
	if err != nil || !bytes.Equal(got, []byte("hearing")) {
		t.Errorf("read %q, %v after the caller reused its buffer", got, err)
	}
	fi, err := be.Stat(ctx, h)
	if err != nil || !fi.ModTime.Equal(at) {
		t.Errorf("stat %+v, %v: want dated %v", fi, err, at)
	}
	if mem.New(nil).Location() == be.Location() {
		t.Error("two backends share a location")
	}
}
