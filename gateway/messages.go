package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/ingress/messages"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/tokens"
)

// HeaderDropped lists what translating a request to its backend's format
// left out (for example "thinking,top_k"), on any ingress.
const HeaderDropped = "X-Switchyard-Dropped"

// messagesPrefix is the Anthropic Messages ingress: its errors have
// Anthropic's shape.
const messagesPrefix = "/v1/messages"

// messagesHandler serves POST /v1/messages (Anthropic Messages): the body
// is checked like any other (JSON limits first), parsed and validated as
// Anthropic's, translated to chat completions and run through serve; the
// answer and the stream are rendered as Anthropic's.
func (s *Server) messagesHandler(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	req, body, err := s.parseMessages(c, messages.Parse)
	if err != nil {
		return err
	}
	chat, err := req.ToChat()
	if err != nil {
		return messagesError(err)
	}
	call, err := parseCallWith(providers.OpChat, chat, s.cfg.Server.JSON)
	if err != nil {
		return err
	}
	if notes := req.Notes(); len(notes) > 0 {
		c.Set(HeaderDropped, strings.Join(notes, ","))
	}
	call.ingress = messagesIngress{model: req.Model}
	// An Anthropic backend gets the client's own request, cache_control,
	// thinking and beta features included (unless redaction applies or it
	// holds data the translation does not: see serve).
	if s.modelSpeaks(call.model, providers.FormatAnthropicMessages) {
		call.native = &providers.Native{Format: providers.FormatAnthropicMessages, Body: bytes.Clone(body), Beta: betas(c.Get("anthropic-beta"))}
	}
	return s.serve(c, p, call)
}

// countTokens serves POST /v1/messages/count_tokens: the prompt's tokens
// as the model's route counts them for its estimates (the most of its
// deployments: tiktoken for OpenAI models, a local model's own tokenizer,
// an over-counting approximation elsewhere). It costs no quota.
func (s *Server) countTokens(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	req, _, err := s.parseMessages(c, messages.ParseCountTokens)
	if err != nil {
		return err
	}
	chat, err := req.ToChat()
	if err != nil {
		return messagesError(err)
	}
	call, err := parseCallWith(providers.OpChat, chat, s.cfg.Server.JSON)
	if err != nil {
		return err
	}
	rt, ok := s.router.Lookup(call.model)
	if !ok || !p.Allows(rt) {
		return modelNotFound(call.model)
	}
	call.route = rt
	n := call.promptEstimate()
	if n == 0 {
		n = tokens.Prompt(tokens.Approx, tokens.OpChat, chat)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(messages.CountTokensBody(n))
}

// parseMessages reads and checks a Messages body: JSON limits and
// repeated keys in one linear pass before anything else, then Anthropic's
// own validation.
func (s *Server) parseMessages(c *fiber.Ctx, parse func([]byte) (*messages.Request, error)) (*messages.Request, []byte, error) {
	body, err := s.checkedBody(c)
	if err != nil {
		return nil, nil, err
	}
	req, err := parse(body)
	if err != nil {
		return nil, nil, messagesError(err)
	}
	return req, body, nil
}

// checkedBody reads a body for an ingress that parses its own format:
// the JSON limits and repeated keys are checked first, in one linear
// pass, as parseCallWith does for OpenAI's.
func (s *Server) checkedBody(c *fiber.Ctx) ([]byte, error) {
	body, err := s.requestBody(c)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, invalidRequest("invalid_json", "", "The request body is empty; expected a JSON object.")
	}
	l := resolveJSONLimits(s.cfg.Server.JSON)
	if v := checkJSON(body, l); v.problem != jsonOK {
		return nil, v.apiError(l)
	}
	return body, nil
}

// betas splits an anthropic-beta header ("a,b, c") into its values.
func betas(h string) []string {
	var out []string
	for v := range strings.SplitSeq(h, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// routeSpeaks reports whether some deployment of rt takes requests in
// format as they are, so that a native request is worth building and
// scanning.
func routeSpeaks(rt *router.Route, format string) bool {
	for _, d := range rt.Deployments {
		if ns, ok := d.Provider.(providers.NativeSpeaker); ok && ns.SpeaksNative(format) {
			return true
		}
	}
	return false
}

// modelSpeaks is routeSpeaks for the route a model name leads to (a
// superset of the deployments the policy may leave).
func (s *Server) modelSpeaks(model, format string) bool {
	rt, ok := s.router.Lookup(model)
	return ok && routeSpeaks(rt, format)
}

// speaksNative reports whether deployment d's provider sends call's
// native request as it is.
func speaksNative(call *call, p providers.Provider) bool {
	if call.native == nil {
		return false
	}
	ns, ok := p.(providers.NativeSpeaker)
	return ok && ns.SpeaksNative(call.native.Format)
}

// messagesError carries a messages.Error's status and message into the
// one error path (handleError renders it in Anthropic's shape).
func messagesError(err error) error {
	var me *messages.Error
	if errors.As(err, &me) {
		return &APIError{Status: me.Status, Type: "invalid_request_error", Code: "invalid_request", Message: me.Message, Err: err}
	}
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Message: err.Error(), Err: err}
}

// messagesErrorBody is e in Anthropic's shape, its type from the status.
func messagesErrorBody(e *APIError) []byte {
	return messages.ErrorBody(messages.ErrorType(e.Status), e.Message)
}

// messagesIngress renders chat answers as Anthropic Messages.
type messagesIngress struct{ model string }

func (m messagesIngress) answer(chat []byte, usage *providers.Usage) ([]byte, error) {
	return messages.FromChat(chat, m.model, usage)
}

// nativeAnswer passes Anthropic's own message on as it came.
func (m messagesIngress) nativeAnswer(body []byte) ([]byte, error) { return body, nil }

func (m messagesIngress) events(promptTokens int64) streamFormat {
	s := messages.NewStream(m.model, "")
	s.InputTokens = promptTokens // message_start's, until the upstream's usage comes
	return &messagesStream{s: s}
}

type messagesStream struct{ s *messages.Stream }

func (m *messagesStream) start() []byte { return m.s.Start() }
func (m *messagesStream) chunk(data []byte, usage *providers.Usage) ([]byte, error) {
	return m.s.Chunk(data, usage)
}
func (m *messagesStream) end(usage *providers.Usage) []byte  { return m.s.End(usage) }
func (m *messagesStream) native(data []byte) ([]byte, error) { return data, nil }
func (m *messagesStream) fail(e *APIError) []byte {
	return m.s.Fail(messages.ErrorType(e.Status), e.Message)
}
