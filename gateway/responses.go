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
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/conversations"
	"github.com/switchyard/switchyard/ingress/responses"
	"github.com/switchyard/switchyard/providers"
)

// openConversations builds the Responses API's store of responses: in
// memory (bounded) or in the quotas' Redis, shared by replicas.
func openConversations(cfg *config.Config) (conversations.Store, func() error) {
	r := cfg.Responses
	if r.Store != "redis" {
		return conversations.NewMemory(r.MaxEntries, int64(r.MaxBytes)), func() error { return nil }
	}
	c := redisClient(cfg.Quotas.Redis)
	return conversations.NewRedis(c, "sy"), c.Close
}

// storeTimeout bounds one read or write of a stored response.
const storeTimeout = 2 * time.Second

// responsesHandler serves POST /v1/responses (OpenAI Responses): the body
// is checked like any other (JSON limits first), parsed and validated; a
// previous_response_id brings back the stored conversation, which is
// translated to chat completions with the new input, so the classifier
// and the policy see the whole conversation; serve runs it, and the
// answer (a Response object, or the Responses event stream) is stored
// when the request asked for it.
func (s *Server) responsesHandler(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	body, err := s.checkedBody(c)
	if err != nil {
		return err
	}
	req, err := responses.Parse(body)
	if err != nil {
		return responsesError(err)
	}
	var history []responses.Item
	if req.PreviousResponseID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		prev, err := s.conversations.Get(ctx, p.Tenant, req.PreviousResponseID)
		cancel()
		if errors.Is(err, conversations.ErrNotFound) {
			return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "previous_response_not_found",
				Param: "previous_response_id", Message: fmt.Sprintf("Previous response with id '%s' not found.", req.PreviousResponseID)}
		}
		if err != nil {
			return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "store_unavailable",
				Message: "The stored conversation could not be read; try again.", Err: err}
		}
		history = prev.Items
	}
	input, err := req.InputItems()
	if err != nil {
		return responsesError(err)
	}
	chat, err := req.ToChat(history)
	if err != nil {
		return responsesError(err)
	}
	call, err := parseCallWith(providers.OpChat, chat, s.cfg.Server.JSON)
	if err != nil {
		return err
	}
	if notes := req.Notes(); len(notes) > 0 {
		c.Set(HeaderDropped, strings.Join(notes, ","))
	}
	call.ingress = &responsesIngress{s: s, req: req, id: responses.NewID("resp"), created: time.Now().Unix(),
		tenant: p.Tenant, keyID: p.KeyID, history: history, input: input}
	// A backend that serves the Responses API gets the client's own
	// request, stateless (unless redaction applies or it holds data the
	// translation does not: see serve).
	if s.modelSpeaks(call.model, providers.FormatOpenAIResponses) {
		native, err := responses.Stateless(body, history)
		if err != nil {
			return responsesError(err)
		}
		call.native = &providers.Native{Format: providers.FormatOpenAIResponses, Body: native}
	}
	return s.serve(c, p, call)
}

// getResponse serves GET /v1/responses/{id}: a stored response of the
// caller's tenant.
func (s *Server) getResponse(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	rec, err := s.conversations.Get(ctx, p.Tenant, c.Params("id"))
	if err != nil {
		return responseLookupError(c.Params("id"), err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(rec.Response)
}

// deleteResponse serves DELETE /v1/responses/{id}.
func (s *Server) deleteResponse(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	id := strings.Clone(c.Params("id"))
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.conversations.Delete(ctx, p.Tenant, id); err != nil {
		return responseLookupError(id, err)
	}
	return c.JSON(fiber.Map{"id": id, "object": "response", "deleted": true})
}

func responseLookupError(id string, err error) error {
	if errors.Is(err, conversations.ErrNotFound) {
		return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
			Message: fmt.Sprintf("Response with id '%s' not found.", id)}
	}
	return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "store_unavailable",
		Message: "The stored response could not be read; try again.", Err: err}
}

// responsesError carries a responses.Error into the one error path.
func responsesError(err error) error {
	var re *responses.Error
	if errors.As(err, &re) {
		return &APIError{Status: re.Status, Type: re.Type, Code: re.Code, Param: re.Param, Message: re.Message, Err: err}
	}
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_value", Message: err.Error(), Err: err}
}

// responsesIngress renders chat answers as Responses and stores them
// (with the conversation so far) when the request asked for it.
type responsesIngress struct {
	s              *Server
	req            *responses.Request
	id             string
	created        int64
	tenant, keyID  string
	history, input []responses.Item
}

func (r *responsesIngress) answer(chat []byte, usage *providers.Usage) ([]byte, error) {
	body, output, err := responses.FromChat(r.req, r.id, r.created, chat, usage)
	if err != nil {
		return nil, err
	}
	r.store(body, output)
	return body, nil
}

// nativeAnswer makes the Response of a backend that took the client's
// own request the gateway's (its id, previous_response_id and store) and
// stores it with its output.
func (r *responsesIngress) nativeAnswer(body []byte) ([]byte, error) {
	out, err := responses.Own(body, "", r.id, r.req.PreviousResponseID, r.req.Store)
	if err != nil {
		return nil, fmt.Errorf("reading the upstream's response: %w", err)
	}
	r.store(out, responses.Output(out))
	return out, nil
}

func (r *responsesIngress) events(int64) streamFormat {
	return &responsesStream{in: r, s: responses.NewStream(r.req, r.id, r.created)}
}

// store keeps the response and the conversation it ends, before the
// client sees the answer, so that a follow-up sent at once finds it. A
// store that fails is logged; the answer is still given.
func (r *responsesIngress) store(body []byte, output []responses.Item) {
	if !r.req.Store {
		return
	}
	items := make([]json.RawMessage, 0, len(r.history)+len(r.input)+len(output))
	for _, group := range [][]responses.Item{r.history, r.input, output} {
		for _, it := range group {
			items = append(items, json.RawMessage(it))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := r.s.conversations.Put(ctx, conversations.Record{ID: r.id, Tenant: r.tenant, KeyID: r.keyID, Model: r.req.Model,
		CreatedAt: r.created, Response: body, Items: items}, r.s.cfg.Responses.TTL)
	if err != nil {
		r.s.log.Warn("stored response not kept", "response_id", r.id, "error", err)
	}
}

type responsesStream struct {
	in *responsesIngress
	s  *responses.Stream

	// The native path's: the last Response object the stream carried
	// (the gateway's), and the last event's sequence number.
	passing  bool
	response []byte
	seq      int64
}

// native passes on a backend's own Responses event: a Response it
// carries becomes the gateway's, and the completed (or incomplete) one is
// stored with its output.
func (r *responsesStream) native(data []byte) ([]byte, error) {
	r.passing = true
	ev := gjson.ParseBytes(data)
	r.seq = ev.Get("sequence_number").Int()
	if !ev.Get("response").IsObject() {
		return data, nil
	}
	out, err := responses.Own(data, "response", r.in.id, r.in.req.PreviousResponseID, r.in.req.Store)
	if err != nil {
		return nil, err
	}
	r.response = []byte(gjson.GetBytes(out, "response").Raw)
	switch ev.Get("type").Str {
	case "response.completed", "response.incomplete":
		r.in.store(r.response, responses.Output(r.response))
	}
	return out, nil
}

func (r *responsesStream) start() []byte { return r.s.Start() }
func (r *responsesStream) chunk(data []byte, usage *providers.Usage) ([]byte, error) {
	return r.s.Chunk(data, usage)
}
func (r *responsesStream) end(usage *providers.Usage) []byte {
	events, body, output := r.s.End(usage)
	r.in.store(body, output)
	return events
}
func (r *responsesStream) fail(e *APIError) []byte {
	if !r.passing {
		return r.s.Fail(e.Code, e.Message)
	}
	return fmt.Appendf(nil, "event: response.failed\ndata: %s\n\n", responses.FailedEvent(r.response, r.seq+1, e.Code, e.Message))
}
