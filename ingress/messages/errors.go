package messages

import (
	"fmt"
	"net/http"
)

// The Messages API error shape and types.
// https://platform.claude.com/docs/en/api/errors

// Anthropic's error types.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeBilling        = "billing_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeTooLarge       = "request_too_large"
	TypeRateLimit      = "rate_limit_error"
	TypeAPI            = "api_error"
	TypeTimeout        = "timeout_error"
	TypeOverloaded     = "overloaded_error"
)

// StatusOverloaded is the status Anthropic answers overloaded_error with.
const StatusOverloaded = 529

// Error is an Anthropic-shaped client error.
type Error struct {
	Status  int    // HTTP status
	Type    string // Anthropic's error.type
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Body renders the error, with requestID as the top-level request_id when
// it is not empty.
func (e *Error) Body(requestID string) []byte {
	return errorBody(e.Type, e.Message, requestID)
}

// NewError is an error with the type ErrorType gives status.
func NewError(status int, format string, args ...any) *Error {
	return &Error{Status: status, Type: ErrorType(status), Message: fmt.Sprintf(format, args...)}
}

// invalid is a 400 invalid_request_error about the field at path, worded
// like Anthropic's own: "messages.0.content.1.type: ...".
func invalid(path, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: msg}
}

type errorJSON struct {
	Type  string `json:"type"` // always "error"
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// ErrorBody renders {"type":"error","error":{"type":typ,"message":message}}.
func ErrorBody(typ, message string) []byte { return errorBody(typ, message, "") }

func errorBody(typ, message, requestID string) []byte {
	var e errorJSON
	e.Type, e.Error.Type, e.Error.Message, e.RequestID = "error", typ, message, requestID
	return marshal(e)
}

// ErrorType maps an HTTP status to Anthropic's error type. Anthropic uses
// invalid_request_error for 4xx statuses it lists no type for, and
// api_error for its own failures. 503 (the gateway's "no deployment can
// serve this now") is reported as overloaded_error, the type Anthropic's
// clients treat as "temporarily unavailable, retry or fall back".
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return TypeInvalidRequest
	case http.StatusUnauthorized:
		return TypeAuthentication
	case http.StatusPaymentRequired:
		return TypeBilling
	case http.StatusForbidden:
		return TypePermission
	case http.StatusNotFound:
		return TypeNotFound
	case http.StatusRequestEntityTooLarge:
		return TypeTooLarge
	case http.StatusTooManyRequests:
		return TypeRateLimit
	case http.StatusGatewayTimeout:
		return TypeTimeout
	case http.StatusServiceUnavailable, StatusOverloaded:
		return TypeOverloaded
	}
	if status >= 400 && status < 500 {
		return TypeInvalidRequest
	}
	return TypeAPI
}
