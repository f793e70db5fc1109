package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote"
)

// The storage options come from the flags, else the environment: the
// endpoint from --s3-endpoint, else AWS_ENDPOINT_URL_S3, else
// AWS_ENDPOINT_URL; the checksum mode from --s3-checksum, else
// COURTBAK_S3_CHECKSUM. The remote package reads none of them.
func TestRemoteOptionsFromFlagsThenEnvironment(t *testing.T) {
	t.Setenv(envEndpointAll, "http://all:1")
	t.Setenv(envEndpointS3, "http://s3only:2")
	t.Setenv(envS3Checksum, remote.ChecksumWhenSupported)
	g := &globals{}
	if o := g.remoteOptions(); o.S3Endpoint != "http://s3only:2" || o.S3Checksum != remote.ChecksumWhenSupported {
		t.Errorf("from the environment: endpoint %q, checksum %q", o.S3Endpoint, o.S3Checksum)
	}
	t.Setenv(envEndpointS3, "")
	if o := g.remoteOptions(); o.S3Endpoint != "http://all:1" {
		t.Errorf("with AWS_ENDPOINT_URL only: endpoint %q", o.S3Endpoint)
	}
	g.s3Endpoint, g.s3Checksum = "http://flag:3", remote.ChecksumWhenRequired
	if o := g.remoteOptions(); o.S3Endpoint != "http://flag:3" || o.S3Checksum != remote.ChecksumWhenRequired {
		t.Errorf("flags: endpoint %q, checksum %q", o.S3Endpoint, o.S3Checksum)
	}
	t.Setenv(envEndpointAll, "")
	t.Setenv(envS3Checksum, "")
	g.s3Endpoint, g.s3Checksum = "", ""
	if o := g.remoteOptions(); o.S3Endpoint != "" || o.S3Checksum != "" {
		t.Errorf("nothing set: endpoint %q, checksum %q", o.S3Endpoint, o.S3Checksum)
	}
}

// Retry notices: uploads failing together for one reason give one line per
// attempt; the same failure is reported again once retryQuiet has passed.
func TestRetryNoticeOneLinePerFailureAndAttempt(t *testing.T) {
	var out strings.Builder
	g := &globals{stderr: &out}
	slow := errors.New("HTTP 503 SlowDown")
	for range 4 {
		g.retryNotice("save data/ab", 1, 8, slow, time.Second)
	}
	g.retryNotice("save data/cd", 2, 8, slow, 2*time.Second)
	g.retryNotice("save data/cd", 1, 8, errors.New("other"), time.Second)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "(attempt 2 of 8)") || !strings.HasSuffix(lines[1], "(attempt 3 of 8)") {
		t.Fatalf("got %q", out.String())
	}
	// A later outage with the same failure is reported again.
	for k := range g.retried {
		g.retried[k] = g.retried[k].Add(-retryQuiet)
	}
	g.retryNotice("save data/ef", 1, 8, slow, time.Second)
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Errorf("a later outage was not reported: %q", out.String())
	}
}
