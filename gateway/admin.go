package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
	"github.com/switchyard/switchyard/providers"
)

// adminKeys holds the SHA-256 of each admin key.
type adminKeys map[[sha256.Size]byte]string

func newAdminKeys(keys []config.AdminKey) adminKeys {
	ak := adminKeys{}
	for _, k := range keys {
		if raw, err := hex.DecodeString(k.SHA256); err == nil && len(raw) == sha256.Size {
			ak[[sha256.Size]byte(raw)] = k.ID
		}
	}
	return ak
}

// adminAuth admits admin keys only; virtual keys get 401 here, and admin
// keys get 401 on the model API.
func (s *Server) adminAuth(c *fiber.Ctx) error {
	if len(s.admins) == 0 {
		return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "admin_api_disabled",
			Message: "The admin API is disabled: configure admin.keys to enable it."}
	}
	key, _ := apiKey(c)
	if _, ok := s.admins[sha256.Sum256([]byte(key))]; !ok || key == "" {
		return &APIError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "This endpoint needs an admin key."}
	}
	return c.Next()
}

// unknownAdmin answers an admin request no route took: 405 with the
// methods the path has, or 404.
func unknownAdmin(app *fiber.App) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var allow []string
		for _, r := range app.GetRoutes(true) {
			if r.Path == c.Path() && r.Method != fiber.MethodHead && !slices.Contains(allow, r.Method) {
				allow = append(allow, r.Method)
			}
		}
		if len(allow) > 0 {
			c.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
			return &APIError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
				Message: fmt.Sprintf("%s is not allowed on %s: use %s.", c.Method(), c.Path(), strings.Join(allow, " or "))}
		}
		return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: fmt.Sprintf("Unknown admin API path %s.", c.Path())}
	}
}

// explainRequest asks why a request would be routed as it would.
type explainRequest struct {
	// KeyID names the virtual key whose tenant and team the request acts
	// for.
	KeyID string `json:"key_id"`
	// Operation is chat (default), text_completion or embeddings.
	Operation string `json:"operation"`
	// Headers are the request's x-switchyard-* headers.
	Headers map[string]string `json:"headers"`
	// Request is the OpenAI request body.
	Request json.RawMessage `json:"request"`
}

type explainResponse struct {
	Input *policies.Input `json:"input"`
	// Detections says which detector fired on which field: label and
	// path, never the value.
	Detections []classify.Detection `json:"detections"`
	*policies.Explanation
}

// explain is POST /v1/switchyard/explain: the policy input a request would
// make, the decision, the excluded deployments with reasons and the rules
// that fired. Nothing is sent upstream and nothing is audited.
func (s *Server) explain(c *fiber.Ctx) error {
	var er explainRequest
	if err := json.Unmarshal(c.Body(), &er); err != nil {
		return invalidRequest("invalid_json", "", "Expected {\"key_id\", \"operation\", \"headers\", \"request\"}: %v", err)
	}
	var p *Principal
	for _, k := range s.keys {
		if k.KeyID == er.KeyID {
			p = k
			break
		}
	}
	if p == nil {
		return invalidRequest("unknown_key_id", "key_id", "No virtual key has the id %q.", er.KeyID)
	}
	op := providers.Operation(er.Operation)
	switch op {
	case "":
		op = providers.OpChat
	case providers.OpChat, providers.OpCompletion, providers.OpEmbeddings:
	default:
		return invalidRequest("invalid_value", "operation", "operation must be chat, text_completion or embeddings; got %q", er.Operation)
	}
	call, err := parseCallWith(op, er.Request, s.cfg.Server.JSON)
	if err != nil {
		return err
	}
	rt, ok := s.router.Lookup(call.model)
	if !ok || !p.Allows(rt) {
		return modelNotFound(call.model)
	}
	call.route = rt
	call.findings = s.classifier.ScanRequest(call.body)
	headers := make(map[string]string, len(er.Headers))
	for k, v := range er.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	header := func(name string, _ ...string) string { return headers[textproto.CanonicalMIMEHeaderKey(name)] }
	in := s.policyInput(header, call, p, requestIDOf(c))
	x, err := s.policy.Explain(c.UserContext(), in)
	if err != nil {
		return &APIError{Status: http.StatusUnprocessableEntity, Type: "invalid_request_error", Code: "policy_error",
			Message: "The policy could not be evaluated: " + err.Error(), Err: err}
	}
	det := call.findings.Detections()
	if det == nil {
		det = []classify.Detection{}
	}
	return c.JSON(explainResponse{Input: in, Detections: det, Explanation: x})
}
