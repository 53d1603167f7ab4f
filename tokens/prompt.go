package tokens

import (
	"github.com/tidwall/gjson"
)

// Operations Prompt knows: the values of providers.Operation.
const (
	OpChat       = "chat"            // POST /v1/chat/completions
	OpCompletion = "text_completion" // POST /v1/completions
	OpEmbeddings = "embeddings"      // POST /v1/embeddings
)

// Per-message overheads of OpenAI's chat format, from OpenAI's cookbook
// "How to count tokens with tiktoken" (gpt-3.5-turbo-0613 and later,
// gpt-4, gpt-4o): every message is wrapped in
// <|start|>{role/name}\n{content}<|end|>\n.
const (
	tokensPerMessage = 3 // the wrapping
	tokensPerName    = 1 // a message's name
	tokensPerReply   = 3 // every reply is primed with <|start|>assistant<|message|>
	tokensPerTool    = 3 // each tool call of an assistant message: an estimate
)

// Fixed estimates for inputs whose tokens depend on what the body does not
// tell.
const (
	// ImageLowTokens is an image part with "detail": "low": 85 tokens on
	// gpt-4o, gpt-4.1, gpt-4.5, o1 and o3.
	ImageLowTokens = 85
	// ImageTokens is any other image part: the most a high-detail image
	// costs on those models, 85 + 170 per 512-pixel tile of the image
	// scaled to fit 2048×2048 and then to 768 pixels on its shorter side,
	// that is 8 tiles (a 1024×1024 image: 4 tiles, 765 tokens). Models
	// that bill images as 32-pixel patches (gpt-4.1-mini, o4-mini: up to
	// ~2,700 tokens) and gpt-4o-mini (2,833 + 5,667 per tile) bill more.
	ImageTokens = 85 + 170*8
	// audioBytesPerToken: input audio at 10 tokens a second (OpenAI's
	// realtime rate for user audio), assuming at least 16 kbit/s, 2,000
	// bytes a second (wav is 16-bit PCM: 16,000 bytes a second and up).
	audioBytesPerToken    = 200
	wavAudioBytesPerToken = 1600
	// fileBytesPerToken: a file part's data (a PDF: its text plus an image
	// of each page) is guessed at a token per 4 bytes, the gateway's old
	// estimate for any body.
	fileBytesPerToken = 4
)

// ExactBytes bounds the text of one request body that Prompt counts with
// its encoding: strings that do not fit in what is left count by Approx,
// which over-estimates, so that the exact part of a large body costs at
// most ~10 ms (o200k_base counts 5–15 MB/s) and the rest ~7 ms a megabyte,
// and the count stays an upper estimate.
const ExactBytes = 64 << 10

// Prompt returns the prompt tokens of a request body for an operation
// (OpChat, OpCompletion, OpEmbeddings), counted with enc the way OpenAI
// bills them, for a quota or budget reservation:
//
//   - chat: 3 tokens a message, plus its role, name (and 1), content
//     strings and text parts, refusal, tool calls (function name and
//     arguments, id, and 3 more each) and tool_call_id; 3 for the reply.
//     Image parts count ImageTokens (ImageLowTokens at low detail), audio
//     parts by their size (10 tokens a second at 16 kbit/s, wav 128),
//     file parts a token per 4 bytes of their data. Tool and function
//     definitions, a json_schema response format and an object tool_choice
//     count as their JSON text: an approximation above what OpenAI bills,
//     which renders them more tersely. Any other field of a message or
//     content part counts as its JSON text by Approx.
//   - text_completion: the prompt (a string, strings, token ids or arrays
//     of token ids, which count their length) and the suffix.
//   - embeddings: the input, likewise.
//
// Other operations count the whole body by Approx. Past ExactBytes of
// text, strings count by Approx (see ExactBytes). The body is expected to
// be valid JSON; anything else gives some count, never a panic.
func Prompt(enc Encoding, op string, body []byte) int64 {
	c := counter{enc: enc, budget: ExactBytes}
	switch op {
	case OpChat:
		return c.chat(body)
	case OpCompletion:
		return c.input(gjson.GetBytes(body, "prompt"), 0) + c.text(gjson.GetBytes(body, "suffix").String())
	case OpEmbeddings:
		return c.input(gjson.GetBytes(body, "input"), 0)
	}
	return int64(Approx.Count(string(body)))
}

// counter counts with enc until its budget of bytes is spent, then with
// Approx.
type counter struct {
	enc    Encoding
	budget int
}

func (c *counter) text(s string) int64 {
	if s == "" {
		return 0
	}
	if len(s) > c.budget {
		return int64(Approx.Count(s))
	}
	c.budget -= len(s)
	return int64(c.enc.Count(s))
}

// raw counts a JSON value's text with the encoding.
func (c *counter) raw(v gjson.Result) int64 { return c.text(v.Raw) }

func (c *counter) chat(body []byte) int64 {
	var n int64
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		n += tokensPerMessage
		if !m.IsObject() {
			n += int64(Approx.Count(m.Raw))
			return true
		}
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.String() {
			case "role", "refusal", "tool_call_id":
				n += c.text(v.String())
			case "name":
				n += c.text(v.String()) + tokensPerName
			case "content":
				n += c.content(v)
			case "tool_calls":
				v.ForEach(func(_, call gjson.Result) bool {
					n += tokensPerTool + c.call(call.Get("function")) + c.text(call.Get("id").String())
					return true
				})
			case "function_call":
				n += c.call(v)
			default:
				n += int64(Approx.Count(v.Raw))
			}
			return true
		})
		return true
	})
	n += tokensPerReply
	for _, path := range [...]string{"tools", "functions", "response_format.json_schema"} {
		if v := gjson.GetBytes(body, path); v.Exists() {
			n += c.raw(v)
		}
	}
	if v := gjson.GetBytes(body, "tool_choice"); v.IsObject() {
		n += c.raw(v)
	}
	return n
}

func (c *counter) call(f gjson.Result) int64 {
	return c.text(f.Get("name").String()) + c.text(f.Get("arguments").String())
}

func (c *counter) content(v gjson.Result) int64 {
	if !v.IsArray() {
		return c.text(v.String())
	}
	var n int64
	v.ForEach(func(_, part gjson.Result) bool {
		switch part.Get("type").String() {
		case "text", "input_text":
			n += c.text(part.Get("text").String())
		case "image_url", "input_image":
			if part.Get("image_url.detail").String() == "low" || part.Get("detail").String() == "low" {
				n += ImageLowTokens
			} else {
				n += ImageTokens
			}
		case "input_audio":
			a := part.Get("input_audio")
			per := audioBytesPerToken
			if a.Get("format").String() == "wav" {
				per = wavAudioBytesPerToken
			}
			n += int64(decodedLen(a.Get("data").Raw)/per + 1)
		case "file":
			f := part.Get("file")
			n += int64(decodedLen(f.Get("file_data").Raw)/fileBytesPerToken) + c.text(f.Get("filename").String())
		default:
			if part.Type == gjson.String {
				n += c.text(part.String())
			} else {
				n += int64(Approx.Count(part.Raw))
			}
		}
		return true
	})
	return n
}

// decodedLen is about how many bytes a base64 JSON string (raw, quoted,
// maybe a data: URL) decodes to.
func decodedLen(raw string) int { return len(raw) * 3 / 4 }

// input counts a completion's prompt or an embedding's input: a string, a
// token id, or an array of those or of arrays of token ids. Deeper arrays,
// which OpenAI refuses, count by Approx.
func (c *counter) input(v gjson.Result, depth int) int64 {
	switch {
	case v.IsArray() && depth >= 2:
		return int64(Approx.Count(v.Raw))
	case v.IsArray():
		var n int64
		v.ForEach(func(_, e gjson.Result) bool {
			n += c.input(e, depth+1)
			return true
		})
		return n
	case v.Type == gjson.Number:
		return 1
	case v.Type == gjson.String:
		return c.text(v.Str)
	}
	return 0
}
