package anthropic

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// The Messages API error shape and types.
// https://platform.claude.com/docs/en/api/errors

type errorBody struct {
	Type  string `json:"type"` // "error"
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// parseError reads {"type":"error","error":{"type","message"}}; both are
// empty when the body is something else (a proxy's HTML page).
func parseError(data []byte) (typ, msg string) {
	var b errorBody
	if json.Unmarshal(data, &b) != nil {
		return "", ""
	}
	return b.Error.Type, b.Error.Message
}

// openAIType is OpenAI's error.type for an Anthropic error type; empty
// leaves it to the status.
func openAIType(anthropicType string) string {
	switch anthropicType {
	case "invalid_request_error", "not_found_error", "request_too_large", "billing_error":
		return "invalid_request_error"
	case "rate_limit_error":
		return "rate_limit_error"
	case "api_error", "overloaded_error", "timeout_error":
		return "api_error"
	}
	return ""
}

// statusForType is the HTTP status Anthropic answers an error type with,
// for an error that arrives inside a stream, after the 200. Unknown types
// are a 502: the upstream failed in a way the gateway cannot name.
func statusForType(anthropicType string) int {
	switch anthropicType {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "api_error":
		return http.StatusInternalServerError
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	}
	return http.StatusBadGateway
}

// classify maps an Anthropic error body with the status it came with: the
// code is Anthropic's error type, the message Anthropic's message.
func (c *Client) classify(status int, retryAfter string, data []byte) *providers.Error {
	typ, msg := parseError(data)
	return c.Classify(status, retryAfter, upstream.ErrorBody{Message: msg, Type: openAIType(typ), Code: typ})
}

// statusError maps an error response.
func (c *Client) statusError(resp *http.Response) error {
	return c.classify(resp.StatusCode, resp.Header.Get("Retry-After"), upstream.ReadError(resp))
}

// eventError maps an error event inside a stream, with the status
// Anthropic gives its type outside one.
func (c *Client) eventError(data []byte) *providers.Error {
	typ, msg := parseError(data)
	e := c.classify(statusForType(typ), "", data)
	if msg == "" && e.Code != providers.CodeUpstreamAuth {
		e.Message = fmt.Sprintf("backend %q sent an error event without a message", c.Backend())
	}
	return e
}
