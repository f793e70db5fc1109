package remote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/remote/backendtest"
	"github.com/courtbak/courtbak/remote/s3test"
)

func openS3(t *testing.T, url string, opts remote.Options) remote.Backend {
	t.Helper()
	be, err := remote.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return be
}

// bucketOf returns the bucket of a URL from s3test.NewBucketURL.
func bucketOf(url, endpoint string) string {
	bucket, _, _ := strings.Cut(strings.TrimPrefix(url, "s3:"+endpoint+"/"), "/")
	return bucket
}

func TestS3Backend(t *testing.T) {
	endpoint, _, _ := s3test.Server(t)
	backendtest.Run(t, func(t *testing.T) remote.Backend {
		return openS3(t, s3test.NewBucketURL(t, endpoint), s3test.Options())
	})
}

// The SDK's newer CRC checksums must work too where the server has them.
func TestS3ChecksumWhenSupported(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := s3test.Server(t)
	opts := s3test.Options()
	opts.S3Checksum = remote.ChecksumWhenSupported
	be := openS3(t, s3test.NewBucketURL(t, endpoint), opts)
	for _, size := range []int{1000, backendtest.LargeObject} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		h := remote.Handle{Type: remote.Data, Name: "ab01"}
		if err := be.Save(context.Background(), h, data); err != nil {
			t.Fatalf("save %d bytes: %v", size, err)
		}
		got, err := remote.ReadAll(context.Background(), be, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("load %d bytes: %v (equal: %v)", size, err, bytes.Equal(got, data))
		}
	}
}

// Other tools (aws CLI, rclone, a replica operator's scripts) must find the
// objects at the documented keys.
func TestS3KeyLayout(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := s3test.Server(t)
	url := s3test.NewBucketURL(t, endpoint)
	be := openS3(t, url, s3test.Options())
	name := strings.Repeat("ab", 32)
	want := map[string]remote.Handle{
		"repo/config":                      {Type: remote.Config, Name: "config"},
		"repo/keys/" + name:                {Type: remote.Keys, Name: name},
		"repo/data/ab/" + name:             {Type: remote.Data, Name: name},
		"repo/index/" + name:               {Type: remote.Index, Name: name},
		"repo/snapshots/" + name:           {Type: remote.Snapshot, Name: name},
		"repo/data/ab/" + name[:62] + "cd": {Type: remote.Data, Name: name[:62] + "cd"},
	}
	for key, h := range want {
		if err := be.Save(context.Background(), h, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	bucket := bucketOf(url, endpoint)
	client := s3test.Client(endpoint)
	var keys []string
	for key := range want {
		keys = append(keys, key)
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObject %s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != key {
			t.Fatalf("GetObject %s: got %q, %v", key, got, err)
		}
	}
	list, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, obj := range list.Contents {
		listed = append(listed, aws.ToString(obj.Key))
	}
	sort.Strings(keys)
	if strings.Join(listed, " ") != strings.Join(keys, " ") {
		t.Fatalf("bucket holds %v, want %v", listed, keys)
	}
}

// Objects above the threshold go up in parts: the ETag of a multipart
// object ends in -<number of parts>.
func TestS3LargeObjectIsMultipart(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := s3test.Server(t)
	url := s3test.NewBucketURL(t, endpoint)
	be := openS3(t, url, s3test.Options())
	h := remote.Handle{Type: remote.Data, Name: "abcd"}
	if err := be.Save(context.Background(), h, make([]byte, backendtest.LargeObject)); err != nil {
		t.Fatal(err)
	}
	bucket := bucketOf(url, endpoint)
	out, err := s3test.Client(endpoint).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("repo/data/ab/abcd")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(out.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-5") {
		t.Fatalf("ETag %s: want a 5-part multipart upload", etag)
	}
}

// Server errors name the object and the server's answer, are permanent, and
// never contain the secret key.
func TestS3ErrorsNameObjectNotSecret(t *testing.T) {
	t.Parallel()
	endpoint, access, _ := s3test.Server(t)
	url := s3test.NewBucketURL(t, endpoint)
	const wrongSecret = "wrong-secret-do-not-print-0123456789"
	be := openS3(t, url, remote.Options{S3AccessKey: access, S3SecretKey: wrongSecret, Retry: true})
	h := remote.Handle{Type: remote.Index, Name: strings.Repeat("0f", 32)}
	err := be.Save(context.Background(), h, []byte("x"))
	if err == nil {
		t.Fatal("save with a wrong secret succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, wrongSecret) {
		t.Fatalf("error contains the secret key: %s", msg)
	}
	if !strings.Contains(msg, h.String()) || !strings.Contains(msg, "SignatureDoesNotMatch") || !strings.Contains(msg, "403") {
		t.Fatalf("error does not name object, status and server code: %s", msg)
	}
	if remote.IsTransient(err) {
		t.Fatalf("auth error treated as transient: %s", msg)
	}

	// An unknown access key is an error, not a missing repository (versitygw
	// answers it with a 404).
	unknown := openS3(t, url, remote.Options{S3AccessKey: "courtbak-unknown", S3SecretKey: wrongSecret})
	if err := unknown.Save(context.Background(), h, []byte("x")); err == nil || errors.Is(err, remote.ErrNotFound) || strings.Contains(err.Error(), wrongSecret) {
		t.Fatalf("save with an unknown access key: got %v, want an error other than ErrNotFound", err)
	}

	// A bucket that does not exist is a missing repository.
	missing := openS3(t, "s3:"+endpoint+"/courtbak-no-such-bucket/repo", s3test.Options())
	if _, err := missing.Stat(context.Background(), h); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("stat in a missing bucket: got %v, want ErrNotFound", err)
	}
	if err := missing.List(context.Background(), remote.Snapshot, func(remote.ObjectInfo) error { return nil }); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("list in a missing bucket: got %v, want ErrNotFound", err)
	}
}

func TestS3CreateBucketIfMissing(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := s3test.Server(t)
	url := strings.TrimSuffix(s3test.NewBucketURL(t, endpoint), "/repo") + "-new/repo"
	opts := s3test.Options()
	opts.Retry, opts.LimitUploadKiB = true, 100000
	be := openS3(t, url, opts)
	h := remote.Handle{Type: remote.Config, Name: "config"}
	if err := be.Save(context.Background(), h, []byte("c")); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("save before the bucket exists: got %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := remote.CreateBucketIfMissing(context.Background(), be); err != nil {
			t.Fatalf("create bucket (through wrappers): %v", err)
		}
	}
	if err := be.Save(context.Background(), h, []byte("c")); err != nil {
		t.Fatal(err)
	}
	// Leave no bucket behind: remove the object, then the bucket.
	if err := be.Remove(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	bucket := bucketOf(url, endpoint)
	if _, err := s3test.Client(endpoint).DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
}

// ?profile= takes credentials from the shared AWS files.
func TestS3Profile(t *testing.T) {
	endpoint, access, secret := s3test.Server(t)
	url := s3test.NewBucketURL(t, endpoint)
	dir := t.TempDir()
	creds := "[center]\naws_access_key_id = " + access + "\naws_secret_access_key = " + secret +
		"\n[dr]\naws_access_key_id = " + access + "\naws_secret_access_key = wrong\n"
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	h := remote.Handle{Type: remote.Keys, Name: "0123"}
	if err := openS3(t, url+"?profile=center", remote.Options{}).Save(context.Background(), h, []byte("k")); err != nil {
		t.Fatalf("save with profile center: %v", err)
	}
	if err := openS3(t, url+"?profile=dr", remote.Options{}).Save(context.Background(), h, []byte("k")); err == nil {
		t.Fatal("save with profile dr (wrong secret) succeeded")
	}
	if _, err := remote.Open(context.Background(), url+"?profile=nosuch", remote.Options{}); err == nil {
		t.Fatal("open with a missing profile succeeded")
	}
}
