package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/s3test"
)

// put is what a proxy saw of one upload.
type put struct {
	crc32c, md5, sha256 string
}

// s3Proxy forwards to the test server and records every PUT's integrity
// headers; hooks change what passes.
type s3Proxy struct {
	mu   sync.Mutex
	puts []put
	// refuse answers a PUT itself, before the server sees it.
	refuse func(r *http.Request) bool
	// damage flips a byte of a PUT's body.
	damage func(n int) bool
	// hideCRC drops the server's x-amz-checksum-crc32c from its answers.
	hideCRC bool
}

func (p *s3Proxy) start(t *testing.T, endpoint string) string {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if p.hideCRC {
			resp.Header.Del("X-Amz-Checksum-Crc32c")
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.puts = append(p.puts, put{r.Header.Get("X-Amz-Checksum-Crc32c"), r.Header.Get("Content-Md5"), r.Header.Get("X-Amz-Content-Sha256")})
		n := len(p.puts)
		p.mu.Unlock()
		if p.refuse != nil && p.refuse(r) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>unsupported header</Message></Error>`)
			return
		}
		if p.damage != nil && p.damage(n) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body[len(body)/2] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (p *s3Proxy) seen() []put {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]put(nil), p.puts...)
}

// proxied opens a fresh bucket of the test server through p, without
// retries, and directly; it returns the URL through p too.
func proxied(t *testing.T, p *s3Proxy) (be, direct remote.Backend, proxiedURL string) {
	t.Helper()
	endpoint, _, _ := s3test.Server(t)
	u := s3test.NewBucketURL(t, endpoint)
	proxiedURL = strings.Replace(u, endpoint, p.start(t, endpoint), 1)
	return openS3(t, proxiedURL, s3test.Options()), openS3(t, u, s3test.Options()), proxiedURL
}

func randomObject(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// saveAndCompare saves data under h through be and reads it back from
// the server directly.
func saveAndCompare(t *testing.T, be, direct remote.Backend, h remote.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, data); err != nil {
		t.Fatalf("save %s: %v", h, err)
	}
	got, err := remote.ReadAll(context.Background(), direct, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s as stored: %v (equal: %v)", h, err, bytes.Equal(got, data))
	}
}

// Uploads are not hashed for the signature (UNSIGNED-PAYLOAD) and carry a
// CRC32C, which the server checks and returns: no SHA-256, no MD5.
func TestS3UploadsCarryCRC32C(t *testing.T) {
	t.Parallel()
	p := &s3Proxy{}
	be, direct, _ := proxied(t, p)
	for i := range 3 {
		saveAndCompare(t, be, direct, remote.Handle{Type: remote.Data, Name: "ab0" + string(rune('0'+i))}, randomObject(t, 100_000))
	}
	puts := p.seen()
	if len(puts) != 3 {
		t.Fatalf("%d PUTs for 3 objects: %+v", len(puts), puts)
	}
	for _, u := range puts {
		if u.crc32c == "" || u.md5 != "" || u.sha256 != "UNSIGNED-PAYLOAD" {
			t.Fatalf("upload headers %+v: want a CRC32C, no Content-MD5, UNSIGNED-PAYLOAD", u)
		}
	}
}

// A server that does not return the CRC32C may not have checked it: the
// object goes up again with Content-MD5, and later ones with Content-MD5
// only.
func TestS3UploadsFallBackToMD5WithoutCRCAnswer(t *testing.T) {
	t.Parallel()
	p := &s3Proxy{hideCRC: true}
	be, direct, _ := proxied(t, p)
	saveAndCompare(t, be, direct, remote.Handle{Type: remote.Data, Name: "ab01"}, randomObject(t, 50_000))
	saveAndCompare(t, be, direct, remote.Handle{Type: remote.Index, Name: "ab02"}, randomObject(t, 50_000))
	puts := p.seen()
	if len(puts) != 3 || puts[0].crc32c == "" || puts[0].md5 != "" {
		t.Fatalf("PUTs %+v: want one with a CRC32C, then two with Content-MD5", puts)
	}
	for _, u := range puts[1:] {
		if u.crc32c != "" || u.md5 == "" || u.sha256 != "UNSIGNED-PAYLOAD" {
			t.Fatalf("PUT after the fallback %+v: want Content-MD5 only, unsigned", u)
		}
	}
}

// A server that refuses the CRC32C header gets the object with Content-MD5.
func TestS3UploadsFallBackToMD5WhenCRCRefused(t *testing.T) {
	t.Parallel()
	p := &s3Proxy{refuse: func(r *http.Request) bool { return r.Header.Get("X-Amz-Checksum-Crc32c") != "" }}
	be, direct, _ := proxied(t, p)
	saveAndCompare(t, be, direct, remote.Handle{Type: remote.Data, Name: "ab01"}, randomObject(t, 50_000))
	if puts := p.seen(); len(puts) != 2 || puts[1].md5 == "" || puts[1].crc32c != "" {
		t.Fatalf("PUTs %+v: want a refused one with a CRC32C, then one with Content-MD5", puts)
	}
}

// A body damaged in transit is refused by the server, with either
// checksum, although the signature does not cover the body: nothing is
// stored, and a retry stores the right bytes.
func TestS3DamagedUploadRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		hideCRC bool
	}{{"crc32c", false}, {"md5", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &s3Proxy{hideCRC: tc.hideCRC}
			be, direct, u := proxied(t, p)
			if tc.hideCRC {
				// Into the Content-MD5 mode first.
				saveAndCompare(t, be, direct, remote.Handle{Type: remote.Data, Name: "ab00"}, randomObject(t, 1000))
			}
			p.damage = func(int) bool { return true }
			h := remote.Handle{Type: remote.Data, Name: "ab01"}
			data := randomObject(t, 200_000)
			if err := be.Save(context.Background(), h, data); err == nil {
				t.Fatal("save of a damaged body succeeded")
			}
			if _, err := direct.Stat(context.Background(), h); err == nil {
				t.Fatal("the damaged body was stored")
			}

			// Damage on the first attempt only: Retry stores the right bytes.
			damaged := len(p.seen()) + 1
			p.damage = func(n int) bool { return n == damaged }
			opts := s3test.Options()
			opts.Retry = true
			saveAndCompare(t, openS3(t, u, opts), direct, h, data)
			// A new backend tries a CRC32C first: without its answer, the
			// object goes up once more with Content-MD5.
			want := 1
			if tc.hideCRC {
				want = 2
			}
			if n := len(p.seen()) - damaged; n != want {
				t.Fatalf("%d PUTs after the damaged one, want %d", n, want)
			}
		})
	}
}
