package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// APIError is an error answered in OpenAI's shape. Handlers return it (or
// wrap it with %w); the Fiber error handler is the one place that turns any
// error into a response.
type APIError struct {
	Status  int
	Type    string // error.type
	Code    string // error.code
	Param   string // error.param; empty is null
	Message string // error.message, safe to show the client
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Err is the cause, for logs only.
	Err error
}

func (e *APIError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }

func invalidRequest(code, param, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

func modelNotFound(model string) *APIError {
	return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model %q does not exist or you do not have access to it.", model)}
}

// statusClientClosed is nginx's code for a client that went away; it only
// ever appears in logs, since nobody is left to read it.
const statusClientClosed = 499

// toAPIError maps any error to the response it deserves. A request that
// failed on several deployments is answered as its deciding error, with a
// message that names each deployment tried and why it failed.
func toAPIError(err error) *APIError {
	e := toAPIErrorOnce(err)
	var ex *router.ExhaustedError
	if errors.As(err, &ex) {
		c := *e
		c.Message = strings.TrimSuffix(c.Message, ".") + ". " + triedMessage(ex)
		return &c
	}
	return e
}

// triedMessage names each deployment tried and why it failed, and those
// skipped as out of rotation: status and code only (what the client may
// see of each upstream's answer), and the message of the gateway's own
// errors that say what to fix (a missing API key's variable).
func triedMessage(ex *router.ExhaustedError) string {
	var b strings.Builder
	n := len(ex.Attempts)
	fmt.Fprintf(&b, "Tried %d deployment%s:", n, plural(n))
	for i, a := range ex.Attempts {
		if i > 0 {
			b.WriteByte(';')
		}
		d := toAPIErrorOnce(a.Err)
		fmt.Fprintf(&b, " %s (%s) failed with %d %s", a.Deployment.Backend, a.Deployment.Model, d.Status, d.Code)
		if d.Code == codeCredentialsMissing {
			fmt.Fprintf(&b, " (%s)", strings.TrimSuffix(d.Message, "."))
		}
	}
	if len(ex.Skipped) > 0 {
		b.WriteString(". Skipped, out of rotation after repeated failures:")
		for i, d := range ex.Skipped {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, " %s (%s)", d.Backend, d.Model)
		}
	}
	b.WriteByte('.')
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func toAPIErrorOnce(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		return &APIError{Status: pe.Status, Type: pe.Type, Code: pe.Code, Param: pe.Param, Message: pe.Message, RetryAfter: pe.RetryAfter, Err: pe.Err}
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusRequestEntityTooLarge:
			return &APIError{Status: fe.Code, Type: "invalid_request_error", Code: "request_too_large", Message: "Request body is larger than the gateway's limit.", Err: fe}
		case http.StatusNotFound:
			return &APIError{Status: fe.Code, Type: "invalid_request_error", Code: "unknown_url", Message: "Unknown request URL. See the API reference at https://platform.openai.com/docs/api-reference.", Err: fe}
		case http.StatusMethodNotAllowed:
			return &APIError{Status: fe.Code, Type: "invalid_request_error", Code: "method_not_allowed", Message: "Method not allowed for this URL.", Err: fe}
		}
		return &APIError{Status: fe.Code, Type: providers.TypeForStatus(fe.Code), Code: "http_error", Message: fe.Message, Err: fe}
	}
	switch {
	case errors.Is(err, ErrShuttingDown):
		return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "server_shutting_down", Message: "The gateway is shutting down; retry the request.", Err: err}
	case errors.Is(err, context.Canceled):
		return &APIError{Status: statusClientClosed, Type: "invalid_request_error", Code: "client_closed_request", Message: "The client closed the request.", Err: err}
	case errors.Is(err, router.ErrNoDeployment):
		return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "no_deployment", Message: "No deployment is available for this model.", Err: err}
	}
	return &APIError{Status: http.StatusInternalServerError, Type: "api_error", Code: "internal_error", Message: "The gateway failed to process the request.", Err: err}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// marshalError renders e in OpenAI's shape.
func marshalError(e *APIError) []byte {
	d := errorDetail{Message: e.Message, Type: e.Type, Code: e.Code}
	if e.Param != "" {
		d.Param = &e.Param
	}
	b, _ := json.Marshal(errorBody{Error: d})
	return b
}

// handleError is Fiber's ErrorHandler: every error, from a handler, the
// body limit or the router, is answered here.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	e := toAPIError(err)
	c.Locals(localError, e)
	if c.Locals(localLog) == nil && e.Status == http.StatusRequestTimeout && len(c.Request().Header.RawHeaders()) == 0 {
		// A connection that sent nothing before read_timeout: no request,
		// so no request id, access-log line or metric.
		return c.Status(e.Status).Send(marshalError(e))
	}
	if c.Locals(localLog) == nil {
		// Raised before the middleware ran (the body limit, oversized
		// headers): give it a request id and a log line.
		id := newRequestID()
		c.Set(HeaderRequestID, id)
		defer s.emit(&record{requestID: id, start: time.Now(), method: strings.Clone(c.Method()), path: strings.Clone(c.Path()), status: e.Status, err: e})
	}
	if e.RetryAfter != "" {
		c.Set(fiber.HeaderRetryAfter, e.RetryAfter)
	} else if e.Status == http.StatusTooManyRequests {
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if strings.HasPrefix(c.Path(), messagesPrefix) {
		return c.Status(e.Status).Send(messagesErrorBody(e)) // Anthropic's shape on its ingress
	}
	return c.Status(e.Status).Send(marshalError(e))
}
