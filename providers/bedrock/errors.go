package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"unicode"

	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// exceptionStatus is the status the gateway answers with for a Bedrock
// runtime exception, and false for an exception it does not know. It
// mostly keeps Bedrock's own HTTP status; the differences are deliberate:
//   - ModelNotReadyException (Bedrock: 429) is 503: the model is not
//     serving, another deployment may be.
//   - ServiceQuotaExceededException (Bedrock: 400) is 429: the account's
//     quota is spent, another account or region may have room.
//   - ModelErrorException (Bedrock: 424) is 502: the model failed.
//   - ModelStreamErrorException (only inside a stream) is 500.
//
// Stream exceptions carry no HTTP status, so this is all there is for them.
func exceptionStatus(name string) (int, bool) {
	switch name {
	case "ValidationException", "ConflictException":
		return http.StatusBadRequest, true
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
		return http.StatusForbidden, true
	case "ResourceNotFoundException":
		return http.StatusNotFound, true
	case "ModelTimeoutException":
		return http.StatusRequestTimeout, true
	case "ThrottlingException", "ServiceQuotaExceededException":
		return http.StatusTooManyRequests, true
	case "InternalServerException", "ModelStreamErrorException":
		return http.StatusInternalServerError, true
	case "ModelErrorException":
		return http.StatusBadGateway, true
	case "ServiceUnavailableException", "ModelNotReadyException":
		return http.StatusServiceUnavailable, true
	}
	return 0, false
}

// credentialsError marks a failure to resolve the gateway's AWS
// credentials, so that it can be told from other failures of a call.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "resolving AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// callError maps a failed Converse or ConverseStream call.
func (c *Client) callError(ctx context.Context, err error) error {
	status, retryAfter := 0, ""
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var sre *smithyhttp.ResponseError
	if errors.As(err, &sre) && sre.Response != nil {
		retryAfter = sre.Response.Header.Get("Retry-After")
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return c.apiError(status, retryAfter, apiErr, err)
	}
	var credErr *credentialsError
	var invalid smithy.InvalidParamsError
	var send *smithyhttp.RequestSendError
	switch {
	case ctx.Err() != nil:
		return c.TransportError(ctx, err)
	case errors.As(err, &send):
		return c.TransportError(ctx, err)
	case errors.As(err, &credErr):
		return &providers.Error{Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamAuth,
			Message: fmt.Sprintf("backend %q: the gateway has no usable AWS credentials", c.Backend()), Retryable: true, Err: err}
	case errors.As(err, &invalid):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request",
			Message: fmt.Sprintf("the request cannot be sent to Bedrock: %v", invalid), Err: err}
	case status >= 300:
		// An error status whose body is not Bedrock's JSON (a proxy's page).
		e := c.Classify(status, retryAfter, upstream.ErrorBody{})
		e.Err = err
		return e
	case status != 0:
		return c.BadResponse(err, "sent a response that is not a Converse answer")
	}
	return c.TransportError(ctx, err)
}

// apiError maps a Bedrock exception, from an error response (status set)
// or inside an event stream (status 0), through upstream.Classify: Code is
// the exception's name in snake_case, Message is Bedrock's message, except
// where Classify hides a credentials failure.
func (c *Client) apiError(status int, retryAfter string, apiErr smithy.APIError, cause error) *providers.Error {
	name := apiErr.ErrorCode()
	if s, ok := exceptionStatus(name); ok {
		status = s
	} else if status == 0 {
		status = http.StatusBadGateway
	}
	msg := apiErr.ErrorMessage()
	if msg == "" || msg == "UnknownError" {
		msg = fmt.Sprintf("backend %q answered %s", c.Backend(), name)
	}
	e := c.Classify(status, retryAfter, upstream.ErrorBody{Message: msg, Code: snakeCase(name)})
	e.Err = cause
	return e
}

// streamError maps a failure while reading the event stream: an exception
// event, the watchdog or the caller ending the attempt, a broken
// connection, or a frame the decoder refused.
func (c *Client) streamError(ctx context.Context, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return c.apiError(0, "", apiErr, err)
	}
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) {
		return c.TransportError(ctx, err)
	}
	return c.BadResponse(err, "sent a broken event stream")
}

// snakeCase turns an exception name into an error code:
// ThrottlingException -> throttling_exception.
func snakeCase(name string) string {
	var b strings.Builder
	runes := []rune(name)
	for i, r := range runes {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(runes[i-1]) || (i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
