package bedrock

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

const helloBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

// TestErrorResponses maps Bedrock's error responses, as Bedrock sends them
// (x-amzn-ErrorType header, JSON body with a message), for Converse and
// ConverseStream alike.
func TestErrorResponses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		errType    string // x-amzn-ErrorType
		body       string
		header     map[string]string
		want       errorView
		wantHidden string
	}{
		{"400 validation", 400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			`{"message":"The model returned the following errors: messages: text content blocks must be non-empty"}`, nil,
			errorView{Status: 400, Type: "invalid_request_error", Code: "validation_exception",
				Message: "The model returned the following errors: messages: text content blocks must be non-empty"}, ""},
		{"403 access denied is the gateway's credentials", 403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			`{"message":"User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:InvokeModel"}`, nil,
			errorView{Status: 502, Type: "api_error", Code: "upstream_auth_failed",
				Message: `backend "bedrock-test" refused the gateway's credentials (status 403)`, Retryable: true}, "123456789012"},
		{"403 bad signature", 403, "InvalidSignatureException",
			`{"message":"The request signature we calculated does not match the signature you provided. Access key AKID"}`, nil,
			errorView{Status: 502, Type: "api_error", Code: "upstream_auth_failed",
				Message: `backend "bedrock-test" refused the gateway's credentials (status 403)`, Retryable: true}, "AKID"},
		{"403 unknown token", 403, "UnrecognizedClientException",
			`{"message":"The security token included in the request is invalid."}`, nil,
			errorView{Status: 502, Type: "api_error", Code: "upstream_auth_failed",
				Message: `backend "bedrock-test" refused the gateway's credentials (status 403)`, Retryable: true}, ""},
		{"404 model not found", 404, "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			`{"message":"Model not found."}`, nil,
			errorView{Status: 404, Type: "invalid_request_error", Code: "resource_not_found_exception", Message: "Model not found.", Retryable: true}, ""},
		{"408 model timeout", 408, "ModelTimeoutException", `{"message":"Model has timed out in processing the request."}`, nil,
			errorView{Status: 504, Type: "api_error", Code: "upstream_timeout", Message: "Model has timed out in processing the request.", Retryable: true}, ""},
		{"424 model error", 424, "ModelErrorException",
			`{"message":"Received server error (500) from model.","originalStatusCode":500,"resourceName":"arn:aws:sagemaker:x"}`, nil,
			errorView{Status: 502, Type: "api_error", Code: "model_error_exception", Message: "Received server error (500) from model.", Retryable: true}, ""},
		{"429 throttling", 429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			`{"message":"Too many requests, please wait before trying again."}`, map[string]string{"Retry-After": "3"},
			errorView{Status: 429, Type: "rate_limit_error", Code: "throttling_exception",
				Message: "Too many requests, please wait before trying again.", RetryAfter: "3", Retryable: true}, ""},
		{"429 model not ready", 429, "ModelNotReadyException", `{"message":"Model is not ready for inference."}`, nil,
			errorView{Status: 503, Type: "api_error", Code: "model_not_ready_exception", Message: "Model is not ready for inference.", Retryable: true}, ""},
		{"400 service quota", 400, "ServiceQuotaExceededException", `{"message":"Your request exceeds the service quota for your account."}`, nil,
			errorView{Status: 429, Type: "rate_limit_error", Code: "service_quota_exceeded_exception",
				Message: "Your request exceeds the service quota for your account.", Retryable: true}, ""},
		{"500 internal", 500, "InternalServerException", `{"message":"The server encountered an internal error."}`, nil,
			errorView{Status: 500, Type: "api_error", Code: "internal_server_exception", Message: "The server encountered an internal error.", Retryable: true}, ""},
		{"503 unavailable", 503, "ServiceUnavailableException", `{"message":"Bedrock is unable to process your request."}`, nil,
			errorView{Status: 503, Type: "api_error", Code: "service_unavailable_exception", Message: "Bedrock is unable to process your request.", Retryable: true}, ""},
		{"type in the body, no header", 400, "", `{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}`, nil,
			errorView{Status: 400, Type: "invalid_request_error", Code: "validation_exception", Message: "bad"}, ""},
		{"unknown exception keeps the status", 409, "SomethingNewException", `{"message":"new"}`, nil,
			errorView{Status: 409, Type: "invalid_request_error", Code: "something_new_exception", Message: "new"}, ""},
		{"502 from a proxy, not JSON", 502, "", `<html>Bad Gateway</html>`, nil,
			errorView{Status: 502, Type: "api_error", Code: "upstream_error", Message: `backend "bedrock-test" answered 502 Bad Gateway`, Retryable: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				if tc.errType != "" {
					w.Header().Set("X-Amzn-Errortype", tc.errType)
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			c := f.client(t)
			_, err := c.Do(context.Background(), chatRequest(helloBody))
			got := viewError(t, err)
			require.Equal(t, tc.want, got)
			_, err = c.Stream(context.Background(), chatRequest(helloBody))
			require.Equal(t, tc.want, viewError(t, err), "the stream's error matches")
			if tc.wantHidden != "" {
				require.NotContains(t, got.Message, tc.wantHidden)
			}
			require.Len(t, f.requests(), 2, "the SDK does not retry: the gateway does")
		})
	}
}

// TestStreamExceptions maps the exceptions ConverseStream sends as event
// stream messages.
func TestStreamExceptions(t *testing.T) {
	for _, tc := range []struct {
		exception string
		want      errorView
	}{
		{"throttlingException", errorView{Status: 429, Type: "rate_limit_error", Code: "throttling_exception", Message: "slow down", Retryable: true}},
		{"modelStreamErrorException", errorView{Status: 500, Type: "api_error", Code: "model_stream_error_exception", Message: "slow down", Retryable: true}},
		{"internalServerException", errorView{Status: 500, Type: "api_error", Code: "internal_server_exception", Message: "slow down", Retryable: true}},
		{"serviceUnavailableException", errorView{Status: 503, Type: "api_error", Code: "service_unavailable_exception", Message: "slow down", Retryable: true}},
		{"validationException", errorView{Status: 400, Type: "invalid_request_error", Code: "validation_exception", Message: "slow down"}},
		{"brandNewException", errorView{Status: 502, Type: "api_error", Code: "brand_new_exception", Message: "slow down", Retryable: true}},
	} {
		t.Run(tc.exception, func(t *testing.T) {
			for _, first := range []bool{true, false} {
				events := []streamEvent{{Event: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}}
				if first {
					events = nil
				}
				events = append(events, streamEvent{Exception: tc.exception,
					Payload: json.RawMessage(`{"message":"slow down","originalStatusCode":500,"originalMessage":"x"}`)})
				body := encodeStream(t, events)
				f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { writeStream(w, body) })
				s, err := f.client(t).Stream(context.Background(), chatRequest(helloBody))
				require.NoError(t, err, "an exception in the stream arrives with Recv")
				evs, err := collect(t, s)
				require.NoError(t, s.Close())
				if first {
					require.Empty(t, evs, "the router can still fall back")
				} else {
					require.Len(t, evs, 1)
				}
				require.Equal(t, tc.want, viewError(t, err))
			}
		})
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"ThrottlingException":        "throttling_exception",
		"ModelNotReadyException":     "model_not_ready_exception",
		"throttlingException":        "throttling_exception",
		"HTTPTimeoutException":       "http_timeout_exception",
		"":                           "",
		"ServiceQuotaExceededError2": "service_quota_exceeded_error2",
	} {
		require.Equal(t, want, snakeCase(in), in)
	}
}
