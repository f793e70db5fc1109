package remote_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/courtbak/courtbak/remote"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/repo":                             "/srv/repo",
		"s3://bucket/p":                         "s3://bucket/p",
		"s3://AKIA:secret@bucket/p":             "s3://bucket/p",
		"s3:http://AKIA:secret@host:9000/bkt/p": "s3:http://host:9000/bkt/p",
		"s3:https://user@host/bkt?profile=x":    "s3:https://host/bkt?profile=x",
		"https://host/path@x":                   "https://host/path@x",
	} {
		if got := remote.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// The endpoint in the URL wins over the option; Open reads no environment
// variable for it (the CLI does, and passes it in the option).
func TestOpenEndpointPrecedence(t *testing.T) {
	ctx := context.Background()
	location := func(url string, opts remote.Options) string {
		t.Helper()
		be, err := remote.Open(ctx, url, opts)
		if err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		return be.Location()
	}
	flag := remote.Options{S3Endpoint: "http://flag:3"}
	for _, tc := range []struct {
		url  string
		opts remote.Options
		want string
	}{
		{"s3:http://url:4/bkt/p", flag, "s3:http://url:4/bkt/p"},
		{"s3://bkt/p", flag, "s3:http://flag:3/bkt/p"},
		{"s3://bkt/p", remote.Options{S3Endpoint: "rgw.example:8443"}, "s3:https://rgw.example:8443/bkt/p"},
	} {
		if got := location(tc.url, tc.opts); got != tc.want {
			t.Errorf("open %s with %+v: location %q, want %q", tc.url, tc.opts, got, tc.want)
		}
	}
	if _, err := remote.Open(ctx, "s3://bkt/p", remote.Options{S3Endpoint: "http://k:topsecret@host:1"}); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("endpoint with credentials: %v", err)
	}
}

func TestOpenChecksumMode(t *testing.T) {
	ctx := context.Background()
	url := "s3:http://127.0.0.1:1/bkt/p"
	if _, err := remote.Open(ctx, url, remote.Options{S3Checksum: "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("bad checksum mode: got %v", err)
	}
	for _, mode := range []string{"", remote.ChecksumWhenRequired, remote.ChecksumWhenSupported} {
		if _, err := remote.Open(ctx, url, remote.Options{S3Checksum: mode}); err != nil {
			t.Errorf("checksum mode %q: %v", mode, err)
		}
	}
}

func TestOpenWrappers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		url  string
		opts remote.Options
		want string
	}{
		{dir, remote.Options{Retry: true}, "*remote.Local"},
		{"file://" + dir, remote.Options{LimitDownloadKiB: 10}, "*remote.Limiter > *remote.Local"},
		{"s3:http://127.0.0.1:1/bkt/p", remote.Options{}, "*remote.S3"},
		{"s3:http://127.0.0.1:1/bkt/p", remote.Options{Retry: true, LimitUploadKiB: 10}, "*remote.Limiter > *remote.Retry > *remote.S3"},
		{"s3:http://127.0.0.1:1/bkt/p", remote.Options{Retry: true, Adaptive: true, LimitUploadKiB: 10}, "*remote.Limiter > *remote.Adaptive > *remote.Retry > *remote.S3"},
		{dir, remote.Options{Retry: true, Adaptive: true}, "*remote.Local"},
	} {
		be, err := remote.Open(ctx, tc.url, tc.opts)
		if err != nil {
			t.Fatalf("open %s: %v", tc.url, err)
		}
		var chain []string
		for {
			chain = append(chain, fmt.Sprintf("%T", be))
			u, ok := be.(remote.Wrapper)
			if !ok {
				break
			}
			be = u.Unwrap()
		}
		if got := strings.Join(chain, " > "); got != tc.want {
			t.Errorf("open %s with %+v: %s, want %s", tc.url, tc.opts, got, tc.want)
		}
	}
	// Local has no bucket to create.
	if err := remote.CreateBucketIfMissing(ctx, newLocal(t)); err != nil {
		t.Fatal(err)
	}
}
