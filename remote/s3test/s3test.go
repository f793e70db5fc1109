// Package s3test gives tests an S3 server: the one named by the
// environment (see .ci/start-s3.sh), or a private versitygw process.
//
// Without COURTBAK_TEST_S3_ENDPOINT tests skip, unless CI is set: CI must
// never skip the S3 tests silently.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/courtbak/courtbak/remote"
)

// Environment variables naming the test server, as .ci/start-s3.sh prints
// them.
const (
	EnvEndpoint = "COURTBAK_TEST_S3_ENDPOINT"
	EnvAccess   = "COURTBAK_TEST_S3_ACCESS"
	EnvSecret   = "COURTBAK_TEST_S3_SECRET"
)

// Credentials of private servers when the environment names none.
const (
	defaultAccess = "courtbak-test"
	defaultSecret = "courtbak-test-secret-key"
)

// VersitygwModule is what StartServer asks to install when versitygw is
// missing.
const VersitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// skipOrFail skips the test, or fails it when running in CI.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	ci := os.Getenv("CI")
	if on, err := strconv.ParseBool(ci); on || (err != nil && ci != "") {
		t.Fatalf("%s (CI is set, so S3 tests must not be skipped)", msg)
	}
	t.Skip(msg)
}

// Server returns the S3 server named by the environment. Without one it
// skips the test, or fails it when CI is set.
func Server(t testing.TB) (endpoint, access, secret string) {
	t.Helper()
	endpoint = os.Getenv(EnvEndpoint)
	if endpoint == "" {
		skipOrFail(t, "no S3 server for this test: eval \"$(.ci/start-s3.sh)\" sets "+EnvEndpoint)
	}
	access, secret = os.Getenv(EnvAccess), os.Getenv(EnvSecret)
	if access == "" || secret == "" {
		t.Fatalf("%s is set but %s or %s is not", EnvEndpoint, EnvAccess, EnvSecret)
	}
	return endpoint, access, secret
}

// Credentials returns the test servers' access and secret key: those of the
// environment, else the ones StartServer uses.
func Credentials() (access, secret string) {
	access, secret = os.Getenv(EnvAccess), os.Getenv(EnvSecret)
	if access == "" || secret == "" {
		return defaultAccess, defaultSecret
	}
	return access, secret
}

// Options returns remote.Options carrying the test credentials.
func Options() remote.Options {
	access, secret := Credentials()
	return remote.Options{S3AccessKey: access, S3SecretKey: secret}
}

// Env returns the environment entries that give a courtbak process the test
// credentials, to append to os.Environ() for a command.
func Env() []string {
	access, secret := Credentials()
	return []string{"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret}
}

// Client returns a plain SDK client for endpoint with the test credentials,
// to look at what a backend stored.
func Client(endpoint string) *s3.Client {
	return s3.New(clientOptions(endpoint))
}

func clientOptions(endpoint string) s3.Options {
	access, secret := Credentials()
	return s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     "us-east-1",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
}

// NewBucketURL creates a bucket with a unique name on endpoint and returns
// the repository URL s3:ENDPOINT/BUCKET/repo. The bucket and its objects
// are deleted when the test ends (if the server still runs). Open the URL
// with Options(), or run courtbak with Env().
func NewBucketURL(t testing.TB, endpoint string) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	bucket := "courtbak-test-" + hex.EncodeToString(b[:])
	access, secret := Credentials()
	be, err := remote.OpenS3(context.Background(), remote.S3Config{
		Endpoint: endpoint, Bucket: bucket, AccessKey: access, SecretKey: secret,
	})
	if err != nil {
		t.Fatalf("open S3 bucket %s: %v", bucket, err)
	}
	if err := be.CreateBucketIfMissing(context.Background()); err != nil {
		t.Fatalf("create S3 bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		// A server stopped by the test (StartServer) took its data along.
		opts := clientOptions(endpoint)
		opts.Retryer = aws.NopRetryer{}
		if err := deleteBucket(s3.New(opts), bucket); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Logf("cleaning up S3 bucket %s: %v", bucket, err)
		}
	})
	return "s3:" + endpoint + "/" + bucket + "/repo"
}

func deleteBucket(client *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, obj := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: obj.Key}
		}
		if _, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}); err != nil {
			return err
		}
	}
	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	return err
}

// findVersitygw looks in PATH, then in the Go bin directories.
func findVersitygw() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found in PATH, $GOBIN, $GOPATH/bin or ~/go/bin")
}

// StartServer starts a private versitygw on a free port of 127.0.0.1,
// serving a fresh directory with the Credentials, and returns its endpoint
// and a function that kills it (to simulate an outage; it also runs when
// the test ends). Without versitygw the test skips, or fails under CI.
func StartServer(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		skipOrFail(t, fmt.Sprintf("%v; install it with: go install %s", err, VersitygwModule))
	}
	// The port is free when probed; another process may take it before
	// versitygw binds, so try a few.
	var lastErr error
	for range 3 {
		endpoint, stop, err := startServer(t, bin)
		if err == nil {
			t.Cleanup(stop)
			return endpoint, stop
		}
		lastErr = err
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return "", nil
}

func startServer(t testing.TB, bin string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	defer logFile.Close()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		return "", nil, err
	}
	access, secret := Credentials()
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", root)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	endpoint := "http://" + addr
	if err := waitReady(endpoint, exited); err != nil {
		stop()
		log, _ := os.ReadFile(logPath)
		return "", nil, fmt.Errorf("%w; log:\n%s", err, log)
	}
	return endpoint, stop, nil
}

// waitReady polls until the server answers HTTP (any status) or exits.
func waitReady(endpoint string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("versitygw exited")
		default:
		}
		if resp, err := client.Get(endpoint); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("versitygw did not answer within 20s")
}
