package messages

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// The Messages API response.
// https://platform.claude.com/docs/en/api/messages/create

type messageJSON struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"` // message
	Role         string    `json:"role"` // assistant
	Model        string    `json:"model"`
	Content      []any     `json:"content"` // textBlock, toolUseBlock
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        usageJSON `json:"usage"`
}

type textBlock struct {
	Type string `json:"type"` // text
	Text string `json:"text"`
}

type toolUseBlock struct {
	Type  string          `json:"type"` // tool_use
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// usageJSON is the Messages usage object: input_tokens excludes the tokens
// read from and written to the prompt cache, which are counted apart.
type usageJSON struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

// anthropicUsage converts normalised usage, whose prompt tokens include
// the cached and cache-written ones.
func anthropicUsage(u *providers.Usage) usageJSON {
	if u == nil {
		return usageJSON{}
	}
	in := max(u.PromptTokens-u.CachedTokens-u.CacheWriteTokens, 0)
	return usageJSON{InputTokens: in, CacheCreationInputTokens: u.CacheWriteTokens,
		CacheReadInputTokens: u.CachedTokens, OutputTokens: u.CompletionTokens}
}

// chatUsage reads an OpenAI usage object (with the gateway's
// prompt_tokens_details.cache_write_tokens); nil when there is none.
func chatUsage(u gjson.Result) *providers.Usage {
	if !u.IsObject() {
		return nil
	}
	return &providers.Usage{PromptTokens: u.Get("prompt_tokens").Int(), CompletionTokens: u.Get("completion_tokens").Int(),
		CachedTokens:     u.Get("prompt_tokens_details.cached_tokens").Int(),
		CacheWriteTokens: u.Get("prompt_tokens_details.cache_write_tokens").Int()}
}

// Stop reasons.
const (
	stopEndTurn      = "end_turn"
	stopMaxTokens    = "max_tokens"
	stopToolUse      = "tool_use"
	stopStopSequence = "stop_sequence"
	stopRefusal      = "refusal"
)

// stopReason maps an OpenAI finish_reason. A "stop" with tool calls (some
// backends say so) is tool_use; a "stop" on a matched stop sequence, which
// vLLM reports as the choice's stop_reason, is stop_sequence.
func stopReason(finish string, toolCalls, refused bool, stopSeq string) string {
	switch finish {
	case "length":
		return stopMaxTokens
	case "tool_calls", "function_call":
		return stopToolUse
	case "content_filter":
		return stopRefusal
	}
	switch {
	case refused:
		return stopRefusal
	case toolCalls:
		return stopToolUse
	case stopSeq != "":
		return stopStopSequence
	}
	return stopEndTurn
}

// newID is a random id with prefix, like Anthropic's (24 base62 digits).
// Tests replace it.
var newID = func(prefix string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [24]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return prefix + string(b[:])
}

// NewMessageID is a new random message id, "msg_...".
func NewMessageID() string { return newID("msg_") }

// MessageID is the message id for a chat completion id: "chatcmpl-X" is
// "msg_X" ("msg_X" when X already is "msg_X", as the Anthropic provider
// writes it); a new id when there is none.
func MessageID(chatID string) string {
	rest := strings.TrimPrefix(chatID, "chatcmpl-")
	switch {
	case rest == "":
		return NewMessageID()
	case strings.HasPrefix(rest, "msg_"):
		return rest
	}
	return "msg_" + rest
}

// toolInput parses a tool call's arguments into a tool_use input, which
// must be a JSON object. Empty arguments are {}; a JSON string holding an
// object (arguments encoded twice) is that object. Anything else (invalid
// or truncated JSON, an array) is {}: the call still reaches the client,
// whose tool then reports the missing parameters to the model, which can
// retry — the Anthropic SDKs do the same with a streamed input that does
// not parse.
func toolInput(args gjson.Result) json.RawMessage {
	raw := args.Raw
	if args.Type == gjson.String {
		raw = args.Str
		if inner := strings.TrimSpace(raw); strings.HasPrefix(inner, `"`) && gjson.Valid(inner) {
			raw = gjson.Parse(inner).Str
		}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" || !gjson.Valid(raw) || !gjson.Parse(raw).IsObject() {
		return json.RawMessage(`{}`)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return json.RawMessage(`{}`)
	}
	return buf.Bytes()
}

// chatText is a message's content: a string, or text parts joined.
func chatText(c gjson.Result) string {
	if c.IsArray() {
		var b strings.Builder
		for _, p := range c.Array() {
			if t := p.Get("text"); t.Type == gjson.String {
				b.WriteString(t.Str)
			}
		}
		return b.String()
	}
	if c.Type == gjson.String {
		return c.Str
	}
	return ""
}

// FromChat turns an OpenAI chat completion into a Messages response for
// model (the model the client asked for). Its content is a text block
// (the message's text, then its refusal), if there is text, then a tool_use
// block per tool call (see toolInput for arguments that are not a JSON
// object). usage is the request's usage; nil reads the completion's.
// Reasoning text (reasoning_content) is dropped: it carries no signature
// the client could send back.
func FromChat(chat []byte, model string, usage *providers.Usage) ([]byte, error) {
	if !gjson.ValidBytes(chat) {
		return nil, fmt.Errorf("the chat completion is not valid JSON")
	}
	root := gjson.ParseBytes(chat)
	if !root.IsObject() {
		return nil, fmt.Errorf("the chat completion is not a JSON object")
	}
	choice := root.Get("choices.0")
	if !choice.IsObject() {
		if e := root.Get("error.message"); e.Exists() {
			return nil, fmt.Errorf("the upstream answered an error: %s", e.String())
		}
		return nil, fmt.Errorf("the chat completion has no choices")
	}
	msg := choice.Get("message")
	m := messageJSON{ID: MessageID(root.Get("id").String()), Type: "message", Role: "assistant", Model: model,
		Content: []any{}}
	text := chatText(msg.Get("content"))
	refusal := msg.Get("refusal").String()
	if refusal != "" {
		if text != "" {
			text += "\n\n"
		}
		text += refusal
	}
	if text != "" {
		m.Content = append(m.Content, textBlock{Type: "text", Text: text})
	}
	calls := msg.Get("tool_calls").Array()
	if fc := msg.Get("function_call"); len(calls) == 0 && fc.IsObject() {
		calls = []gjson.Result{gjson.Parse(`{"function":` + fc.Raw + `}`)}
	}
	n := 0
	for _, tc := range calls {
		fn := tc.Get("function")
		if !fn.IsObject() {
			continue
		}
		id := tc.Get("id").String()
		if id == "" {
			id = newID("toolu_")
		}
		m.Content = append(m.Content, toolUseBlock{Type: "tool_use", ID: id, Name: fn.Get("name").String(),
			Input: toolInput(fn.Get("arguments"))})
		n++
	}
	var stopSeq *string
	finish := choice.Get("finish_reason").String()
	if sr := choice.Get("stop_reason"); sr.Type == gjson.String && sr.Str != "" && finish == "stop" && n == 0 {
		stopSeq = &sr.Str
	}
	reason := stopReason(finish, n > 0, refusal != "", ptrStr(stopSeq))
	m.StopReason = &reason
	if reason == stopStopSequence {
		m.StopSequence = stopSeq
	}
	if usage == nil {
		usage = chatUsage(root.Get("usage"))
	}
	m.Usage = anthropicUsage(usage)
	return marshalErr(m)
}

func ptrStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
