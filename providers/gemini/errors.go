package gemini

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// googleError is Google's error shape,
// {"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT","details":[...]}}.
// https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
// https://cloud.google.com/apis/design/errors#http_mapping
type googleError struct {
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Status  string        `json:"status"`
	Details []errorDetail `json:"details"`
}

// errorDetail is one of the details: an ErrorInfo (reason, e.g.
// API_KEY_INVALID) or a RetryInfo (retryDelay, e.g. "37s").
type errorDetail struct {
	Type       string `json:"@type"`
	Reason     string `json:"reason"`
	RetryDelay string `json:"retryDelay"`
}

// parseError reads Google's error body, also in the one-element array
// some Google endpoints wrap it in; nil when the body is something else
// (a proxy's HTML page).
func parseError(data []byte) *googleError {
	var obj struct {
		Error *googleError `json:"error"`
	}
	if json.Unmarshal(data, &obj) == nil && obj.Error != nil {
		return obj.Error
	}
	var list []struct {
		Error *googleError `json:"error"`
	}
	if json.Unmarshal(data, &list) == nil && len(list) > 0 && list[0].Error != nil {
		return list[0].Error
	}
	return nil
}

// credentialFailure reports an error about the gateway's API key: Google
// answers an invalid or expired key with 400 INVALID_ARGUMENT and reason
// API_KEY_INVALID, a blocked one with 403 and another API_KEY_ reason.
func (e *googleError) credentialFailure() bool {
	for _, d := range e.Details {
		if strings.HasPrefix(d.Reason, "API_KEY_") {
			return true
		}
	}
	return false
}

// retryDelay is a RetryInfo's delay in whole seconds, as Retry-After
// takes it; empty when there is none.
func (e *googleError) retryDelay() string {
	for _, d := range e.Details {
		if d.RetryDelay == "" {
			continue
		}
		if dur, err := time.ParseDuration(d.RetryDelay); err == nil && dur > 0 {
			return strconv.Itoa(int(math.Ceil(dur.Seconds())))
		}
	}
	return ""
}

// statusError maps an error response.
func (c *Client) statusError(resp *http.Response) error {
	return c.classify(resp.StatusCode, resp.Header.Get("Retry-After"), parseError(upstream.ReadError(resp)))
}

// classify maps a Google error with the status it came with: the message
// is Google's, the code its status lowercased (invalid_argument,
// resource_exhausted...). A refused API key is the gateway's credential
// failure whatever the status. Without a Retry-After header, a RetryInfo
// detail gives the delay.
func (c *Client) classify(status int, retryAfter string, e *googleError) *providers.Error {
	if e == nil {
		return c.Classify(status, retryAfter, upstream.ErrorBody{})
	}
	b := upstream.ErrorBody{Message: e.Message, Code: strings.ToLower(e.Status)}
	if e.credentialFailure() {
		b.Code = "invalid_api_key"
	}
	if retryAfter == "" {
		retryAfter = e.retryDelay()
	}
	return c.Classify(status, retryAfter, b)
}

// eventError maps an error inside a stream, after the 200, using its code
// as the status when it is an HTTP error status and 502 otherwise.
func (c *Client) eventError(e *googleError) error {
	status := http.StatusBadGateway
	if e.Code >= 400 && e.Code <= 599 {
		status = e.Code
	}
	pe := c.classify(status, "", e)
	pe.Retryable = pe.Retryable || status == http.StatusBadGateway
	return pe
}
