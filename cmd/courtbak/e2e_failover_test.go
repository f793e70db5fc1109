package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A copy whose S3 server answers 500 to everything (as one shutting down
// does) is given up on after a few attempts for the whole restore, not
// after every request's retries: the restore reads from the next copy,
// and its summary names the copy it skipped.
func TestRestoreSkipsACopyAnswering500(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>shutting down</Message></Error>`))
	}))
	defer srv.Close()
	failing := "s3:" + srv.URL + "/courtbak/repo"

	e := newLocalEnv(t)
	e.init()
	src := generate(t, 31, 12<<20)
	e.backup(src)

	environ := append(e.environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret")
	target := t.TempDir()
	start := time.Now()
	r := e.runEnv(environ, "--repo", failing, "--replica", e.repo, "restore", "latest", "--target", target, "--json")
	elapsed := time.Since(start)
	if r.code != 0 {
		t.Fatalf("restore with a primary answering 500: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	compareTrees(t, src, restoredPath(target, src))
	t.Logf("restore with a primary answering 500 took %v, %d requests to it; stderr:\n%s", elapsed.Round(time.Millisecond), requests.Load(), r.stderr)

	// Three failed attempts open the breaker; requests already started
	// may each add one.
	if n := requests.Load(); n > 12 {
		t.Errorf("the failing copy got %d requests", n)
	}
	if !strings.Contains(r.stderr, failing+" failed 3 times in a row") || !strings.Contains(r.stderr, "reading from the next copy") {
		t.Errorf("stderr does not say the copy was skipped:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "test-secret") {
		t.Errorf("stderr holds the S3 secret:\n%s", r.stderr)
	}
	var summary struct {
		Files   int `json:"files_restored"`
		Skipped []struct {
			Location string `json:"location"`
			Reason   string `json:"reason"`
			Requests int    `json:"requests_skipped"`
		} `json:"copies_skipped"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &summary); err != nil {
		t.Fatalf("restore --json: %v: %q", err, r.stdout)
	}
	if len(summary.Skipped) != 1 || summary.Skipped[0].Location != failing || summary.Skipped[0].Requests == 0 ||
		!strings.Contains(summary.Skipped[0].Reason, "500") {
		t.Errorf("copies_skipped: %+v", summary.Skipped)
	}
}
