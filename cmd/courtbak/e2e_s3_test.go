package main_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/zeebo/blake3"

	"github.com/courtbak/courtbak/remote/s3test"
)

// faultProxy sits between courtbak and the S3 server and misbehaves on a
// share of requests: 503 SlowDown answers, connections reset mid-request,
// and delays, or a total outage.
type faultProxy struct {
	url      string
	rate     atomic.Uint64 // faults per 1000 requests
	outage   atomic.Bool
	putsLeft atomic.Int64 // with outageAfterPuts: object PUTs before the outage
	injected atomic.Int64
	mu       sync.Mutex
	rng      *rand.Rand
}

func newFaultProxy(t *testing.T, endpoint string) *faultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rng: rand.New(rand.NewPCG(1, 2))}
	p.putsLeft.Store(-1)
	rp := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && p.putsLeft.Load() >= 0 && p.putsLeft.Add(-1) < 0 {
			p.outage.Store(true)
		}
		if p.outage.Load() {
			p.injected.Add(1)
			slowDown(w)
			return
		}
		p.mu.Lock()
		roll := p.rng.IntN(1000)
		kind := p.rng.IntN(3)
		p.mu.Unlock()
		if uint64(roll) < p.rate.Load() {
			p.injected.Add(1)
			switch kind {
			case 0:
				slowDown(w)
				return
			case 1:
				// Read part of the body, then drop the connection.
				_, _ = io.CopyN(io.Discard, r.Body, 1024)
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						if tc, ok := c.(*net.TCPConn); ok {
							_ = tc.SetLinger(0) // RST, not FIN
						}
						_ = c.Close()
						return
					}
				}
				slowDown(w)
				return
			default:
				time.Sleep(150 * time.Millisecond)
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

func slowDown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
}

// viaProxy returns an env whose repository URL reaches the bucket of base
// through the proxy.
func viaProxy(t *testing.T, base *env, endpoint string, p *faultProxy) *env {
	e := *base
	e.repo = strings.Replace(base.repo, endpoint, p.url, 1)
	if e.repo == base.repo {
		t.Fatalf("repository URL %s does not name endpoint %s", base.repo, endpoint)
	}
	return &e
}

func TestS3BackupSurvivesFlakyServer(t *testing.T) {
	endpoint, _, secret := s3test.Server(t)
	direct := newS3Env(t)
	proxy := newFaultProxy(t, endpoint)
	e := viaProxy(t, direct, endpoint, proxy)
	e.init()
	proxy.rate.Store(150) // 15% of requests fail, reset or stall
	src := generate(t, 11, 48<<20)
	e.backup("--retries", "10", src)
	target := t.TempDir()
	r := e.must("--retries", "10", "restore", "latest", "--target", target)
	compareTrees(t, src, restoredPath(target, src))
	if proxy.injected.Load() < 5 {
		t.Errorf("only %d faults injected: the test proves little", proxy.injected.Load())
	}
	if strings.Contains(r.stderr+r.stdout, secret) {
		t.Error("the S3 secret appears in the output")
	}
}

func TestS3OutageFailsCleanly(t *testing.T) {
	endpoint, _, secret := s3test.Server(t)
	direct := newS3Env(t)
	direct.init()
	proxy := newFaultProxy(t, endpoint)
	e := viaProxy(t, direct, endpoint, proxy)
	src := generate(t, 12, 64<<20)

	// The server goes down after a few objects of the backup are stored.
	proxy.putsLeft.Store(3)
	r := e.run("--retries", "2", "backup", src)
	if r.code != 1 {
		t.Fatalf("backup during an outage: exit %d\n%s", r.code, r.stderr)
	}
	last := lastLine(r.stderr)
	if !strings.Contains(last, "SlowDown") || !(strings.Contains(last, "data/") || strings.Contains(last, "index/") || strings.Contains(last, "snapshots/")) {
		t.Errorf("the error does not name the object and the server's answer: %q", last)
	}
	if strings.Contains(r.stderr, secret) {
		t.Error("the S3 secret appears in the error output")
	}
	// Nothing half-written is referenced: no snapshot, and the next backup
	// (server back) completes and restores byte-identical.
	if r := direct.must("snapshots", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("a failed backup left a snapshot: %s", r.stdout)
	}
	direct.backup(src)
	target := t.TempDir()
	direct.must("restore", "latest", "--target", target)
	compareTrees(t, src, restoredPath(target, src))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Objects courtbak writes are ordinary S3 objects: a plain S3 client lists
// and fetches them, and each one's BLAKE3 equals its name.
func TestS3ObjectsReadableByAPlainClient(t *testing.T) {
	endpoint, _, _ := s3test.Server(t)
	e := newS3Env(t)
	e.init()
	e.backup(generate(t, 13, 4<<20))

	rest := strings.TrimPrefix(e.repo, "s3:"+endpoint+"/")
	bucket, prefix, _ := strings.Cut(rest, "/")
	client := s3test.Client(endpoint)
	ctx := context.Background()
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	kinds := map[string]int{}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			data, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			kind := strings.Split(strings.TrimPrefix(key, prefix+"/"), "/")[0]
			kinds[kind]++
			if kind == "config" {
				continue
			}
			if sum := blake3.Sum256(data); fmt.Sprintf("%x", sum) != path.Base(key) {
				t.Errorf("%s hashes to %x", key, sum)
			}
		}
	}
	for _, k := range []string{"config", "keys", "data", "index", "snapshots"} {
		if kinds[k] == 0 {
			t.Errorf("no %s objects listed (got %v)", k, kinds)
		}
	}
}
