package main

import (
	"testing"

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
