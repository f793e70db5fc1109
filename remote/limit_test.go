package remote_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
)

// At 512 KiB/s with a burst of a quarter second, moving 384 KiB takes
// (384-128)/512 s = 0.5 s.
func TestLimiterPaces(t *testing.T) {
	data := bytes.Repeat([]byte("limited "), 384<<10/8)
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	t.Run("upload", func(t *testing.T) {
		t.Parallel()
		l := remote.NewLimiter(newLocal(t), 512, 0)
		start := time.Now()
		if err := l.Save(context.Background(), h, data); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
			t.Fatalf("upload of 384 KiB at 512 KiB/s took %v", d)
		}
		// Downloads are not limited here.
		start = time.Now()
		if got, err := remote.ReadAll(context.Background(), l, h); err != nil || !bytes.Equal(got, data) || time.Since(start) > 200*time.Millisecond {
			t.Fatalf("unlimited download: %v after %v", err, time.Since(start))
		}
	})
	t.Run("download", func(t *testing.T) {
		t.Parallel()
		local := newLocal(t)
		if err := local.Save(context.Background(), h, data); err != nil {
			t.Fatal(err)
		}
		l := remote.NewLimiter(local, 0, 512)
		start := time.Now()
		got, err := remote.ReadAll(context.Background(), l, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download: %v", err)
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
			t.Fatalf("download of 384 KiB at 512 KiB/s took %v", d)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		l := remote.NewLimiter(newLocal(t), 1, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := l.Save(ctx, h, data); err == nil || errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("save beyond the deadline: %v", err)
		}
	})
}
