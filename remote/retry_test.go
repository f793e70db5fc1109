package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/courtbak/courtbak/remote"
)

// fakeSleep records the waits of a Retry instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	return nil
}

func (f *fakeSleep) total() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum time.Duration
	for _, w := range f.waits {
		sum += w
	}
	return sum
}

// hooked is a Local backend whose calls can be made to fail, hang or read
// oddly, per operation and call number (0-based).
type hooked struct {
	remote.Backend
	mu    sync.Mutex
	calls map[string]int
	// before runs first in every call; an error fails the call.
	before func(ctx context.Context, op string, call int) error
	// reader, if set, replaces the reader Load hands to fn.
	reader func(ctx context.Context, call int, rd io.Reader) io.Reader
}

func newHooked(t *testing.T) *hooked {
	return &hooked{Backend: newLocal(t), calls: make(map[string]int)}
}

func (h *hooked) call(ctx context.Context, op string) (int, error) {
	h.mu.Lock()
	n := h.calls[op]
	h.calls[op]++
	h.mu.Unlock()
	if h.before != nil {
		return n, h.before(ctx, op, n)
	}
	return n, nil
}

func (h *hooked) count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[op]
}

func (h *hooked) Save(ctx context.Context, hd remote.Handle, data []byte) error {
	if _, err := h.call(ctx, "save"); err != nil {
		return err
	}
	return h.Backend.Save(ctx, hd, data)
}

func (h *hooked) Load(ctx context.Context, hd remote.Handle, offset, length int64, fn func(io.Reader) error) error {
	n, err := h.call(ctx, "load")
	if err != nil {
		return err
	}
	return h.Backend.Load(ctx, hd, offset, length, func(rd io.Reader) error {
		if h.reader != nil {
			rd = h.reader(ctx, n, rd)
		}
		return fn(rd)
	})
}

func (h *hooked) Stat(ctx context.Context, hd remote.Handle) (remote.ObjectInfo, error) {
	if _, err := h.call(ctx, "stat"); err != nil {
		return remote.ObjectInfo{}, err
	}
	return h.Backend.Stat(ctx, hd)
}

func (h *hooked) Remove(ctx context.Context, hd remote.Handle) error {
	if _, err := h.call(ctx, "remove"); err != nil {
		return err
	}
	return h.Backend.Remove(ctx, hd)
}

// errHang makes a hooked call block until its context ends.
var errHang = errors.New("hang")

func failFirst(n int, err error) func(context.Context, string, int) error {
	return func(ctx context.Context, _ string, call int) error {
		if call >= n {
			return nil
		}
		if err == errHang {
			<-ctx.Done()
			return fmt.Errorf("request: %w", ctx.Err())
		}
		return err
	}
}

func statusErr(code int, apiCode string) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}},
		Err:      &smithy.GenericAPIError{Code: apiCode, Message: "test"},
	}
}

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{fmt.Errorf("load x: %w", remote.ErrNotFound), false},
		{fmt.Errorf("save: %w", context.Canceled), false},
		{context.DeadlineExceeded, false},
		{remote.ErrInjected, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{&url.Error{Op: "Put", URL: "http://h/", Err: io.EOF}, true},
		{&smithy.GenericAPIError{Code: "SlowDown"}, true},
		{statusErr(503, "SlowDown"), true},
		{statusErr(500, "InternalError"), true},
		{statusErr(502, ""), true},
		{statusErr(501, "NotImplemented"), false},
		{statusErr(429, "TooManyRequests"), true},
		{statusErr(400, "RequestTimeout"), true},
		{statusErr(403, "AccessDenied"), false},
		{statusErr(403, "SignatureDoesNotMatch"), false},
		{statusErr(400, "InvalidArgument"), false},
	} {
		if got := remote.IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRetrySucceedsAfterTransientErrors(t *testing.T) {
	be := newHooked(t)
	errs := []error{remote.ErrInjected, statusErr(503, "SlowDown"), fmt.Errorf("x: %w", syscall.ECONNRESET)}
	be.before = func(_ context.Context, _ string, call int) error {
		if call < len(errs) {
			return errs[call]
		}
		return nil
	}
	sleep := &fakeSleep{}
	var retried []string
	r := remote.NewRetry(be, remote.RetryPolicy{
		Sleep:          sleep.Sleep,
		InitialBackoff: time.Second,
		OnRetry: func(what string, attempt, _ int, err error, wait time.Duration) {
			retried = append(retried, fmt.Sprintf("%s #%d", what, attempt))
		},
	})
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	if err := r.Save(context.Background(), h, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if be.count("save") != 4 {
		t.Fatalf("%d calls, want 4", be.count("save"))
	}
	if strings.Join(retried, ",") != "save data/abcd #1,save data/abcd #2,save data/abcd #3" {
		t.Fatalf("OnRetry saw %v", retried)
	}
	for i, w := range sleep.waits {
		if ceiling := time.Second << i; w < 0 || w >= ceiling {
			t.Errorf("wait %d is %v, want in [0, %v)", i, w, ceiling)
		}
	}
	// Stat, Load and Remove retry alike.
	if _, err := r.Stat(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.ReadAll(context.Background(), r, h); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"stat", "load", "remove"} {
		if be.count(op) != 4 {
			t.Errorf("%s: %d calls, want 4", op, be.count(op))
		}
	}
}

func TestRetryPermanentErrors(t *testing.T) {
	for _, perm := range []error{
		fmt.Errorf("stat x: %w", remote.ErrNotFound),
		statusErr(403, "AccessDenied"),
		errors.New("invalid object name"),
	} {
		be := newHooked(t)
		be.before = failFirst(100, perm)
		r := remote.NewRetry(be, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep})
		_, err := r.Stat(context.Background(), remote.Handle{Type: remote.Data, Name: "ab"})
		if !errors.Is(err, perm) || be.count("stat") != 1 {
			t.Errorf("%v: got %v after %d calls, want it after 1", perm, err, be.count("stat"))
		}
	}
}

func TestRetryGivesUp(t *testing.T) {
	be := newHooked(t)
	be.before = failFirst(1000, fmt.Errorf("PutObject: %w", remote.ErrInjected))
	sleep := &fakeSleep{}
	r := remote.NewRetry(be, remote.RetryPolicy{Sleep: sleep.Sleep})
	h := remote.Handle{Type: remote.Index, Name: "0123abcd"}
	err := r.Save(context.Background(), h, []byte("x"))
	if !errors.Is(err, remote.ErrInjected) {
		t.Fatalf("got %v, want the last error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "save index/0123abcd") || !strings.Contains(msg, "giving up after 8 attempts") || !strings.Contains(msg, "PutObject") {
		t.Fatalf("error %q does not name the object, the attempts and the last answer", msg)
	}
	if be.count("save") != 8 || len(sleep.waits) != 7 {
		t.Fatalf("%d calls and %d waits, want 8 and 7", be.count("save"), len(sleep.waits))
	}
	// The default backoff keeps the total wait to about two minutes.
	if total := sleep.total(); total > 123*time.Second {
		t.Fatalf("waited %v in total", total)
	}
}

func TestRetryCancelDuringBackoff(t *testing.T) {
	be := newHooked(t)
	be.before = failFirst(1000, remote.ErrInjected)
	r := remote.NewRetry(be, remote.RetryPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Save(ctx, remote.Handle{Type: remote.Data, Name: "ab"}, nil)
	// The backoff may draw a wait of almost 0 and try again; either way the
	// call ends soon after the context does.
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestRetryCancelsStalledAttempt(t *testing.T) {
	be := newHooked(t)
	be.before = failFirst(2, errHang)
	r := remote.NewRetry(be, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep, Timeout: 200 * time.Millisecond, MinRate: 1 << 40})
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	start := time.Now()
	if err := r.Save(context.Background(), h, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if be.count("save") != 3 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d calls in %v, want 3 quickly", be.count("save"), time.Since(start))
	}

	// A Load that delivers a little and then hangs is cancelled and retried.
	be.reader = func(ctx context.Context, call int, rd io.Reader) io.Reader {
		if call > 0 {
			return rd
		}
		return io.MultiReader(io.LimitReader(rd, 2), readerFunc(func([]byte) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}))
	}
	be.before = nil
	got, err := remote.ReadAll(context.Background(), r, h)
	if err != nil || string(got) != "data" || be.count("load") != 2 {
		t.Fatalf("got %q, %v after %d calls", got, err, be.count("load"))
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// A slow but steady download is not a stuck one, however long it takes.
func TestRetryProgressExtendsTimeout(t *testing.T) {
	be := newHooked(t)
	be.reader = func(_ context.Context, _ int, rd io.Reader) io.Reader {
		return readerFunc(func(b []byte) (int, error) {
			time.Sleep(15 * time.Millisecond)
			return rd.Read(b[:1])
		})
	}
	r := remote.NewRetry(be, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep, Timeout: 100 * time.Millisecond})
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	data := []byte("twenty bytes of data")
	if err := r.Save(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	got, err := remote.ReadAll(context.Background(), r, h)
	if err != nil || !bytes.Equal(got, data) || be.count("load") != 1 {
		t.Fatalf("got %q, %v after %d calls, want one call", got, err, be.count("load"))
	}
}

func TestRetryLoadCallbackErrors(t *testing.T) {
	be := newHooked(t)
	r := remote.NewRetry(be, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep})
	h := remote.Handle{Type: remote.Snapshot, Name: "abcd"}
	if err := r.Save(context.Background(), h, []byte("data")); err != nil {
		t.Fatal(err)
	}
	// fn's own failures are not the backend's: no retry.
	sentinel := errors.New("decrypt failed")
	err := r.Load(context.Background(), h, 0, 0, func(io.Reader) error { return sentinel })
	if !errors.Is(err, sentinel) || be.count("load") != 1 {
		t.Fatalf("got %v after %d calls, want %v after 1", err, be.count("load"), sentinel)
	}
	// A read broken underneath is retried, even if fn's error hides it.
	be.reader = func(_ context.Context, call int, rd io.Reader) io.Reader {
		if call == 1 {
			return io.MultiReader(io.LimitReader(rd, 1), readerFunc(func([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }))
		}
		return rd
	}
	var got []byte
	err = r.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		if err != nil {
			return errors.New("short read")
		}
		got = b
		return nil
	})
	if err != nil || string(got) != "data" || be.count("load") != 3 {
		t.Fatalf("got %q, %v after %d calls", got, err, be.count("load"))
	}
}

// lister lists names in the given order and fails the first attempts
// after failAfter[attempt] objects.
type lister struct {
	remote.Backend
	names     []string
	failAfter []int
	attempts  int
}

func (l *lister) List(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error {
	attempt := l.attempts
	l.attempts++
	for i, n := range l.names {
		if attempt < len(l.failAfter) && i == l.failAfter[attempt] {
			return fmt.Errorf("list: %w", remote.ErrInjected)
		}
		if err := fn(remote.ObjectInfo{Handle: remote.Handle{Type: t, Name: n}}); err != nil {
			return err
		}
	}
	return nil
}

func TestRetryListResumes(t *testing.T) {
	l := &lister{names: []string{"a1", "b2", "c3", "d4", "e5"}, failAfter: []int{2, 0, 4}}
	r := remote.NewRetry(l, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep})
	var seen []string
	err := r.List(context.Background(), remote.Index, func(fi remote.ObjectInfo) error {
		seen = append(seen, fi.Name)
		return nil
	})
	if err != nil || strings.Join(seen, ",") != "a1,b2,c3,d4,e5" || l.attempts != 4 {
		t.Fatalf("saw %v, %v after %d attempts", seen, err, l.attempts)
	}

	// Out of order, a listing cannot be resumed without repeats or gaps.
	l = &lister{names: []string{"e5", "a1", "c3"}, failAfter: []int{2}}
	r = remote.NewRetry(l, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep})
	err = r.List(context.Background(), remote.Index, func(remote.ObjectInfo) error { return nil })
	if !errors.Is(err, remote.ErrInjected) || l.attempts != 1 {
		t.Fatalf("unsorted: got %v after %d attempts, want one failed attempt", err, l.attempts)
	}

	// An error from fn ends the listing at once.
	l = &lister{names: []string{"a1", "b2"}}
	r = remote.NewRetry(l, remote.RetryPolicy{Sleep: (&fakeSleep{}).Sleep})
	stop := errors.New("stop")
	if err := r.List(context.Background(), remote.Index, func(remote.ObjectInfo) error { return stop }); !errors.Is(err, stop) || l.attempts != 1 {
		t.Fatalf("fn error: got %v after %d attempts", err, l.attempts)
	}
}

// A storage that has never answered (wrong endpoint, server down) fails a
// call after a few attempts; once it has answered, a refused connection is
// an outage and gets every attempt.
func TestRetryFailsFastWhileTheStorageNeverAnswered(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	be := newHooked(t)
	be.before = failFirst(1000, fmt.Errorf("HeadObject: %w", refused))
	sleep := &fakeSleep{}
	r := remote.NewRetry(be, remote.RetryPolicy{Sleep: sleep.Sleep})
	_, err := r.Stat(context.Background(), remote.Handle{Type: remote.Config, Name: "config"})
	if !errors.Is(err, syscall.ECONNREFUSED) || be.count("stat") != 3 {
		t.Fatalf("never answered: %v after %d attempts, want 3", err, be.count("stat"))
	}
	if msg := err.Error(); !strings.Contains(msg, "giving up after 3 attempts") || !strings.Contains(msg, "check the endpoint") {
		t.Errorf("error %q does not say what to check", msg)
	}
	if got := remote.Describe(err); got != "cannot reach 127.0.0.1:9: connection refused" {
		t.Errorf("Describe = %q", got)
	}

	// Answered once: the same failure now gets the full 8 attempts.
	be = newHooked(t)
	be.before = func(_ context.Context, _ string, call int) error {
		if call == 0 {
			return nil
		}
		return refused
	}
	r = remote.NewRetry(be, remote.RetryPolicy{Sleep: sleep.Sleep})
	if _, err := r.Stat(context.Background(), remote.Handle{Type: remote.Config, Name: "config"}); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("first stat: %v", err)
	}
	if _, err := r.Stat(context.Background(), remote.Handle{Type: remote.Config, Name: "config"}); !errors.Is(err, syscall.ECONNREFUSED) || be.count("stat") != 9 {
		t.Fatalf("after an answer: %v after %d calls, want 1+8", err, be.count("stat"))
	}
}
