package remote_test

import (
	"context"
	"testing"

	"github.com/courtbak/courtbak/remote"
)

// An S3 repository takes four uploads at once (a backup's parallel pack
// uploads), through the retry and rate-limit wrappers Open adds.
func TestS3Connections(t *testing.T) {
	be, err := remote.Open(context.Background(), "s3:http://127.0.0.1:9/bucket/repo", remote.Options{
		S3AccessKey: "key", S3SecretKey: "secret", Retry: true, LimitUploadKiB: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := remote.Connections(be); got != 4 {
		t.Errorf("Connections = %d, want 4", got)
	}
}
