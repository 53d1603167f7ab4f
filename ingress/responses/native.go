package responses

import (
	"bytes"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The native path: a backend that serves the Responses API itself takes
// the client's own request, made stateless (Stateless), and its answer
// becomes the gateway's (Own): the gateway's response id, the client's
// previous_response_id and store, while the output, usage and everything
// else stay as the backend wrote them. The conversation is the gateway's,
// kept in its store as on the translating path, so a follow-up may go to
// any backend.

// Stateless is body, the client's own request, as a backend takes it
// without the gateway's state: the conversation previous_response_id
// continues (history) is written into input before the client's input,
// previous_response_id is removed, and store is false, as the gateway
// keeps the conversation and the upstream need not. Items of history go
// without their ids (optional in input, and unknown to an upstream that
// stored nothing), except reasoning items, which go only when they carry
// their encrypted_content (the one form a stateless upstream accepts).
// body is not modified.
func Stateless(body []byte, history []Item) ([]byte, error) {
	out, err := sjson.DeleteBytes(body, "previous_response_id")
	if err != nil {
		return nil, err
	}
	if len(history) > 0 {
		var buf bytes.Buffer
		buf.WriteByte('[')
		add := func(it []byte) {
			if buf.Len() > 1 {
				buf.WriteByte(',')
			}
			buf.Write(it)
		}
		for _, it := range history {
			if it, ok := replayable(it); ok {
				add(it)
			}
		}
		in := gjson.GetBytes(body, "input")
		if in.Type == gjson.String {
			add(mustJSON(messageItem{Type: typeMessage, Role: "user", Content: []any{textPart{Type: partInputText, Text: in.Str}}}))
		} else {
			in.ForEach(func(_, v gjson.Result) bool {
				add([]byte(v.Raw))
				return true
			})
		}
		buf.WriteByte(']')
		if out, err = sjson.SetRawBytes(out, "input", buf.Bytes()); err != nil {
			return nil, err
		}
	}
	return sjson.SetBytes(out, "store", false)
}

// replayable is a stored item as a stateless upstream takes it in input;
// false when it cannot take it.
func replayable(it Item) ([]byte, bool) {
	v := gjson.ParseBytes(it)
	switch v.Get("type").Str {
	case "reasoning":
		return it, v.Get("encrypted_content").Type == gjson.String && v.Get("encrypted_content").Str != ""
	case typeMessage, typeFunctionCall, typeFunctionCallOutput:
		if v.Get("id").Exists() {
			out, err := sjson.DeleteBytes(it, "id")
			return out, err == nil
		}
	}
	return it, true
}

// Own makes a backend's Response object the gateway's: its id, the
// previous_response_id the client sent ("" for none) and the client's
// store. at is the object's path in data: "" for a Response, "response"
// for an event that carries one.
func Own(data []byte, at, id, previous string, store bool) ([]byte, error) {
	prefix := ""
	if at != "" {
		prefix = at + "."
	}
	out, err := sjson.SetBytes(data, prefix+"id", id)
	if err == nil {
		var prev any
		if previous != "" {
			prev = previous
		}
		out, err = sjson.SetBytes(out, prefix+"previous_response_id", prev)
	}
	if err == nil {
		out, err = sjson.SetBytes(out, prefix+"store", store)
	}
	return out, err
}

// Output is the output items of a Response object, copied.
func Output(response []byte) []Item {
	var out []Item
	gjson.GetBytes(response, "output").ForEach(func(_, v gjson.Result) bool {
		out = append(out, Item(bytes.Clone([]byte(v.Raw))))
		return true
	})
	return out
}

// FailedEvent is a response.failed event ending a native stream that
// failed after it started: response (the last Response object the stream
// carried, the gateway's already) with status failed and the error, and
// the sequence number after the last event's.
func FailedEvent(response []byte, sequence int64, code, message string) []byte {
	if code == "" {
		code = "server_error"
	}
	o := response
	if !gjson.ValidBytes(o) || !gjson.ParseBytes(o).IsObject() {
		o = []byte(`{"object":"response"}`)
	}
	o, _ = sjson.SetBytes(o, "status", statusFailed)
	o, _ = sjson.SetRawBytes(o, "error", mustJSON(responseError{Code: code, Message: message}))
	ev := mustJSON(struct {
		Type           string `json:"type"`
		SequenceNumber int64  `json:"sequence_number"`
	}{"response.failed", sequence})
	ev, _ = sjson.SetRawBytes(ev, "response", o)
	return ev
}
