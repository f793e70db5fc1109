package remote

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Multipart parameters. Packs are tens of MiB, so most objects go in one
// PUT; bigger ones are split so a failed part costs 8 MiB, not the object.
const (
	s3MultipartThreshold = 32 << 20
	s3PartSize           = 8 << 20
	s3MaxParts           = 10000
	s3PartConcurrency    = 4
	// An abort must run even when the caller's context was cancelled, or
	// the uploaded parts keep costing storage until a lifecycle rule runs.
	s3AbortTimeout = 30 * time.Second
)

// Checksum modes for S3Config.Checksum.
const (
	// ChecksumWhenRequired sends checksums only where the API demands them.
	// Many S3-compatible servers reject the CRC headers that newer SDKs send
	// by default, so this is the safe default.
	ChecksumWhenRequired = "when-required"
	// ChecksumWhenSupported lets the SDK add CRC checksums to every request
	// and validate them on responses (AWS S3 and recent servers).
	ChecksumWhenSupported = "when-supported"
)

// S3Config describes an S3 repository with everything already resolved;
// Open derives it from a repository URL, flags and the environment.
type S3Config struct {
	// Endpoint is the server URL, e.g. "http://127.0.0.1:7070"; empty
	// means AWS. A custom endpoint implies path-style addressing.
	Endpoint string
	Bucket   string
	// Prefix is the key prefix of the repository inside the bucket.
	Prefix string
	// Region overrides the region of the AWS chain; with a custom endpoint
	// and no region configured anywhere, "us-east-1" is used.
	Region string
	// Profile selects an AWS shared-config profile.
	Profile string
	// Checksum is ChecksumWhenRequired (also when empty) or
	// ChecksumWhenSupported.
	Checksum string
	// AccessKey and SecretKey, when set, replace the AWS credential chain.
	AccessKey, SecretKey string
}

// S3 stores objects in an S3 bucket under a prefix:
// PREFIX/config, PREFIX/data/<first 2 hex>/<name>, PREFIX/<type>/<name>.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	region   string
	location string
	where    string // "BUCKET/PREFIX at ENDPOINT", for AccessDeniedError
	// sdkChecksums is set in ChecksumWhenSupported mode, where the SDK adds
	// its own CRC to every upload.
	sdkChecksums bool
	// md5Only is set once the server has shown it does not check CRC32C
	// (see Save); uploads then carry Content-MD5.
	md5Only atomic.Bool
}

// OpenS3 returns a backend for cfg. It makes no request: credentials are
// resolved on first use and a missing bucket shows up as ErrNotFound.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := CheckBucketName(cfg.Bucket); err != nil {
		return nil, err
	}
	location := s3Location(cfg)
	where := strings.TrimSuffix(cfg.Bucket+"/"+strings.Trim(cfg.Prefix, "/"), "/") + " at " + cmp.Or(Redact(cfg.Endpoint), "AWS")
	reqSum, respSum := aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired
	switch cfg.Checksum {
	case "", ChecksumWhenRequired:
	case ChecksumWhenSupported:
		reqSum, respSum = aws.RequestChecksumCalculationWhenSupported, aws.ResponseChecksumValidationWhenSupported
	default:
		return nil, fmt.Errorf("%s: unknown S3 checksum mode %q (want %q or %q)", location, cfg.Checksum, ChecksumWhenRequired, ChecksumWhenSupported)
	}

	loadOpts := []func(*config.LoadOptions) error{
		// The SDK's own log lines (on stderr, e.g. from the credential
		// chain) would break the one-line-per-error rule; errors carry
		// what they say.
		config.WithLogger(logging.Nop{}),
		config.WithRequestChecksumCalculation(reqSum),
		config.WithResponseChecksumValidation(respSum),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: load AWS configuration: %w", location, err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("%s: no AWS region configured: add ?region=R to the URL, set AWS_REGION or use a profile with a region", location)
		}
		// S3-compatible servers mostly ignore the region, but SigV4 needs one.
		awsCfg.Region = "us-east-1"
	}

	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// Virtual-host addressing needs wildcard DNS, which private
			// servers rarely have.
			o.UsePathStyle = true
		}
		// Retries live in one place (Retry), so attempts and timeouts are
		// predictable instead of multiplying with the SDK's own.
		o.Retryer = aws.NopRetryer{}
		// Without this the SDK logs a warning for every ranged read.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix, region: awsCfg.Region, location: location, where: where,
		sdkChecksums: cfg.Checksum == ChecksumWhenSupported}, nil
}

// s3Location is the display form of a repository; it never holds secrets.
func s3Location(cfg S3Config) string {
	p := strings.Trim(cfg.Prefix, "/")
	if cfg.Endpoint == "" {
		return "s3://" + strings.TrimSuffix(cfg.Bucket+"/"+p, "/")
	}
	return "s3:" + strings.TrimSuffix(Redact(cfg.Endpoint), "/") + "/" + strings.TrimSuffix(cfg.Bucket+"/"+p, "/")
}

// Location returns the repository URL without credentials.
func (be *S3) Location() string { return be.location }

// s3Connections is how many uploads at once suit an S3 server: a request
// waits on a round trip and the server's own writes, which others can
// overlap. Each costs a backup one pack buffer (about 16 MiB).
const s3Connections = 4

// Connections is how many uploads at once suit an S3 server.
func (be *S3) Connections() int { return s3Connections }

// s3ReadSize is a whole pack of the default size (16 MiB and its slack).
// Every request costs a round trip, the server's work to authenticate it
// and open the object (on AWS, a fee too), and versitygw copies a ranged
// read through a buffer of its own where it sends a whole object straight
// from the file: a restore that read packs in 4 MiB parts made the server
// work 3.8 times as hard as one reading whole packs.
const s3ReadSize = 18 << 20

// ReadSize is how large a read suits an S3 server: a whole pack.
func (be *S3) ReadSize() int64 { return s3ReadSize }

// key maps a handle to its object key.
func (be *S3) key(h Handle) string {
	switch {
	case h.Type == Config:
		return be.prefix + "config"
	case h.Type == Data && len(h.Name) >= 2:
		return be.prefix + "data/" + h.Name[:2] + "/" + h.Name
	default:
		return be.prefix + string(h.Type) + "/" + h.Name
	}
}

// wrapErr names the operation, object and repository; maps a missing key
// or bucket to ErrNotFound and refused credentials or rights to an
// AccessDeniedError; and shortens the SDK's text to its cause (Describe).
// The SDK's errors carry the HTTP status and the server's error code and
// message, never credentials.
func (be *S3) wrapErr(op string, h Handle, err error) error {
	return be.classify(op+" "+h.String(), err)
}

func (be *S3) classify(op string, err error) error {
	if noCredentials(err) {
		return &AccessDeniedError{Where: be.where, Op: op, NoCredentials: true, Err: err}
	}
	if code := s3DeniedCode(err); code != "" {
		return &AccessDeniedError{Where: be.where, Op: op, Code: code, Err: err}
	}
	concise := &conciseError{msg: Describe(err), err: err}
	if isS3NotFound(err) {
		return fmt.Errorf("%s in %s: %w: %w", op, be.location, ErrNotFound, concise)
	}
	return fmt.Errorf("%s in %s: %w", op, be.location, concise)
}

// isS3NotFound tells a missing key or bucket from other 404s: versitygw,
// for one, answers an unknown access key with 404 XAdminUserNotFound, which
// must not look like a missing repository. HEAD answers have no body, so
// their code is the generic "NotFound": Stat asks again with a GET.
func isS3NotFound(err error) bool {
	var st interface{ HTTPStatusCode() int }
	if !errors.As(err, &st) || st.HTTPStatusCode() != http.StatusNotFound {
		return false
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	switch apiErr.ErrorCode() {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return true
	}
	return false
}

func contentMD5(b []byte) *string {
	sum := md5.Sum(b)
	return aws.String(base64.StdEncoding.EncodeToString(sum[:]))
}

// unsignedPayload makes an upload's SigV4 signature cover its headers but
// not its body (UNSIGNED-PAYLOAD), as the SDK already does over HTTPS: over
// plain HTTP it would otherwise hash every body with SHA-256 for the
// signature, and the server hash it again to check, the largest share of
// a backup's CPU after chunking and BLAKE3. The body needs no signature:
// every object courtbak stores is authenticated by the repository key (a
// pack's blobs and header, index files, snapshots, the log) or checked
// against its name (keys, config), so storage or a network that swaps a
// body is caught on read, as for any untrusted storage (threat-model.md).
// Damage in transit is still refused by the server through Content-MD5,
// which the signature covers.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// Save uploads data to h. S3 makes an object visible only once its upload
// completes, so a failed or cancelled Save leaves the old object or none.
//
// Every upload carries a checksum of its body that the server checks
// before it stores anything, so a body damaged in transit is refused (and
// the upload retried) instead of stored: a CRC32C (x-amz-checksum-crc32c,
// about a hundredth of the CPU of MD5, which cost a backup as much CPU as
// its encryption) where the server shows it checks one, Content-MD5, which
// every S3 server checks, elsewhere. A server shows it checked the CRC32C
// by returning it in its answer; one that stores the object without
// returning it, or refuses the header, gets the same object again with
// Content-MD5, and Content-MD5 from then on.
func (be *S3) Save(ctx context.Context, h Handle, data []byte) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if len(data) > s3MultipartThreshold {
		return be.saveMultipart(ctx, h, data)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(be.bucket),
		Key:           aws.String(be.key(h)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	}
	if be.sdkChecksums || be.md5Only.Load() {
		return be.putMD5(ctx, h, in, data)
	}
	sum := crc32cBase64(data)
	in.ChecksumCRC32C = aws.String(sum)
	out, err := be.client.PutObject(ctx, in, unsignedPayload)
	switch {
	case err == nil && aws.ToString(out.ChecksumCRC32C) == sum:
		return nil
	case err == nil || checksumRefused(err):
		be.md5Only.Store(true)
		in.ChecksumCRC32C = nil
		in.Body = bytes.NewReader(data)
		return be.putMD5(ctx, h, in, data)
	default:
		return be.wrapErr("save", h, err)
	}
}

// putMD5 uploads in with Content-MD5.
func (be *S3) putMD5(ctx context.Context, h Handle, in *s3.PutObjectInput, data []byte) error {
	in.ContentMD5 = contentMD5(data)
	if _, err := be.client.PutObject(ctx, in, unsignedPayload); err != nil {
		return be.wrapErr("save", h, err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cBase64 is the value of an x-amz-checksum-crc32c header: the
// big-endian CRC32C of b, in base64.
func crc32cBase64(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(b, castagnoli))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checksumRefused reports whether a server answered an upload with a
// CRC32C by refusing the request itself (400 or 501 for an unknown
// header), not by finding the body damaged (BadDigest and its kin, which
// Retry repeats).
func checksumRefused(err error) bool {
	var st interface{ HTTPStatusCode() int }
	if !errors.As(err, &st) || (st.HTTPStatusCode() != http.StatusBadRequest && st.HTTPStatusCode() != http.StatusNotImplemented) {
		return false
	}
	var apiErr smithy.APIError
	return !errors.As(err, &apiErr) || !s3TransientCodes[apiErr.ErrorCode()]
}

func (be *S3) saveMultipart(ctx context.Context, h Handle, data []byte) error {
	key := be.key(h)
	created, err := be.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(be.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return be.wrapErr("save (start multipart upload)", h, err)
	}
	partSize := max(s3PartSize, (len(data)+s3MaxParts-1)/s3MaxParts)
	parts, err := be.uploadParts(ctx, key, created.UploadId, data, partSize)
	if err == nil {
		_, err = be.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(be.bucket),
			Key:             aws.String(key),
			UploadId:        created.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		if err == nil {
			return nil
		}
		err = fmt.Errorf("complete multipart upload: %w", err)
	}
	abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
	defer cancel()
	if _, abortErr := be.client.AbortMultipartUpload(abortCtx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(be.bucket),
		Key:      aws.String(key),
		UploadId: created.UploadId,
	}); abortErr != nil {
		err = errors.Join(err, fmt.Errorf("abort multipart upload %s: %w", aws.ToString(created.UploadId), abortErr))
	}
	return be.wrapErr("save", h, err)
}

// uploadParts uploads the parts of data concurrently and returns them in
// order; the first error cancels the parts still running.
func (be *S3) uploadParts(ctx context.Context, key string, uploadID *string, data []byte, partSize int) ([]types.CompletedPart, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
		wg    sync.WaitGroup
		sem   = make(chan struct{}, s3PartConcurrency)
	)
	for num, off := int32(1), 0; off < len(data); num, off = num+1, off+partSize {
		part := data[off:min(off+partSize, len(data))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := be.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:        aws.String(be.bucket),
				Key:           aws.String(key),
				UploadId:      uploadID,
				PartNumber:    aws.Int32(num),
				Body:          bytes.NewReader(part),
				ContentLength: aws.Int64(int64(len(part))),
				ContentMD5:    contentMD5(part),
			}, unsignedPayload)
			if err != nil {
				cancel(fmt.Errorf("upload part %d: %w", num, err))
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	return parts, nil
}

// Load reads length bytes of h from offset (length 0: to the end) with one
// ranged GET.
func (be *S3) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if offset < 0 || length < 0 {
		return fmt.Errorf("load %s: invalid range offset %d length %d", h, offset, length)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(be.bucket), Key: aws.String(be.key(h))}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := be.client.GetObject(ctx, in)
	if err != nil {
		return be.wrapErr("load", h, err)
	}
	defer out.Body.Close()
	// A server that ignores Range sends the whole object from byte 0,
	// which must not be mistaken for the requested range.
	if in.Range != nil && out.ContentRange == nil {
		return fmt.Errorf("load %s in %s: server ignored range %s", h, be.location, *in.Range)
	}
	if length == 0 && out.ContentLength != nil && *out.ContentLength >= 0 {
		return fn(withSize{out.Body, *out.ContentLength})
	}
	return fn(out.Body)
}

// Stat returns the size of h.
func (be *S3) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	if err := checkHandle(h); err != nil {
		return ObjectInfo{}, err
	}
	out, err := be.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(be.bucket), Key: aws.String(be.key(h))})
	if err != nil {
		return ObjectInfo{}, be.wrapErr("stat", h, be.headError(ctx, h, err))
	}
	return ObjectInfo{Handle: h, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// headError returns the real error behind a failed HEAD. A HEAD answer has
// no body, so a 403 or 404 says neither why nor what is missing: a wrong
// secret, an unknown access key (versitygw answers 404), a missing bucket
// and a missing key look alike. A one-byte GET of the same key answers
// with the server's error code, which tells them apart. Only an answer
// that names a missing key or bucket makes the object missing.
func (be *S3) headError(ctx context.Context, h Handle, headErr error) error {
	var st interface{ HTTPStatusCode() int }
	if !errors.As(headErr, &st) || (st.HTTPStatusCode() != http.StatusNotFound && st.HTTPStatusCode() != http.StatusForbidden) {
		return headErr
	}
	out, err := be.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(be.bucket), Key: aws.String(be.key(h)), Range: aws.String("bytes=0-0"),
	})
	if err == nil {
		out.Body.Close()
		// The object appeared between the two requests: a retry's next
		// HEAD sees it.
		return &classified{err: fmt.Errorf("%w (but a GET found the object)", headErr), transient: true}
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() == "InvalidRange" {
		// No better answer (or an empty object, which exists): keep the
		// HEAD's, which is not missing unless it was a 404.
		return headErr
	}
	return err
}

// List calls fn for every object of type t in key order, which for our
// layout is ascending name order. Keys that do not fit the layout (folder
// markers left by other tools, for instance) are skipped.
func (be *S3) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	if t == Config {
		fi, err := be.Stat(ctx, Handle{Type: Config, Name: "config"})
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	typePrefix := be.prefix + string(t) + "/"
	pages := s3.NewListObjectsV2Paginator(be.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(be.bucket),
		Prefix: aws.String(typePrefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return be.classify("list "+string(t), err)
		}
		for _, obj := range page.Contents {
			name, ok := listedName(t, strings.TrimPrefix(aws.ToString(obj.Key), typePrefix))
			if !ok {
				continue
			}
			if err := fn(ObjectInfo{Handle: Handle{Type: t, Name: name}, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// listedName extracts the object name from a key relative to its type
// prefix: "ab/abcd…" for data, "abcd…" for the other types.
func listedName(t Type, rel string) (string, bool) {
	if t == Data {
		dir, name, ok := strings.Cut(rel, "/")
		if ok && len(name) >= 2 && name[:2] == dir && !strings.Contains(name, "/") {
			return name, true
		}
		// Names shorter than two characters have no subdirectory.
		return rel, len(rel) == 1
	}
	return rel, rel != "" && !strings.Contains(rel, "/")
}

// Remove deletes h. S3 answers success for a missing key; some compatible
// servers answer 404, which is not an error either.
func (be *S3) Remove(ctx context.Context, h Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	_, err := be.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(be.bucket), Key: aws.String(be.key(h))})
	if err != nil && !isS3NotFound(err) {
		return be.wrapErr("remove", h, err)
	}
	return nil
}

// CreateBucketIfMissing creates the bucket when the server says it does not
// exist. A 403 on the check is taken as "exists, but these credentials may
// not inspect it" (write-only keys); real permission problems surface on the
// first write.
func (be *S3) CreateBucketIfMissing(ctx context.Context) error {
	_, err := be.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(be.bucket)})
	if err == nil {
		return nil
	}
	var st interface{ HTTPStatusCode() int }
	if !errors.As(err, &st) {
		return be.classify("check bucket", err)
	}
	switch st.HTTPStatusCode() {
	case http.StatusForbidden:
		return nil
	case http.StatusNotFound:
	default:
		return be.classify("check bucket", err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(be.bucket)}
	// us-east-1 is the one region that must not be named as a constraint.
	if be.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(be.region),
		}
	}
	if _, err := be.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil
		}
		return be.classify("create bucket", err)
	}
	return nil
}

// Foreign returns up to a few keys or key prefixes directly under the
// repository's prefix that are not part of a repository, from one listing
// request: a repository has at most six names there.
func (be *S3) Foreign(ctx context.Context) ([]string, error) {
	out, err := be.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:    aws.String(be.bucket),
		Prefix:    aws.String(be.prefix),
		Delimiter: aws.String("/"),
		MaxKeys:   aws.Int32(100),
	})
	if err != nil {
		if isS3NotFound(err) {
			return nil, nil // no bucket yet
		}
		return nil, fmt.Errorf("look into %s: %w", be.location, err)
	}
	var names []string
	add := func(key string) {
		name := strings.TrimPrefix(key, be.prefix)
		if !layoutName(strings.TrimSuffix(name, "/")) && len(names) < maxForeign {
			names = append(names, name)
		}
	}
	for _, p := range out.CommonPrefixes {
		add(aws.ToString(p.Prefix))
	}
	for _, o := range out.Contents {
		add(aws.ToString(o.Key))
	}
	return names, nil
}

// Close releases nothing; the HTTP client's idle connections time out.
func (be *S3) Close() error { return nil }
