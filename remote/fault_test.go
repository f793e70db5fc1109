package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
)

// faultPattern returns which of 200 Stat calls failed.
func faultPattern(t *testing.T, seed uint64) string {
	f := remote.NewFaulty(newLocal(t), remote.FaultConfig{Seed: seed, FailRate: 0.3})
	var b strings.Builder
	for range 200 {
		_, err := f.Stat(context.Background(), remote.Handle{Type: remote.Data, Name: "ab"})
		if errors.Is(err, remote.ErrInjected) {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestFaultyDeterministic(t *testing.T) {
	a, b, c := faultPattern(t, 1), faultPattern(t, 1), faultPattern(t, 2)
	if a != b {
		t.Fatal("the same seed gave different faults")
	}
	if a == c {
		t.Fatal("different seeds gave the same faults")
	}
	if n := strings.Count(a, "x"); n < 40 || n > 80 {
		t.Fatalf("%d of 200 calls failed at rate 0.3", n)
	}
}

func TestFaultyOutageAndHandles(t *testing.T) {
	ctx := context.Background()
	f := remote.NewFaulty(newLocal(t), remote.FaultConfig{})
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	other := remote.Handle{Type: remote.Data, Name: "ef01"}
	for _, hd := range []remote.Handle{h, other} {
		if err := f.Save(ctx, hd, []byte("data")); err != nil {
			t.Fatal(err)
		}
	}

	f.SetOutage(true)
	noop := func(remote.ObjectInfo) error { return nil }
	for name, err := range map[string]error{
		"save":   f.Save(ctx, h, []byte("data")),
		"load":   f.Load(ctx, h, 0, 0, func(io.Reader) error { return nil }),
		"stat":   second(f.Stat(ctx, h)),
		"list":   f.List(ctx, remote.Data, noop),
		"remove": f.Remove(ctx, h),
	} {
		if !errors.Is(err, remote.ErrInjected) || !remote.IsTransient(err) {
			t.Errorf("%s during outage: got %v, want a transient ErrInjected", name, err)
		}
	}
	f.SetOutage(false)

	f.FailHandle(h, remote.ErrNotFound)
	if _, err := f.Stat(ctx, h); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("stat of failed handle: %v", err)
	}
	if _, err := f.Stat(ctx, other); err != nil {
		t.Fatalf("stat of another handle: %v", err)
	}
	f.FailHandle(remote.Handle{Type: remote.Data}, remote.ErrInjected)
	if err := f.List(ctx, remote.Data, noop); !errors.Is(err, remote.ErrInjected) {
		t.Fatalf("list of a failed type: %v", err)
	}
	f.FailHandle(h, nil)
	if _, err := f.Stat(ctx, h); err != nil {
		t.Fatalf("stat after clearing: %v", err)
	}
	if f.Injected() != 7 {
		t.Fatalf("Injected() = %d, want 7", f.Injected())
	}
}

func second[T any](_ T, err error) error { return err }

func TestFaultyDamagedReads(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	for seed := range uint64(20) {
		local := newLocal(t)
		if err := local.Save(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		corrupt := remote.NewFaulty(local, remote.FaultConfig{Seed: seed, CorruptRate: 1})
		got, err := remote.ReadAll(ctx, corrupt, h)
		if err != nil || len(got) != len(data) {
			t.Fatalf("corrupted read: %d bytes, %v", len(got), err)
		}
		flipped := 0
		for i := range got {
			flipped += bits.OnesCount8(got[i] ^ data[i])
		}
		if flipped != 1 {
			t.Fatalf("seed %d: %d bits differ, want 1", seed, flipped)
		}

		truncate := remote.NewFaulty(local, remote.FaultConfig{Seed: seed, TruncateRate: 1})
		err = truncate.Load(ctx, h, 0, 0, func(rd io.Reader) error {
			got, err = io.ReadAll(rd)
			return err
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("seed %d: truncated read gave %d bytes, %v", seed, len(got), err)
		}
	}
}

func TestFaultyDelay(t *testing.T) {
	f := remote.NewFaulty(newLocal(t), remote.FaultConfig{DelayRate: 1, Delay: 50 * time.Millisecond})
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	start := time.Now()
	if _, err := f.Stat(context.Background(), h); !errors.Is(err, remote.ErrNotFound) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("delayed stat: %v after %v", err, time.Since(start))
	}
	f = remote.NewFaulty(newLocal(t), remote.FaultConfig{DelayRate: 1, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := f.Stat(ctx, h); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled delay: %v after %v", err, time.Since(start))
	}
}

// A failed Save may still have stored the object, as when an answer is lost.
func TestFaultySaveFailsBeforeAndAfter(t *testing.T) {
	local := newLocal(t)
	f := remote.NewFaulty(local, remote.FaultConfig{Seed: 3, FailRate: 1})
	stored := 0
	for i := range 40 {
		h := remote.Handle{Type: remote.Data, Name: fmt.Sprintf("%04d", i)}
		if err := f.Save(context.Background(), h, []byte("x")); !errors.Is(err, remote.ErrInjected) {
			t.Fatalf("save %d: %v", i, err)
		}
		if _, err := local.Stat(context.Background(), h); err == nil {
			stored++
		}
	}
	if stored == 0 || stored == 40 {
		t.Fatalf("%d of 40 failed saves stored the object, want some", stored)
	}
}
