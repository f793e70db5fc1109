package remote

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/aws/smithy-go"
)

// ErrAccessDenied is returned (wrapped) when storage refuses a request for
// want of valid credentials or rights. It is never ErrNotFound: wrong
// credentials must not read as a missing repository.
var ErrAccessDenied = errors.New("access denied")

// AccessDeniedError is storage refusing the credentials or a request.
type AccessDeniedError struct {
	// Where is the bucket, prefix and endpoint, without credentials.
	Where string
	// Op is the refused operation, e.g. "stat config".
	Op string
	// Code is the HTTP status and the server's error code, e.g. "HTTP 403
	// SignatureDoesNotMatch", "HTTP 403 AccessDenied".
	Code string
	// NoCredentials is set when the AWS credential chain found none to
	// sign with, so no request was sent.
	NoCredentials bool
	Err           error
}

func (e *AccessDeniedError) Error() string {
	if e.NoCredentials {
		return fmt.Sprintf("no S3 credentials found for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or add ?profile= to the URL", e.Where)
	}
	return fmt.Sprintf("access denied for %s (%s: %s): check the access key and secret (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the ?profile= of the URL) and that they may use this bucket",
		e.Where, e.Op, e.Code)
}

// Unwrap returns the server's error.
func (e *AccessDeniedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAccessDenied) hold.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Transient is false: repeating a refused request does not help, whatever
// network error the credential chain met on its way (IsTransient).
func (e *AccessDeniedError) Transient() bool { return false }

// noCredentials reports whether err is the AWS credential chain failing to
// find credentials: the S3 operation failed inside another service's
// operation (the EC2 metadata service, STS, SSO) before any request to
// the storage was sent. Its network errors say nothing about the storage.
func noCredentials(err error) bool {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return false
	}
	var inner *smithy.OperationError
	return errors.As(op.Err, &inner) && inner.Service() != op.Service()
}

// s3DeniedCodes are the S3 error codes of refused credentials or rights,
// whatever HTTP status a server sends them with (versitygw answers an
// unknown access key with 404 XAdminUserNotFound).
var s3DeniedCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"XAdminUserNotFound":    true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"TokenRefreshRequired":  true,
	"AccountProblem":        true,
	"AllAccessDisabled":     true,
	"InvalidClientTokenId":  true,
}

// s3DeniedCode describes err ("HTTP 403 SignatureDoesNotMatch") when it is
// storage refusing the credentials or the request (HTTP 401 or 403, or
// one of s3DeniedCodes), else returns "".
func s3DeniedCode(err error) string {
	code, status := "", 0
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) {
		status = st.HTTPStatusCode()
	}
	if !s3DeniedCodes[code] && status != http.StatusForbidden && status != http.StatusUnauthorized {
		return ""
	}
	switch {
	case status == 0:
		return code
	case code == "" || code == http.StatusText(status) || code == "Forbidden":
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("HTTP %d %s", status, code)
}

// conciseError replaces an SDK error's text (a long "operation error S3:
// …, https response error StatusCode: …, RequestID: …" preamble) with what
// an operator needs, keeping the error itself for errors.Is and As.
type conciseError struct {
	msg string
	err error
}

func (c *conciseError) Error() string { return c.msg }
func (c *conciseError) Unwrap() error { return c.err }

// Describe returns the cause of a storage error in a few words, on one
// line: "cannot reach HOST:PORT: connection refused", "HTTP 503 SlowDown:
// Please reduce your request rate.", or err's own text when there is
// nothing shorter to say. It never holds credentials: the SDK's errors do
// not, and URLs are shown without user information.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	var c *conciseError
	if errors.As(err, &c) {
		return c.msg
	}
	var ad *AccessDeniedError
	if errors.As(err, &ad) {
		return ad.Error()
	}
	if why, ok := unreachableReason(err); ok {
		return why
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.ErrorCode()
		var st interface{ HTTPStatusCode() int }
		if errors.As(err, &st) && st.HTTPStatusCode() != 0 {
			msg = fmt.Sprintf("HTTP %d %s", st.HTTPStatusCode(), msg)
		}
		if m := apiErr.ErrorMessage(); m != "" && m != apiErr.ErrorCode() {
			msg += ": " + m
		}
		return msg
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// The request's method and URL (without credentials) and what
		// went wrong, without the SDK's preamble.
		return fmt.Sprintf("%s %s: %v", urlErr.Op, Redact(urlErr.URL), urlErr.Err)
	}
	return err.Error()
}

// unreachableReason says why no connection could be made ("cannot reach
// HOST:PORT: connection refused"), when that is what err is.
func unreachableReason(err error) (string, bool) {
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		return "", false
	}
	addr := ""
	if opErr.Addr != nil {
		addr = opErr.Addr.String()
	}
	why := opErr.Err
	var dnsErr *net.DNSError
	if errors.As(why, &dnsErr) {
		addr, why = dnsErr.Name, errors.New(dnsErr.Err)
	} else if inner := errors.Unwrap(why); inner != nil {
		// *os.SyscallError: "connect: connection refused" → "connection refused"
		why = inner
	}
	if addr == "" {
		return fmt.Sprintf("cannot reach the storage: %v", why), true
	}
	return fmt.Sprintf("cannot reach %s: %v", addr, why), true
}

// isUnreachable reports whether err means no connection could be made:
// refused, no route, unknown host, connect timeout.
func isUnreachable(err error) bool {
	_, ok := unreachableReason(err)
	return ok
}
