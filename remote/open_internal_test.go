package remote

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in    string
		local string
		s3    S3Config
		err   string
	}{
		{in: "/srv/backup", local: "/srv/backup"},
		{in: "rel/repo", local: "rel/repo"},
		{in: "file:///srv/backup", local: "/srv/backup"},
		{in: "file://localhost/srv/b%20x", local: "/srv/b x"},
		{in: "s3://bucket/court/city", s3: S3Config{Bucket: "bucket", Prefix: "court/city"}},
		{in: "s3://bucket", s3: S3Config{Bucket: "bucket"}},
		{in: "s3://a.b-3/x", s3: S3Config{Bucket: "a.b-3", Prefix: "x"}},
		{in: "s3://bucket/p/?region=eu-west-1&profile=dr", s3: S3Config{Bucket: "bucket", Prefix: "p", Region: "eu-west-1", Profile: "dr"}},
		{in: "s3:http://127.0.0.1:7070/bkt/p", s3: S3Config{Endpoint: "http://127.0.0.1:7070", Bucket: "bkt", Prefix: "p"}},
		{in: "s3:https://rgw.example:443/bkt?profile=center", s3: S3Config{Endpoint: "https://rgw.example:443", Bucket: "bkt", Profile: "center"}},
		{in: "", err: "empty"},
		{in: "file://host/srv", err: "file:///absolute/path"},
		{in: "s3://", err: "no bucket"},
		{in: "s3:http://127.0.0.1:7070/", err: "no bucket"},
		{in: "s3:http:///bkt/p", err: "invalid S3 endpoint"},
		{in: "s3:host/bkt/p", err: "want s3://BUCKET"},
		{in: "sftp://host/path", err: "unsupported"},
		{in: "s3://bkt/p?regoin=x", err: `unknown parameter "regoin"`},
		{in: "s3://bkt/p?region=", err: "non-empty"},
		{in: "s3://bkt/a/../../x", err: "not a clean path"},
		{in: "s3://AKIA:topsecret@bkt/p", err: "must not contain credentials"},
		{in: "s3:http://AKIA:topsecret@host:1/bkt/p", err: "must not contain credentials"},
		{in: "file://u:topsecret@/srv", err: "file:///absolute/path"},
		{in: "s3://AKIA:top/secret@bkt/p", err: "bucket name"},
		{in: "s3:http://AKIA:top/secret@host:1/bkt/p", err: "invalid S3 endpoint"},
		{in: "s3://dr/city-a", err: `invalid S3 bucket name "dr": an S3 bucket name has 3 to 63 characters`},
		{in: "s3:http://127.0.0.1:7070/" + strings.Repeat("a", 64) + "/p", err: "3 to 63 characters"},
		{in: "s3://Courts/p", err: `"Courts"`},
		{in: "s3://court_a/p", err: "lowercase letters, digits, '.' and '-'"},
		{in: "s3://-courts/p", err: "beginning and ending with a letter or digit"},
		{in: "s3://courts./p", err: "beginning and ending"},
		{in: "s3://courts..a/p", err: "without '..'"},
		{in: "s3://192.168.5.4/p", err: "IP address"},
		{in: "s3://AKIAtop/p", err: `"AKIAtop"`},
	} {
		got, err := parseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseURL(%q): got %v, want error containing %q", tc.in, err, tc.err)
			} else if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "top/secret") {
				t.Errorf("parseURL(%q): error shows the secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got.local != tc.local || got.s3 != tc.s3 {
			t.Errorf("parseURL(%q) = %+v, %v; want local %q, s3 %+v", tc.in, got, err, tc.local, tc.s3)
		}
	}
}

// The region comes from the URL, else the AWS chain (here a profile), else
// us-east-1 for a custom endpoint; AWS itself needs one.
func TestOpenS3Region(t *testing.T) {
	dir := t.TempDir()
	cfg := "[profile center]\nregion = eu-central-1\n"
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(v, "")
	}
	ctx := context.Background()
	for url, want := range map[string]string{
		"s3://bkt/p?region=ap-south-1":                  "ap-south-1",
		"s3://bkt/p?profile=center":                     "eu-central-1",
		"s3://bkt/p?profile=center&region=us-west-2":    "us-west-2",
		"s3:http://127.0.0.1:1/bkt/p":                   "us-east-1",
		"s3:http://127.0.0.1:1/bkt/p?profile=center":    "eu-central-1",
		"s3:http://127.0.0.1:1/bkt/p?region=eu-north-1": "eu-north-1",
	} {
		be, err := Open(ctx, url, Options{})
		if err != nil {
			t.Errorf("open %s: %v", url, err)
			continue
		}
		if got := be.(*S3).region; got != want {
			t.Errorf("open %s: region %q, want %q", url, got, want)
		}
	}
	if _, err := Open(ctx, "s3://bkt/p", Options{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("open on AWS without a region: got %v, want an error about the region", err)
	}
}
