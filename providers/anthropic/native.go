package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// The native path: the client spoke the Messages API to the gateway, so
// its own request goes upstream as it is (cache_control, thinking blocks,
// fields this package has never heard of), with only "model" and "stream"
// rewritten, and Anthropic's answer comes back as it is: the message JSON,
// or each event's data. The endpoint, headers, timeouts and error mapping
// are the translating path's.

// SpeaksNative reports whether the client sends requests in format as they
// are: Anthropic's Messages API only.
func (c *Client) SpeaksNative(format string) bool {
	return format == providers.FormatAnthropicMessages
}

// isNative reports whether req is sent natively.
func isNative(req *providers.Request) bool {
	return req.Native != nil && req.Native.Format == providers.FormatAnthropicMessages
}

// doNative sends the client's own request and returns Anthropic's message
// as it came.
func (c *Client) doNative(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	body, beta, err := c.nativeRequest(req, false)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()
	data, err := c.Post(a, func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body, beta, false) }, c.statusError)
	if err != nil {
		return nil, err
	}
	var m struct {
		Type  string `json:"type"`
		Usage *usage `json:"usage"`
	}
	err = json.Unmarshal(data, &m)
	if err == nil && m.Type != "message" {
		err = fmt.Errorf("the response is of type %q, not message", m.Type)
	}
	if err != nil {
		return nil, c.BadResponse(err, "sent a response that is not a Messages API message")
	}
	res := &providers.Response{Body: data, Native: true}
	if m.Usage != nil {
		res.Usage = m.Usage.chat().Normalised()
	}
	return res, nil
}

// streamNative starts the client's own request as a stream of Anthropic's
// events.
func (c *Client) streamNative(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	body, beta, err := c.nativeRequest(req, true)
	if err != nil {
		return nil, err
	}
	a, rc, err := c.OpenStream(ctx, "text/event-stream", func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body, beta, true) }, c.statusError)
	if err != nil {
		return nil, err
	}
	return c.newNativeStream(a, rc), nil
}

// nativeRequest is the body and the anthropic-beta header for the client's
// own request.
func (c *Client) nativeRequest(req *providers.Request, stream bool) (body []byte, beta string, err error) {
	beta, err = mergeBetas(c.o.Beta, req.Native.Beta)
	if err != nil {
		return nil, "", err
	}
	body, err = nativeBody(req.Native.Body, req.Model, stream)
	if err != nil {
		return nil, "", err
	}
	return body, beta, nil
}

// invalidNative is a 400 for a native request that cannot be sent.
func invalidNative(param, msg string) *providers.Error {
	return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Param: param, Message: msg}
}

// nativeBody is the client's Messages request body with its top-level
// "model" set to model and "stream" to stream. Every other byte is kept:
// the values are replaced where they stand, and a missing "model" (or a
// missing "stream" on a streaming call) is inserted first in the object.
// A missing "stream" on a non-streaming call stays missing (false is the
// default). body is not modified. A body that is not a JSON object, or
// that repeats "model" or "stream" (where readers disagree on which one
// counts), is refused.
func nativeBody(body []byte, model string, stream bool) ([]byte, error) {
	if !json.Valid(body) {
		return nil, invalidNative("", "the request body is not valid JSON")
	}
	open := bytes.IndexByte(body, '{')
	if open < 0 || len(bytes.TrimLeft(body[:open], " \t\r\n")) != 0 {
		return nil, invalidNative("", "the request body is not a JSON object")
	}
	type member struct {
		n          int // occurrences
		start, end int // the value's bytes in body
	}
	var mod, str member
	members, misplaced := 0, false
	gjson.Parse(string(body[open:])).ForEach(func(k, v gjson.Result) bool {
		members++
		var m *member
		switch k.Str {
		case "model":
			m = &mod
		case "stream":
			m = &str
		default:
			return true
		}
		m.n++
		m.start = open + v.Index
		m.end = m.start + len(v.Raw)
		misplaced = misplaced || m.end > len(body) || string(body[m.start:m.end]) != v.Raw
		return !misplaced
	})
	switch {
	case misplaced:
		return nil, invalidNative("", "the request body could not be read")
	case mod.n > 1:
		return nil, invalidNative("model", `the request body holds "model" more than once`)
	case str.n > 1:
		return nil, invalidNative("stream", `the request body holds "stream" more than once`)
	}
	modelJSON, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	streamJSON := []byte("false")
	if stream {
		streamJSON = []byte("true")
	}

	type edit struct {
		start, end int
		text       []byte
	}
	var edits, insert []edit
	var head [][]byte // members inserted after '{'
	if mod.n == 1 {
		edits = append(edits, edit{mod.start, mod.end, modelJSON})
	} else {
		head = append(head, append([]byte(`"model":`), modelJSON...))
	}
	if str.n == 1 {
		edits = append(edits, edit{str.start, str.end, streamJSON})
	} else if stream {
		head = append(head, append([]byte(`"stream":`), streamJSON...))
	}
	if len(head) > 0 {
		text := bytes.Join(head, []byte{','})
		if members > 0 {
			text = append(text, ',')
		}
		insert = append(insert, edit{open + 1, open + 1, text})
	}
	edits = append(insert, edits...)
	slices.SortStableFunc(edits, func(a, b edit) int { return a.start - b.start })

	out := make([]byte, 0, len(body)+len(modelJSON)+32)
	at := 0
	for _, e := range edits {
		out = append(out, body[at:e.start]...)
		out = append(out, e.text...)
		at = e.end
	}
	return append(out, body[at:]...), nil
}

// mergeBetas is the anthropic-beta header: the backend's values, then the
// client's, each once, comma-joined. Values may themselves be
// comma-separated lists. A value with a control character is refused: it
// cannot be sent as a header.
func mergeBetas(configured, client []string) (string, error) {
	var out []string
	seen := map[string]bool{}
	for i, list := range [][]string{configured, client} {
		for _, v := range list {
			for b := range strings.SplitSeq(v, ",") {
				b = strings.TrimSpace(b)
				if b == "" || seen[b] {
					continue
				}
				if strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					if i == 1 {
						return "", invalidNative("anthropic-beta", "an anthropic-beta value holds a control character")
					}
					continue // a configuration mistake; config validation is not this package's
				}
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	return strings.Join(out, ","), nil
}

// maxEarlyEvents bounds the unknown events held back before message_start.
const maxEarlyEvents = 64

// nativeStream relays Anthropic's events as they came, one Event per SSE
// event, with the running usage on message_start and message_delta. It
// reads the stream as strictly as the translating stream does, so that the
// same streams fail with the same errors, and so that the first Recv
// returns an error rather than an event when the upstream fails before
// message_start: pings before it are dropped, and events of unknown type
// before it are held back and sent just before it.
type nativeStream struct {
	*upstream.Events
	c *Client

	started bool // message_start was read
	usage   usage
	early   []providers.Event // unknown events before message_start, copied
	pending []providers.Event
}

// cutShort is how a stream that ends before message_stop ended.
const cutShort = "ended the stream before message_stop"

func (c *Client) newNativeStream(a *upstream.Attempt, body io.ReadCloser) *nativeStream {
	return &nativeStream{Events: c.Events(a, body, cutShort), c: c}
}

func (s *nativeStream) Recv() (providers.Event, error) {
	for {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending = s.pending[1:]
			return ev, nil
		}
		ev, err := s.Next()
		if err != nil {
			return providers.Event{}, err
		}
		out, ok, err := s.handle(ev)
		if err != nil {
			s.Fail(err)
			s.early = nil
			continue
		}
		if ok {
			return out, nil
		}
	}
}

// handle reads one event: the event to return now, if any. Its Data is
// the reader's, valid until the next read.
func (s *nativeStream) handle(ev sse.Event) (providers.Event, bool, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(ev.Data, &head); err != nil {
		return providers.Event{}, false, s.c.BadResponse(err, "sent an event that is not a JSON object")
	}
	typ := head.Type
	if typ == "" {
		typ = ev.Name
	}
	out := providers.Event{Data: ev.Data, Native: true}
	switch typ {
	case "error":
		return out, false, s.c.eventError(ev.Data)
	case "message_start":
		if s.started {
			return out, false, s.c.BadResponse(nil, "sent a second message_start")
		}
		var e struct {
			Message struct {
				Usage usage `json:"usage"`
			} `json:"message"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return out, false, s.c.BadResponse(err, "sent a %s event that cannot be read", typ)
		}
		s.started = true
		s.usage.merge(e.Message.Usage)
		out.Usage = s.usage.chat().Normalised()
		if len(s.early) > 0 {
			s.pending = append(s.early, out)
			s.early = nil
			return providers.Event{}, false, nil
		}
		return out, true, nil
	case "ping":
		return out, s.started, nil
	case "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
	default:
		// A type added after this was written: relayed, and held back
		// until message_start when it comes before.
		if !s.started {
			if len(s.early) >= maxEarlyEvents {
				return out, false, s.c.BadResponse(nil, "sent more than %d events before message_start", maxEarlyEvents)
			}
			out.Data = bytes.Clone(ev.Data)
			s.early = append(s.early, out)
			return out, false, nil
		}
		return out, true, nil
	}
	if !s.started {
		return out, false, s.c.BadResponse(nil, "sent %s before message_start", typ)
	}
	switch typ {
	case "message_delta":
		var e struct {
			Usage usage `json:"usage"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return out, false, s.c.BadResponse(err, "sent a %s event that cannot be read", typ)
		}
		s.usage.merge(e.Usage)
		out.Usage = s.usage.chat().Normalised()
	case "message_stop":
		s.Finish()
	}
	return out, true, nil
}
