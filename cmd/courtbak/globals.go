package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/courtbak/courtbak/cmd/courtbak/config"
	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// globals holds the global flags and the process's streams.
type globals struct {
	repoURL         string
	replicas        []string
	passwordFile    string
	passwordCommand string
	json            bool
	quiet           bool
	cacheDir        string
	limitUpload     int
	limitDownload   int
	s3Endpoint      string
	s3Checksum      string
	retries         int
	profileName     string
	configFile      string
	// profile is the --profile in use, nil without one.
	profile        *config.Profile
	stdout, stderr io.Writer
	stdin          *os.File
	storeCtx       context.Context
	outMu          sync.Mutex
	retried        map[string]time.Time // failure and attempt → when last reported
	metricsFile    string
	// metrics collects what the command counted, for --metrics-file.
	metrics runMetrics

	// maxTreeDepth and maxEntries bound walks through snapshot trees.
	maxTreeDepth int
	maxEntries   int64

	// readOnly is set for the read commands, which fail over to the
	// replicas.
	readOnly bool
	// failover is the read commands' storage when --replica is given.
	failover *remote.Failover
}

func (g *globals) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&g.repoURL, "repo", "r", os.Getenv("COURTBAK_REPOSITORY"), "repository `URL` (env COURTBAK_REPOSITORY)")
	f.StringArrayVar(&g.replicas, "replica", splitList(os.Getenv("COURTBAK_REPLICAS")), "replica repository `URL`, repeatable, in priority order (env COURTBAK_REPLICAS, comma-separated)")
	f.StringVar(&g.passwordFile, "password-file", os.Getenv("COURTBAK_PASSWORD_FILE"), "read the password from `FILE` (env COURTBAK_PASSWORD_FILE)")
	f.StringVar(&g.passwordCommand, "password-command", os.Getenv("COURTBAK_PASSWORD_COMMAND"), "read the password from the output of `CMD` (env COURTBAK_PASSWORD_COMMAND)")
	f.BoolVar(&g.json, "json", false, "machine-readable output on stdout")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "print errors only")
	f.StringVar(&g.cacheDir, "cache-dir", os.Getenv("COURTBAK_CACHE_DIR"), "local cache `DIR` (env COURTBAK_CACHE_DIR)")
	f.IntVar(&g.limitUpload, "limit-upload", 0, "limit uploads to `KiB/s` (0: unlimited)")
	f.IntVar(&g.limitDownload, "limit-download", 0, "limit downloads to `KiB/s` (0: unlimited)")
	f.StringVar(&g.s3Endpoint, "s3-endpoint", "", "S3 endpoint `URL` for s3:// repositories (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS)")
	f.IntVar(&g.retries, "retries", 8, "`N` attempts per S3 request before giving up (1: no retries)")
	f.StringVar(&g.metricsFile, "metrics-file", os.Getenv("COURTBAK_METRICS_FILE"), "after the command, write Prometheus metrics to `PATH` for node_exporter's textfile collector (env COURTBAK_METRICS_FILE)")
	f.IntVar(&g.maxTreeDepth, "max-tree-depth", snapshot.DefaultLimits.MaxDepth, "stop a walk through a snapshot's tree (ls, diff, restore, verify) deeper than `N` directories")
	f.Int64Var(&g.maxEntries, "max-entries", snapshot.DefaultLimits.MaxEntries, "stop a walk through a snapshot's tree (ls, diff, restore, verify) after `N` entries")
	f.StringVar(&g.s3Checksum, "s3-checksum", "", "S3 request checksums: `MODE` is when-required (default; works with most self-hosted servers) or when-supported (env COURTBAK_S3_CHECKSUM)")
	f.StringVar(&g.profileName, "profile", os.Getenv("COURTBAK_PROFILE"), "use the settings of profile `NAME` from the configuration file (env COURTBAK_PROFILE)")
	f.StringVar(&g.configFile, "config", os.Getenv("COURTBAK_CONFIG"), "configuration `FILE` (env COURTBAK_CONFIG; default "+config.SystemPath+", then the user's config dir)")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		g.readOnly = c.Parent() == root && readCommands[c.Name()]
		return g.applyProfile(root, c)
	}
}

// readCommands read through the replicas when the primary fails. Every
// other command (backup, verify, key, …) must see the primary alone.
var readCommands = map[string]bool{"snapshots": true, "ls": true, "restore": true, "dump": true, "diff": true, "stats": true}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Environment variables that configure storage; the remote package reads
// none itself (the AWS SDK's credential chain aside).
const (
	envEndpointS3  = "AWS_ENDPOINT_URL_S3"
	envEndpointAll = "AWS_ENDPOINT_URL"
	envS3Checksum  = "COURTBAK_S3_CHECKSUM"
)

// remoteOptions are the storage options of the flags and the environment:
// --s3-endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (an
// endpoint in the repository URL still wins); --s3-checksum, else
// COURTBAK_S3_CHECKSUM.
func (g *globals) remoteOptions() remote.Options {
	return remote.Options{
		S3Endpoint:       cmp.Or(g.s3Endpoint, os.Getenv(envEndpointS3), os.Getenv(envEndpointAll)),
		S3Checksum:       cmp.Or(g.s3Checksum, os.Getenv(envS3Checksum)),
		LimitUploadKiB:   g.limitUpload,
		LimitDownloadKiB: g.limitDownload,
		Retry:            true,
		Adaptive:         true,
		RetryPolicy: remote.RetryPolicy{
			MaxAttempts: g.retries,
			OnRetry:     g.retryNotice,
		},
	}
}

// retryNotice prints one line per failure mode and attempt: uploads
// failing together for the same reason give one line, not one each. The
// same line is printed again once retryQuiet has passed (a later outage).
func (g *globals) retryNotice(what string, attempt, limit int, err error, wait time.Duration) {
	why := remote.Describe(err)
	key := fmt.Sprintf("%s\x00%d", why, attempt)
	now := time.Now()
	g.outMu.Lock()
	if g.retried == nil {
		g.retried = map[string]time.Time{}
	}
	last, seen := g.retried[key]
	quiet := seen && now.Sub(last) < retryQuiet
	if !quiet {
		g.retried[key] = now
	}
	g.outMu.Unlock()
	if quiet {
		return
	}
	if !strings.HasPrefix(why, "cannot reach ") {
		// The host names the storage; an answer needs the request.
		why = what + ": " + why
	}
	g.warn(fmt.Sprintf("%s; retrying in %s (attempt %d of %d)", why, wait.Round(100*time.Millisecond), attempt+1, limit))
}

// retryQuiet is how long the same failure at the same attempt is not
// reported again.
const retryQuiet = 10 * time.Second

// openBackend opens the storage at url.
func (g *globals) openBackend(ctx context.Context, url string) (remote.Backend, error) {
	if url == "" {
		return nil, errors.New("no repository given: use --repo URL or set COURTBAK_REPOSITORY")
	}
	switch {
	case g.retries < 1:
		return nil, fmt.Errorf("--retries %d: give at least 1 (1 means no retries)", g.retries)
	case g.limitUpload < 0 || g.limitDownload < 0:
		return nil, errors.New("--limit-upload and --limit-download take a rate in KiB/s, 0 for no limit")
	case g.maxTreeDepth < 1 || g.maxEntries < 1:
		return nil, errors.New("--max-tree-depth and --max-entries take a positive number")
	}
	return remote.Open(ctx, url, g.remoteOptions())
}

func (g *globals) repoOptions() repo.Options {
	return repo.Options{Warn: g.warn, CacheDir: g.cachePath(), WalkLimits: snapshot.Limits{MaxDepth: g.maxTreeDepth, MaxEntries: g.maxEntries}}
}

// cachePath is --cache-dir, else the user cache directory; "" when there
// is none (then nothing is cached).
func (g *globals) cachePath() string {
	if g.cacheDir != "" {
		return g.cacheDir
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "courtbak")
	}
	return ""
}

// openRepoBackend opens --repo; for read commands with --replica given,
// as a failover over the primary and the replicas.
func (g *globals) openRepoBackend(ctx context.Context) (remote.Backend, error) {
	if !g.readOnly || len(g.replicas) == 0 {
		return g.openBackend(ctx, g.repoURL)
	}
	if g.repoURL == "" {
		return nil, errors.New("no repository given: use --repo URL (the primary) with --replica, or --repo REPLICA_URL")
	}
	f, err := remote.OpenFailover(ctx, append([]string{g.repoURL}, g.replicas...), g.remoteOptions(),
		remote.FailoverOptions{Check: repo.CheckName, Warn: g.warn})
	if err != nil {
		return nil, err
	}
	g.failover = f
	return f, nil
}

// skippedCopy is a copy the failover took out of the rotation, as
// summaries report it.
type skippedCopy struct {
	Location string `json:"location"`
	Reason   string `json:"reason"`
	Requests int    `json:"requests_skipped"`
	Out      bool   `json:"still_out"`
}

// skippedCopies lists the copies the failover skipped during the run.
func (g *globals) skippedCopies() []skippedCopy {
	if g.failover == nil {
		return nil
	}
	var out []skippedCopy
	for _, s := range g.failover.Skipped() {
		why := "unavailable"
		if s.Why != nil {
			why = s.Why.Error()
		}
		out = append(out, skippedCopy{Location: s.Location, Reason: why, Requests: s.Requests, Out: s.Out})
	}
	return out
}

// openRepo opens the repository at --repo with the password.
func (g *globals) openRepo(ctx context.Context) (*repo.Repository, error) {
	return g.openRepoKeys(ctx, false)
}

// openRepoKeys opens the repository at --repo with the password; with
// keysFromReplicas and --replica given, its config and key files are read
// through the replicas when they are damaged or lost at --repo (verify
// --repair, which then repairs them).
func (g *globals) openRepoKeys(ctx context.Context, keysFromReplicas bool) (*repo.Repository, error) {
	be, err := g.openRepoBackend(ctx)
	if err != nil {
		return nil, err
	}
	opts := g.repoOptions()
	keySource := be
	if keysFromReplicas && len(g.replicas) > 0 {
		fo, err := remote.OpenFailover(ctx, append([]string{g.repoURL}, g.replicas...), g.remoteOptions(),
			remote.FailoverOptions{Check: repo.CheckName, Warn: g.warn})
		if err != nil {
			return nil, err
		}
		opts.KeySource, keySource = fo, fo
	}
	if err := checkExists(ctx, keySource, true); err != nil {
		return nil, err
	}
	pw, err := g.password(false)
	if err != nil {
		return nil, err
	}
	if !g.readOnly && len(g.replicas) > 0 {
		// A backup reads an index file damaged at the primary from the
		// replicas (read commands fail over for every object anyway).
		if opts.IndexFallback, err = remote.OpenFailover(ctx, g.replicas, g.remoteOptions(),
			remote.FailoverOptions{Check: repo.CheckName, Warn: g.warn}); err != nil {
			return nil, err
		}
	}
	r, err := repo.Open(ctx, be, pw, opts)
	// Key derivation just used tens of MiB that the rest of the run does
	// not need: hand them back now, so they do not add to the peak.
	debug.FreeOSMemory()
	if errors.Is(err, crypto.ErrWrongPassword) {
		return nil, fmt.Errorf("%w for repository %s", crypto.ErrWrongPassword, be.Location())
	}
	return r, err
}

// checkExists fails unless a repository is stored at be. Only an answer
// that the repository's config is missing counts as absence (exit 10);
// refused credentials (an AccessDeniedError, which names the bucket and
// endpoint) or an unreachable server are reported as what they are, and
// never suggest 'courtbak init'.
func checkExists(ctx context.Context, be remote.Backend, suggestInit bool) error {
	exists, err := repo.Exists(ctx, be)
	if errors.Is(err, remote.ErrAccessDenied) {
		var ad *remote.AccessDeniedError
		if errors.As(err, &ad) {
			return ad
		}
		return err
	}
	if err != nil {
		if strings.Contains(err.Error(), be.Location()) {
			return fmt.Errorf("open repository: %w", err)
		}
		return fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	if !exists {
		if suggestInit {
			return fmt.Errorf("%s: %w (create it with 'courtbak init')", be.Location(), repo.ErrNoRepository)
		}
		return fmt.Errorf("%s: %w", be.Location(), repo.ErrNoRepository)
	}
	return nil
}

// openRepoIndexed opens the repository and loads its index.
func (g *globals) openRepoIndexed(ctx context.Context) (*repo.Repository, error) {
	r, err := g.openRepo(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	if g.readOnly {
		// Only readers may use packs no index file lists: a backup
		// deduplicating against them would make a snapshot prune can
		// break.
		if err := r.ReindexUnlisted(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// password returns the repository password from the first source given:
// --password-file, --password-command, COURTBAK_PASSWORD, else a prompt on
// a terminal. confirm asks twice (for new passwords).
func (g *globals) password(confirm bool) ([]byte, error) {
	switch {
	case g.passwordFile != "":
		b, err := os.ReadFile(g.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		return nonEmpty(trimNewline(b), "password file "+g.passwordFile)
	case g.passwordCommand != "":
		return commandPassword(g.passwordCommand)
	case os.Getenv("COURTBAK_PASSWORD") != "":
		return []byte(os.Getenv("COURTBAK_PASSWORD")), nil
	}
	return g.prompt("Repository password: ", confirm)
}

func (g *globals) prompt(label string, confirm bool) ([]byte, error) {
	if g.stdin == nil || !term.IsTerminal(int(g.stdin.Fd())) {
		return nil, errors.New("no password given and no terminal to ask on: use --password-file, --password-command or COURTBAK_PASSWORD")
	}
	fmt.Fprint(g.stderr, label)
	pw, err := term.ReadPassword(int(g.stdin.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprint(g.stderr, "Enter it again: ")
		again, err := term.ReadPassword(int(g.stdin.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the passwords do not match")
		}
	}
	return nonEmpty(pw, "the password")
}

func commandPassword(cmdline string) ([]byte, error) {
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		// The command line may hold secrets itself: do not echo it.
		return nil, fmt.Errorf("password command failed: %v", err)
	}
	return nonEmpty(trimNewline(out), "the password command's output")
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func nonEmpty(pw []byte, what string) ([]byte, error) {
	if len(pw) == 0 {
		return nil, fmt.Errorf("%s is empty", what)
	}
	return pw, nil
}

// newPassword reads a password for a new key: from the sources above, or
// asked twice on a terminal.
func (g *globals) newPassword(label string, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read new password file: %w", err)
		}
		return nonEmpty(trimNewline(b), "new password file "+file)
	}
	if v := os.Getenv("COURTBAK_NEW_PASSWORD"); v != "" {
		return []byte(v), nil
	}
	return g.prompt(label, true)
}

// printf prints normal output unless --quiet or --json.
func (g *globals) printf(format string, args ...any) {
	if g.quiet || g.json {
		return
	}
	fmt.Fprintf(g.stdout, format, args...)
}

// warn prints a one-line notice on stderr unless --quiet.
func (g *globals) warn(msg string) {
	if g.quiet {
		return
	}
	fmt.Fprintf(g.stderr, "courtbak: %s\n", msg)
}

// printJSON writes one JSON document (one line) to stdout. Safe for
// concurrent use, so streamed lines never interleave.
func (g *globals) printJSON(v any) error {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// showProgress reports whether progress bars may be drawn.
func (g *globals) showProgress() bool {
	f, ok := g.stderr.(*os.File)
	return ok && !g.quiet && !g.json && term.IsTerminal(int(f.Fd()))
}

// bytesBar returns a progress bar over n bytes (-1: unknown), or nil.
func (g *globals) bytesBar(n int64, description string) *progressbar.ProgressBar {
	if !g.showProgress() {
		return nil
	}
	return progressbar.NewOptions64(n,
		progressbar.OptionSetWriter(g.stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(true),
		// MiB and GiB, as every summary prints them.
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionThrottle(200_000_000),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)
}
