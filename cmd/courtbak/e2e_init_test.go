package main_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/courtbak/courtbak/remote/s3test"
)

// init refuses a directory or S3 prefix that holds something other than a
// repository (an operator's typo, e.g. --repo /srv/recordings), and
// changes nothing there. A key left by an interrupted init is not in the
// way.
func TestInitRefusesANonEmptyLocationThatIsNoRepository(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		e := newLocalEnv(t)
		if err := os.MkdirAll(e.repo, 0o755); err != nil {
			t.Fatal(err)
		}
		foreign := filepath.Join(e.repo, "room2-0930.mp4")
		if err := os.WriteFile(foreign, []byte("a recording"), 0o644); err != nil {
			t.Fatal(err)
		}
		checkInitRefused(t, e, "room2-0930.mp4")
		if entries, _ := os.ReadDir(e.repo); len(entries) != 1 {
			t.Errorf("init left %d entries in the directory", len(entries))
		}
		if err := os.Remove(foreign); err != nil {
			t.Fatal(err)
		}
		// What an interrupted init leaves: a key file and nothing else.
		if err := os.MkdirAll(filepath.Join(e.repo, "keys"), 0o700); err != nil {
			t.Fatal(err)
		}
		e.init()
	})
	t.Run("s3", func(t *testing.T) {
		e := newS3Env(t)
		endpoint, _, _ := s3test.Server(t)
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(e.repo, "s3:"+endpoint+"/"), "/")
		client := s3test.Client(endpoint)
		_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(prefix + "/room2-0930.mp4"), Body: bytes.NewReader([]byte("a recording")),
		})
		if err != nil {
			t.Fatal(err)
		}
		checkInitRefused(t, e, "room2-0930.mp4")
		if len(storedObjects(t, e)) != 0 {
			t.Error("init wrote objects next to the foreign one")
		}
	})
}

func checkInitRefused(t *testing.T, e *env, name string) {
	t.Helper()
	r := e.run("init", "--kdf-memory", "8192", "--kdf-time", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "not empty") || !strings.Contains(r.stderr, name) {
		t.Errorf("init in a non-empty location: exit %d, stderr %q", r.code, r.stderr)
	}
}
