package remote

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Options configure Open. The zero value opens a bare backend.
type Options struct {
	// S3Endpoint is the server for s3://BUCKET URLs (the CLI passes
	// --s3-endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL). An
	// endpoint in the URL itself (s3:http://…) takes precedence; without
	// either, AWS.
	S3Endpoint string
	// S3Checksum is ChecksumWhenRequired or ChecksumWhenSupported; empty
	// means ChecksumWhenRequired.
	S3Checksum string
	// S3AccessKey and S3SecretKey replace the AWS credential chain when set
	// (embedding, tests); the CLI leaves them empty.
	S3AccessKey, S3SecretKey string
	// LimitUploadKiB and LimitDownloadKiB cap bandwidth in KiB/s; 0 means
	// no limit.
	LimitUploadKiB, LimitDownloadKiB int
	// Retry wraps network backends in NewRetry with RetryPolicy.
	Retry       bool
	RetryPolicy RetryPolicy
	// Adaptive bounds the Loads and Saves in flight to a network backend
	// by an AdaptiveLimit with AdaptivePolicy (see NewAdaptive).
	Adaptive       bool
	AdaptivePolicy AdaptivePolicy
}

// Open returns the backend for a repository URL (see the contract's
// "Repository URLs"), decorated with retries, an adaptive bound on the
// requests in flight and rate limits as opts ask.
// It does not check that a repository exists there, and reads no
// environment variables of its own (the AWS SDK's credential and config
// chain aside): the CLI passes them in opts.
func Open(ctx context.Context, rawURL string, opts Options) (Backend, error) {
	loc, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var be Backend
	if loc.local != "" {
		if be, err = OpenLocal(loc.local); err != nil {
			return nil, err
		}
	} else {
		cfg := loc.s3
		if cfg.Endpoint == "" {
			if cfg.Endpoint, err = checkEndpoint(opts.S3Endpoint); err != nil {
				return nil, err
			}
		}
		cfg.Checksum = opts.S3Checksum
		cfg.AccessKey, cfg.SecretKey = opts.S3AccessKey, opts.S3SecretKey
		s3be, err := OpenS3(ctx, cfg)
		if err != nil {
			return nil, err
		}
		be = s3be
		if opts.Retry {
			be = NewRetry(be, opts.RetryPolicy)
		}
		// Above the retries (see Adaptive), below the rate limit, whose
		// waits for upload budget hold no slot.
		if opts.Adaptive {
			be = NewAdaptive(be, opts.AdaptivePolicy)
		}
	}
	// The limiter goes outside the retries: it paces what the caller
	// moves, and its waits must not count against an attempt's timeout.
	if opts.LimitUploadKiB > 0 || opts.LimitDownloadKiB > 0 {
		be = NewLimiter(be, opts.LimitUploadKiB, opts.LimitDownloadKiB)
	}
	return be, nil
}

type parsedURL struct {
	local string   // directory, for local repositories
	s3    S3Config // Endpoint is set only when the URL names one
}

var (
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// bucketCharsRE is what may be echoed in an error: nothing of a
	// mistyped "KEY:SECRET@" can match it.
	bucketCharsRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ipLikeRE      = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)
)

// bucketRule is the S3 bucket naming rule, quoted in errors.
const bucketRule = "an S3 bucket name has 3 to 63 characters: lowercase letters, digits, '.' and '-', beginning and ending with a letter or digit, without '..', and not in the form of an IP address"

// CheckBucketName refuses a name that S3 does not accept as a bucket (AWS's
// rules, which Ceph RGW, MinIO and versitygw enforce too), so a mistyped
// name is reported with the rule instead of a bare "400 Bad Request".
func CheckBucketName(bucket string) error {
	if bucketRE.MatchString(bucket) && !strings.Contains(bucket, "..") && !ipLikeRE.MatchString(bucket) {
		return nil
	}
	if !bucketCharsRE.MatchString(bucket) {
		// Not echoed: "s3://KEY:SE/CRET@bucket" ends up here.
		return fmt.Errorf("invalid S3 bucket name: %s (and credentials do not belong in the URL)", bucketRule)
	}
	return fmt.Errorf("invalid S3 bucket name %q: %s", bucket, bucketRule)
}

func parseURL(raw string) (parsedURL, error) {
	switch {
	case raw == "":
		return parsedURL{}, errors.New("repository URL is empty")
	case strings.HasPrefix(raw, "file://"):
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error quotes the whole URL, credentials included.
			return parsedURL{}, fmt.Errorf("invalid repository URL %q: %w", Redact(raw), errors.Unwrap(err))
		}
		if (u.Host != "" && u.Host != "localhost") || u.Path == "" || u.User != nil {
			return parsedURL{}, fmt.Errorf("invalid repository URL %q: want file:///absolute/path", Redact(raw))
		}
		return parsedURL{local: u.Path}, nil
	case strings.HasPrefix(raw, "s3://"):
		return parseS3(raw, strings.TrimPrefix(raw, "s3://"), "")
	case strings.HasPrefix(raw, "s3:http://"), strings.HasPrefix(raw, "s3:https://"):
		scheme, rest, _ := strings.Cut(strings.TrimPrefix(raw, "s3:"), "://")
		host, rest, _ := strings.Cut(rest, "/")
		endpoint, err := checkEndpoint(scheme + "://" + host)
		if err != nil {
			return parsedURL{}, fmt.Errorf("invalid repository URL: %w", err)
		}
		return parseS3(raw, rest, endpoint)
	case strings.HasPrefix(raw, "s3:"):
		return parsedURL{}, fmt.Errorf("invalid repository URL %q: want s3://BUCKET/PREFIX or s3:http(s)://HOST:PORT/BUCKET/PREFIX", Redact(raw))
	case schemeRE.MatchString(raw):
		return parsedURL{}, fmt.Errorf("unsupported repository URL %q: use a path, file:///path, s3://BUCKET/PREFIX or s3:http(s)://HOST:PORT/BUCKET/PREFIX", Redact(raw))
	}
	return parsedURL{local: raw}, nil
}

// parseS3 parses "BUCKET/PREFIX?QUERY", the part after the endpoint.
func parseS3(raw, rest, endpoint string) (parsedURL, error) {
	bucketPath, query, _ := strings.Cut(rest, "?")
	bucket, prefix, _ := strings.Cut(bucketPath, "/")
	if strings.Contains(bucket, "@") {
		return parsedURL{}, errCredentialsInURL(raw)
	}
	if bucket == "" {
		return parsedURL{}, fmt.Errorf("invalid repository URL %q: no bucket name", Redact(raw))
	}
	if err := CheckBucketName(bucket); err != nil {
		return parsedURL{}, fmt.Errorf("invalid repository URL: %w", err)
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		if cleaned := path.Clean(prefix); cleaned != prefix || strings.HasPrefix(cleaned, "..") {
			return parsedURL{}, fmt.Errorf("invalid repository URL %q: prefix %q is not a clean path", Redact(raw), prefix)
		}
	}
	cfg := S3Config{Endpoint: endpoint, Bucket: bucket, Prefix: prefix}
	values, err := url.ParseQuery(query)
	if err != nil {
		return parsedURL{}, fmt.Errorf("invalid repository URL %q: %w", Redact(raw), err)
	}
	for k, v := range values {
		if len(v) != 1 || v[0] == "" {
			return parsedURL{}, fmt.Errorf("invalid repository URL %q: %s needs exactly one non-empty value", Redact(raw), k)
		}
		switch k {
		case "profile":
			cfg.Profile = v[0]
		case "region":
			cfg.Region = v[0]
		default:
			return parsedURL{}, fmt.Errorf("invalid repository URL %q: unknown parameter %q (known: profile, region)", Redact(raw), k)
		}
	}
	return parsedURL{s3: cfg}, nil
}

// checkEndpoint validates an S3 endpoint ("" for AWS) and adds https://
// when the scheme is missing.
func checkEndpoint(endpoint string) (string, error) {
	if endpoint == "" {
		return "", nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	if Redact(endpoint) != endpoint {
		return "", fmt.Errorf("S3 endpoint %q must not contain credentials; use ?profile= or the AWS environment", Redact(endpoint))
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		// Not echoed: a mistyped user:secret@ may be what broke it.
		return "", errors.New("invalid S3 endpoint: want http(s)://HOST[:PORT]")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", strings.Trim(u.Path, "/") != "", u.RawQuery != "":
		return "", fmt.Errorf("invalid S3 endpoint %q: want http(s)://HOST[:PORT]", Redact(endpoint))
	}
	return strings.TrimSuffix(endpoint, "/"), nil
}

func errCredentialsInURL(raw string) error {
	return fmt.Errorf("repository URL %q must not contain credentials; use ?profile= or the AWS environment", Redact(raw))
}

// Redact removes user information (user:password@) from a URL so it can be
// shown or logged. Strings without "://" are returned unchanged.
func Redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw
	}
	return raw[:i+3] + rest[at+1:]
}

// maxForeign bounds the names a backend's Foreign returns (init refuses a
// location holding names that are not a repository's): a few are enough to
// say what is there.
const maxForeign = 5

// layoutName reports whether a top-level name belongs to a repository: the
// config, a type directory, or a temporary file of an interrupted write.
func layoutName(name string) bool {
	if strings.HasPrefix(name, ".tmp-") {
		return true
	}
	for _, t := range AllTypes {
		if name == string(t) {
			return true
		}
	}
	return false
}
