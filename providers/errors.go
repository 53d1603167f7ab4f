package providers

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a failed upstream attempt, already expressed in the terms the
// gateway answers with: an HTTP status and OpenAI's error type and code.
type Error struct {
	// Status is the HTTP status to answer the client with. It keeps the
	// upstream's status where that is meaningful to the client (400, 404,
	// 429, 5xx).
	Status int
	// Type and Code are OpenAI's error.type and error.code.
	Type string
	Code string
	// Param is OpenAI's error.param, when the upstream named one.
	Param string
	// Message is safe to show the client: it never holds a credential.
	Message string
	// RetryAfter is the upstream's Retry-After header, if any.
	RetryAfter string
	// Retryable is true when another deployment may succeed: connection
	// failures, timeouts, 429, 5xx, and the upstream refusing the gateway's
	// own credentials.
	Retryable bool
	// Err is the underlying cause, for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Error codes the gateway itself assigns to upstream failures.
const (
	CodeUpstreamUnavailable = "upstream_unavailable" // connect error, reset, bad response
	CodeUpstreamTimeout     = "upstream_timeout"     // first-byte or between-chunk timeout
	CodeUpstreamAuth        = "upstream_auth_failed" // the upstream refused the gateway's key
	CodeUpstreamError       = "upstream_error"       // upstream error without a code of its own
	CodeRateLimited         = "rate_limit_exceeded"
)

// Sentinel causes for timeouts, wrapped in an *Error.
var (
	ErrFirstByteTimeout     = errors.New("upstream sent nothing before the first-byte timeout")
	ErrBetweenChunksTimeout = errors.New("upstream stream stalled longer than the between-chunks timeout")
)

// TypeForStatus is the OpenAI error.type for an HTTP status.
func TypeForStatus(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusUnauthorized:
		return "invalid_request_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

// IsRetryable reports whether err is an *Error that another deployment may
// not repeat.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}
