package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/s3test"
)

// checkRetryOverFaults puts Faulty between a Retry and be: with 30% of the
// calls failing (and delays and broken reads on top) every save, load,
// stat and list succeeds; during an outage a call fails in bounded time,
// naming the object.
func checkRetryOverFaults(t *testing.T, be remote.Backend) {
	ctx := context.Background()
	f := remote.NewFaulty(be, remote.FaultConfig{
		Seed: 42, FailRate: 0.3, DelayRate: 0.2, Delay: time.Millisecond, TruncateRate: 0.1,
	})
	sleep := &fakeSleep{}
	r := remote.NewRetry(f, remote.RetryPolicy{Sleep: sleep.Sleep, MaxAttempts: 20})

	const n = 60
	want := make(map[string][]byte)
	for i := range n {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i)
		h := remote.Handle{Type: remote.Data, Name: fmt.Sprintf("%02x%06d", i, i)}
		if err := r.Save(ctx, h, data); err != nil {
			t.Fatalf("save %v: %v", h, err)
		}
		want[h.Name] = data
	}
	for name, data := range want {
		h := remote.Handle{Type: remote.Data, Name: name}
		got, err := remote.ReadAll(ctx, r, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("load %v: %v (content equal: %v)", h, err, bytes.Equal(got, data))
		}
		if fi, err := r.Stat(ctx, h); err != nil || fi.Size != int64(len(data)) {
			t.Fatalf("stat %v: %+v, %v", h, fi, err)
		}
	}
	for range 5 {
		seen := make(map[string]bool)
		err := r.List(ctx, remote.Data, func(fi remote.ObjectInfo) error {
			if seen[fi.Name] {
				return fmt.Errorf("%s listed twice", fi.Name)
			}
			seen[fi.Name] = true
			return nil
		})
		if err != nil || len(seen) != n {
			t.Fatalf("list: %d of %d objects, %v", len(seen), n, err)
		}
	}
	if f.Injected() < n/2 {
		t.Fatalf("only %d faults injected", f.Injected())
	}

	f.SetOutage(true)
	h := remote.Handle{Type: remote.Data, Name: "ff000000"}
	start := time.Now()
	waited := sleep.total()
	err := r.Save(ctx, h, []byte("during the outage"))
	if err == nil || !strings.Contains(err.Error(), "save data/ff000000") || !strings.Contains(err.Error(), "giving up after 20 attempts") {
		t.Fatalf("save during outage: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("save during outage took %v", time.Since(start))
	}
	// 19 waits of at most the 60s cap.
	if d := sleep.total() - waited; d > 19*time.Minute {
		t.Fatalf("retries would have waited %v", d)
	}
	f.SetOutage(false)
	if err := r.Save(ctx, h, []byte("after the outage")); err != nil {
		t.Fatalf("save after the outage: %v", err)
	}
}

func TestRetryOverFaultyLocal(t *testing.T) {
	t.Parallel()
	checkRetryOverFaults(t, newLocal(t))
}

func TestRetryOverFaultyS3(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := s3test.Server(t)
	checkRetryOverFaults(t, openS3(t, s3test.NewBucketURL(t, endpoint), s3test.Options()))
}

// A real outage: the server process goes away. Retries give up in bounded
// time with an error that names the object and the network failure.
func TestS3ServerOutage(t *testing.T) {
	t.Parallel()
	endpoint, stop := s3test.StartServer(t)
	sleep := &fakeSleep{}
	opts := s3test.Options()
	opts.Retry = true
	opts.RetryPolicy = remote.RetryPolicy{Sleep: sleep.Sleep, MaxAttempts: 4}
	be := openS3(t, s3test.NewBucketURL(t, endpoint), opts)
	h := remote.Handle{Type: remote.Snapshot, Name: strings.Repeat("5a", 32)}
	if err := be.Save(context.Background(), h, []byte("before")); err != nil {
		t.Fatal(err)
	}
	stop()
	start := time.Now()
	_, err := remote.ReadAll(context.Background(), be, h)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("load during outage: %v after %v", err, time.Since(start))
	}
	_, secret := s3test.Credentials()
	msg := err.Error()
	if !strings.Contains(msg, h.String()) || !strings.Contains(msg, "giving up after 4 attempts") || !strings.Contains(msg, "connection refused") || strings.Contains(msg, secret) {
		t.Fatalf("load during outage: %s", msg)
	}
	if errors.Is(err, remote.ErrNotFound) {
		t.Fatal("an outage looks like a missing object")
	}
}
