package main_test

import (
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courtbak/courtbak/remote/s3test"
)

// withEnv returns a copy of environ with the variables in set replaced.
func withEnv(environ []string, set ...string) []string {
	out := make([]string, 0, len(environ)+len(set))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, s := range set {
			if strings.HasPrefix(s, name+"=") {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// jsonError parses stderr as exactly one JSON error line.
func jsonError(t *testing.T, r result) (msg string, code int) {
	t.Helper()
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 || r.stderr == "" {
		t.Fatalf("--json: want one line on stderr, got %q", r.stderr)
	}
	var out struct {
		Error    string `json:"error"`
		ExitCode *int   `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(r.stderr), &out); err != nil || out.ExitCode == nil || out.Error == "" {
		t.Fatalf("--json: stderr %q is not {\"error\":…,\"exit_code\":…}: %v", r.stderr, err)
	}
	if *out.ExitCode != r.code {
		t.Errorf("--json: exit_code %d in %q, but the process exited %d", *out.ExitCode, r.stderr, r.code)
	}
	return out.Error, *out.ExitCode
}

// Wrong S3 credentials are "access denied" (exit 1), never a missing
// repository (exit 10), never a suggestion to run init, and neither the
// secret given nor the right one is ever printed.
func TestS3WrongCredentialsAreAccessDenied(t *testing.T) {
	endpoint, access, secret := s3test.Server(t)
	e := newS3Env(t)
	e.init()
	bucketAndPrefix := strings.TrimPrefix(e.repo, "s3:"+endpoint+"/")
	const wrongSecret = "wr0ngSecretThatMustNeverBePrinted"
	for _, tc := range []struct {
		name string
		set  []string
		code string // the server's code in the message
	}{
		{"wrong secret", []string{"AWS_SECRET_ACCESS_KEY=" + wrongSecret}, "SignatureDoesNotMatch"},
		{"wrong access key", []string{"AWS_ACCESS_KEY_ID=AKIAWRONG0000000", "AWS_SECRET_ACCESS_KEY=" + wrongSecret}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := withEnv(e.environ(), tc.set...)
			for _, args := range [][]string{{"snapshots"}, {"verify", "--keyless"}, {"backup", t.TempDir()}, {"init"}} {
				r := e.runEnv(environ, append([]string{"--repo", e.repo}, args...)...)
				if r.code != 1 {
					t.Errorf("%v: exit %d, want 1: %s", args, r.code, r.stderr)
				}
				last := lastLine(r.stderr)
				if !strings.Contains(last, "access denied for "+bucketAndPrefix+" at "+endpoint) || !strings.Contains(last, "check the access key and secret") || !strings.Contains(last, tc.code) {
					t.Errorf("%v: %q does not say access denied for the bucket at the endpoint", args, last)
				}
				if strings.Contains(r.stderr, "init") && args[0] != "init" || strings.Contains(r.stderr, "does not exist") {
					t.Errorf("%v: wrong credentials read as a missing repository: %q", args, r.stderr)
				}
				for _, s := range []string{wrongSecret, secret} {
					if strings.Contains(r.stdout+r.stderr, s) {
						t.Errorf("%v: a secret appears in the output", args)
					}
				}
			}
			r := e.runEnv(environ, "--repo", e.repo, "--json", "snapshots")
			if msg, code := jsonError(t, r); code != 1 || !strings.HasPrefix(msg, "access denied for ") {
				t.Errorf("--json: %q, exit_code %d", msg, code)
			}
		})
	}
	// Right credentials, no repository under this prefix: that is sure
	// absence, exit 10 with the advice.
	missing := *e
	missing.repo = e.repo + "-elsewhere"
	r := missing.run("snapshots")
	if r.code != 10 || !strings.Contains(r.stderr, "create it with 'courtbak init'") {
		t.Errorf("missing repository: exit %d %q", r.code, r.stderr)
	}
	_ = access
}

// A closed port: one line per failure, no SDK dump, and the command gives
// up after a few quick attempts instead of the full retry budget.
func TestS3UnreachableEndpointFailsFastOnOneLineEach(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now refused
	e := newLocalEnv(t)
	e.repo = "s3:http://" + addr + "/courts/city-a"
	e.extra = []string{"AWS_ACCESS_KEY_ID=AKIATEST", "AWS_SECRET_ACCESS_KEY=secretNeverShown"}
	start := time.Now()
	r := e.run("snapshots")
	took := time.Since(start)
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	want := []string{
		"courtbak: cannot reach " + addr + ": connection refused; retrying in ",
		"courtbak: cannot reach " + addr + ": connection refused; retrying in ",
		"courtbak: open repository: ",
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %q", len(want), r.stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to begin %q", i+1, lines[i], w)
		}
	}
	if !strings.HasSuffix(lines[0], "(attempt 2 of 3)") || !strings.HasSuffix(lines[1], "(attempt 3 of 3)") {
		t.Errorf("retry lines do not count the attempts: %q", r.stderr)
	}
	if !strings.Contains(lines[2], "cannot reach "+addr+": connection refused") || !strings.Contains(lines[2], "check the endpoint") || strings.Contains(lines[2], "operation error") {
		t.Errorf("final line: %q", lines[2])
	}
	if strings.Contains(r.stderr, "secretNeverShown") || strings.Contains(r.stderr, "does not exist") {
		t.Errorf("stderr: %q", r.stderr)
	}
	// Three attempts wait two backoffs of at most 1 s and 2 s: a bound
	// that only a run using the full retry budget (minutes) breaks.
	if took > 30*time.Second {
		t.Errorf("took %v to give up on a closed port", took)
	}
}

// An invalid bucket name is refused with the rule before any request.
func TestInvalidBucketNameRefusedBeforeAnyRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	e := newLocalEnv(t)
	e.extra = []string{"AWS_ACCESS_KEY_ID=AKIATEST", "AWS_SECRET_ACCESS_KEY=secret"}
	for _, bucket := range []string{"dr", "Courts", "court_a", "-dr-pool", "10.0.0.1", strings.Repeat("x", 64)} {
		e.repo = "s3:http://" + ln.Addr().String() + "/" + bucket + "/city-a"
		r := e.run("init")
		if r.code != 1 || !strings.Contains(r.stderr, "invalid S3 bucket name") || !strings.Contains(r.stderr, "3 to 63 characters: lowercase letters, digits, '.' and '-'") {
			t.Errorf("bucket %q: exit %d %q", bucket, r.code, r.stderr)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections made for invalid bucket names", n)
	}
}

// With --json every error is one JSON line on stderr carrying the exit
// code: flag errors, unknown commands, password errors, missing
// repositories, wrong passwords.
func TestJSONErrorsAreOneLineWithTheExitCode(t *testing.T) {
	e := newLocalEnv(t)
	missing := e.run("--json", "snapshots")
	if msg, code := jsonError(t, missing); code != 10 || !strings.Contains(msg, "repository does not exist") {
		t.Errorf("missing repository: %q %d", msg, code)
	}
	e.init()
	wrong := *e
	wrong.password = "not-the-password-xyzzy"
	for _, tc := range []struct {
		env      *env
		args     []string
		code     int
		contains string
	}{
		{e, []string{"--bogus", "--json", "snapshots"}, 1, "unknown flag: --bogus"},
		{e, []string{"snapshots", "--json", "--keep-last", "x"}, 1, "unknown flag"},
		{e, []string{"--json", "snapshot"}, 1, `unknown command "snapshot"`},
		{e, []string{"--json", "restore", "latest"}, 1, "--target"},
		{&wrong, []string{"--json", "snapshots"}, 12, "wrong password"},
		{e, []string{"--json", "--retries", "0", "snapshots"}, 1, "--retries"},
	} {
		r := tc.env.run(tc.args...)
		msg, code := jsonError(t, r)
		if code != tc.code || !strings.Contains(msg, tc.contains) {
			t.Errorf("%v: %q exit_code %d, want %d and %q", tc.args, msg, code, tc.code, tc.contains)
		}
		if strings.Contains(r.stderr+r.stdout, wrong.password) || strings.Contains(r.stderr+r.stdout, e.password) {
			t.Errorf("%v: a password appears in the output", tc.args)
		}
	}
	// No password source and no terminal.
	r := e.runEnv([]string{"PATH=/usr/bin:/bin", "HOME=" + e.home}, "--repo", e.repo, "--json", "snapshots")
	if msg, code := jsonError(t, r); code != 1 || !strings.Contains(msg, "no password") {
		t.Errorf("no password: %q %d", msg, code)
	}
	// --json=false after --json: prose again.
	if r := e.run("--json", "--json=false", "snapshot"); strings.HasPrefix(r.stderr, "{") {
		t.Errorf("--json=false: %q", r.stderr)
	}
}

// A mistyped command gets cobra's suggestion, laid out as cobra does.
func TestMistypedCommandSuggestsTheRightOne(t *testing.T) {
	e := newLocalEnv(t)
	r := e.run("snapshot")
	want := "courtbak: unknown command \"snapshot\" for \"courtbak\"\n\nDid you mean this?\n\tsnapshots\n\nRun 'courtbak --help' for usage.\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	// A mistyped subcommand of a group is an error too, not its help
	// with exit 0.
	r = e.run("key", "lst")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown command \"lst\" for \"courtbak key\"\n\nDid you mean this?\n\tlist\n") {
		t.Errorf("key lst: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run("key"); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "Available Commands") {
		t.Errorf("key alone: exit %d, %q", r.code, r.stdout+r.stderr)
	}
}
