package corpus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ---- an order-keeping JSON writer ----

type kv struct {
	k string
	v any
}

// obj is a JSON object that keeps its keys in order.
type obj []kv

func encodeJSON(v any) string {
	var b bytes.Buffer
	writeJSON(&b, v)
	return b.String()
}

func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case obj:
		b.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, f.k)
			b.WriteByte(':')
			writeJSON(b, f.v)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case nil:
		b.WriteString("null")
	default:
		panic(fmt.Sprintf("corpus: cannot encode %T", v))
	}
}

// writeString writes s as a JSON string without HTML escaping, so that
// values keep their characters (only quotes, backslashes and controls are
// escaped).
func writeString(b *bytes.Buffer, s string) {
	var t bytes.Buffer
	e := json.NewEncoder(&t)
	e.SetEscapeHTML(false)
	if err := e.Encode(s); err != nil {
		panic(err)
	}
	b.Write(bytes.TrimSuffix(t.Bytes(), []byte("\n")))
}

// ---- places ----

type placeKind int

const (
	textPlace  placeKind = iota // holds a sentence
	valuePlace                  // holds the value as such (any characters)
	tokenPlace                  // holds an identifier-like value: no whitespace
	urlPlace                    // an image_url url
	filePlace                   // a file part's file_data
)

type placeDef struct {
	name      string
	op        string
	kind      placeKind
	b64ok     bool // a base64 blob in prose fits here
	jsonok    bool // a JSON document string fits here
	ctxKey    bool // the value sits under a key that names its kind
	maxLen    int  // in runes; 0 means no limit
	noNewline bool
}

// Ops.
const (
	OpChat           = "chat"
	OpTextCompletion = "text_completion"
	OpEmbeddings     = "embeddings"
)

// Places, in the order they are offered.
var places = []placeDef{
	{name: "user_content", op: OpChat, kind: textPlace, b64ok: true},
	{name: "user_text_part", op: OpChat, kind: textPlace, b64ok: true},
	{name: "system", op: OpChat, kind: textPlace, b64ok: true},
	{name: "assistant_content", op: OpChat, kind: textPlace, b64ok: true},
	{name: "tool_content", op: OpChat, kind: textPlace, b64ok: true, jsonok: true},
	{name: "tool_call_id", op: OpChat, kind: tokenPlace, maxLen: 200},
	{name: "message_name", op: OpChat, kind: tokenPlace, maxLen: 64},
	{name: "tool_arguments", op: OpChat, kind: valuePlace, jsonok: true, ctxKey: true},
	{name: "tool_description", op: OpChat, kind: textPlace},
	{name: "tool_param_description", op: OpChat, kind: textPlace},
	{name: "tool_param_enum", op: OpChat, kind: valuePlace, maxLen: 200, noNewline: true},
	{name: "metadata_value", op: OpChat, kind: valuePlace, ctxKey: true, maxLen: 512},
	{name: "metadata_key", op: OpChat, kind: tokenPlace, maxLen: 64},
	{name: "user", op: OpChat, kind: valuePlace, maxLen: 256, noNewline: true},
	{name: "image_url", op: OpChat, kind: urlPlace},
	{name: "file_data", op: OpChat, kind: filePlace},
	{name: "response_format", op: OpChat, kind: textPlace},
	{name: "stop", op: OpChat, kind: valuePlace, maxLen: 100, noNewline: true},
	{name: "prompt", op: OpTextCompletion, kind: textPlace, b64ok: true},
	{name: "embeddings_input", op: OpEmbeddings, kind: textPlace, b64ok: true},
	{name: "embeddings_input_array", op: OpEmbeddings, kind: textPlace, b64ok: true},
}

// Places lists the place names a Case can have.
func Places() []string {
	out := make([]string, len(places))
	for i, p := range places {
		out[i] = p.name
	}
	return out
}

type payloadKind int

const (
	plainPayload   payloadKind = iota // the value in prose (text) or as such (value)
	b64Payload                        // prose carrying a base64 blob
	urlPayload                        // an image URL whose query carries the value
	dataURLPayload                    // a data: URL
	jsonPayload                       // a JSON document (tool arguments or result)
)

// payload is what a case puts into its place.
type payload struct {
	kind    payloadKind
	text    string // a sentence, for text places
	value   string // the value as written with what sticks to it, for value and token places
	needCtx bool   // the value is only recognisable next to a context word
	url     string // for url and file places
	json    string // for jsonPayload
	param   string // the JSON key the value sits under
}

func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

func (p placeDef) accepts(pl payload) bool {
	switch pl.kind {
	case b64Payload:
		return p.kind == textPlace && p.b64ok
	case urlPayload:
		return p.kind == urlPlace
	case dataURLPayload:
		return p.kind == urlPlace || p.kind == filePlace
	case jsonPayload:
		return p.jsonok
	}
	switch p.kind {
	case textPlace:
		return pl.text != ""
	case valuePlace:
		if pl.value == "" || pl.needCtx && !p.ctxKey {
			return false
		}
		if p.noNewline && strings.ContainsAny(pl.value, "\r\n") {
			return false
		}
		return p.maxLen == 0 || utf8.RuneCountInString(pl.value) <= p.maxLen
	case tokenPlace:
		return pl.value != "" && !pl.needCtx && !hasSpace(pl.value) &&
			(p.maxLen == 0 || utf8.RuneCountInString(pl.value) <= p.maxLen)
	case urlPlace:
		return pl.url != ""
	}
	return false
}

// ---- bodies ----

const imageBase = "https://img.example.com/a.png"

const toolName = "lookup_record"

func msg(role string, content any) obj { return obj{{"role", role}, {"content", content}} }

func textPart(s string) obj { return obj{{"type", "text"}, {"text", s}} }

func (g *gen) callID() string { return "call_" + randFrom(g.r, alnum, 24) }

func assistantCall(id, args string) obj {
	return obj{{"role", "assistant"}, {"content", nil}, {"tool_calls", []any{
		obj{{"id", id}, {"type", "function"}, {"function", obj{{"name", toolName}, {"arguments", args}}}},
	}}}
}

func toolResult(id, content string) obj {
	return obj{{"role", "tool"}, {"tool_call_id", id}, {"content", content}}
}

// tools returns a one-function tool list; desc, paramDesc and enum may
// carry the value.
func tools(param, desc, paramDesc string, enum []any) []any {
	prop := obj{{"type", "string"}, {"description", paramDesc}}
	if enum != nil {
		prop = append(prop, kv{"enum", enum})
	}
	return []any{obj{{"type", "function"}, {"function", obj{
		{"name", toolName},
		{"description", desc},
		{"parameters", obj{
			{"type", "object"},
			{"properties", obj{{param, prop}}},
			{"required", []any{param}},
		}},
	}}}}
}

const (
	defaultToolDesc  = "Looks up a record in the CRM and returns its current fields."
	defaultParamDesc = "The field to look up."
)

// body builds the request JSON with the payload in the given place.
func (g *gen) body(p placeDef, lang string, pl payload) []byte {
	prompt := pick(g.r, fillerPrompts[lang])
	// The tool's parameter is named after the value's kind only where the
	// value goes through it.
	param := "query"
	if pl.param != "" && (p.name == "tool_arguments" || p.name == "tool_param_enum" ||
		p.name == "metadata_value" || p.name == "tool_param_description") {
		param = pl.param
	}
	cleanArgs := encodeJSON(obj{{"query", strings.ToLower(strings.TrimRight(prompt, ".?!"))}})
	cleanResult := encodeJSON(obj{{"status", "ok"}, {"updated", true}})

	switch p.op {
	case OpTextCompletion:
		return []byte(encodeJSON(obj{{"model", Model}, {"prompt", pl.text}, {"max_tokens", 64}, {"temperature", 0}, {"stream", false}}))
	case OpEmbeddings:
		var input any = pl.text
		if p.name == "embeddings_input_array" {
			input = []any{prompt, pl.text}
		}
		return []byte(encodeJSON(obj{{"model", Model}, {"input", input}, {"encoding_format", "float"}}))
	}

	var messages []any
	var extra obj
	withTools := false
	tDesc, tParamDesc := defaultToolDesc, defaultParamDesc
	var tEnum []any

	switch p.name {
	case "user_content":
		messages = []any{msg("system", systemIntros[lang]), msg("user", pl.text)}
	case "user_text_part":
		messages = []any{msg("user", []any{textPart(prompt), textPart(pl.text)})}
	case "system":
		messages = []any{msg("system", systemIntros[lang]+" "+pl.text), msg("user", prompt)}
	case "assistant_content":
		messages = []any{msg("user", prompt), msg("assistant", pl.text), msg("user", followUps[lang])}
	case "tool_content":
		id := g.callID()
		content := pl.text
		if pl.kind == jsonPayload {
			content = pl.json
		}
		messages = []any{msg("user", prompt), assistantCall(id, cleanArgs), toolResult(id, content)}
		withTools = true
	case "tool_call_id":
		id := "call_" + pl.value
		messages = []any{msg("user", prompt), assistantCall(id, cleanArgs), toolResult(id, cleanResult)}
		withTools = true
	case "message_name":
		m := msg("user", prompt)
		m = append(m, kv{"name", pl.value})
		messages = []any{m}
	case "tool_arguments":
		id := g.callID()
		args := encodeJSON(obj{{param, pl.value}})
		if pl.kind == jsonPayload {
			args = pl.json
		}
		messages = []any{msg("user", prompt), assistantCall(id, args), toolResult(id, cleanResult)}
		withTools = true
	case "tool_description":
		tDesc = pl.text
		messages = []any{msg("user", prompt)}
		withTools = true
	case "tool_param_description":
		tParamDesc = pl.text
		messages = []any{msg("user", prompt)}
		withTools = true
	case "tool_param_enum":
		tEnum = []any{pl.value, "other"}
		messages = []any{msg("user", prompt)}
		withTools = true
	case "metadata_value":
		messages = []any{msg("user", prompt)}
		extra = append(extra, kv{"metadata", obj{{"ticket", "T-" + randDigits(g.r, 6)}, {param, pl.value}}})
	case "metadata_key":
		messages = []any{msg("user", prompt)}
		extra = append(extra, kv{"metadata", obj{{"ticket", "T-" + randDigits(g.r, 6)}, {pl.value, "customer"}}})
	case "user":
		messages = []any{msg("user", prompt)}
		extra = append(extra, kv{"user", pl.value})
	case "image_url":
		messages = []any{msg("user", []any{
			textPart(attachmentPrompts[lang]),
			obj{{"type", "image_url"}, {"image_url", obj{{"url", pl.url}, {"detail", "auto"}}}},
		})}
	case "file_data":
		messages = []any{msg("user", []any{
			textPart(attachmentPrompts[lang]),
			obj{{"type", "file"}, {"file", obj{{"filename", "note.txt"}, {"file_data", pl.url}}}},
		})}
	case "response_format":
		messages = []any{msg("user", prompt)}
		extra = append(extra, kv{"response_format", obj{{"type", "json_schema"}, {"json_schema", obj{
			{"name", "ticket_summary"},
			{"description", pl.text},
			{"schema", obj{
				{"type", "object"},
				{"properties", obj{{"summary", obj{{"type", "string"}}}}},
				{"required", []any{"summary"}},
				{"additionalProperties", false},
			}},
			{"strict", true},
		}}}})
	case "stop":
		messages = []any{msg("user", prompt)}
		extra = append(extra, kv{"stop", []any{"END", pl.value}})
	default:
		panic("corpus: unknown place " + p.name)
	}

	body := obj{{"model", Model}, {"messages", messages}}
	if withTools {
		body = append(body, kv{"tools", tools(param, tDesc, tParamDesc, tEnum)})
	}
	body = append(body, extra...)
	body = append(body, kv{"max_tokens", 256}, kv{"stream", false})
	return []byte(encodeJSON(body))
}
