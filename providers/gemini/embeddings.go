package gemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Embeddings go to embedContent for one input and to batchEmbedContents,
// 100 inputs a call (the API's limit), for more.
// https://ai.google.dev/api/embeddings

// maxBatch is how many inputs one batchEmbedContents call takes
// ("BatchEmbedContentsRequest.requests: at most 100 requests can be in one
// batch").
const maxBatch = 100

// embedRequest is an EmbedContentRequest; model is the resource name.
type embedRequest struct {
	Model                string  `json:"model"`
	Content              content `json:"content"`
	OutputDimensionality int     `json:"outputDimensionality,omitempty"`
}

type batchEmbedRequest struct {
	Requests []embedRequest `json:"requests"`
}

type contentEmbedding struct {
	Values []float64 `json:"values"`
}

// embedResponse holds either answer: embedContent's embedding or
// batchEmbedContents' embeddings.
type embedResponse struct {
	Embedding  *contentEmbedding  `json:"embedding"`
	Embeddings []contentEmbedding `json:"embeddings"`
}

// embeddingsRequest is the part of OpenAI's embeddings request Gemini can
// serve.
type embeddingsRequest struct {
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// OpenAI's embeddings answer.
type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float64, or a base64 string
}

type embeddingUsage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

// parseEmbeddings reads an embeddings request: input is a string or an
// array of strings; token arrays have no Gemini equivalent.
func parseEmbeddings(body []byte) (inputs []string, format string, dims int, err error) {
	var w embeddingsRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, "", 0, chatwire.Invalid("", "the request body is not a valid embeddings request: %v", err)
	}
	in := bytes.TrimSpace(w.Input)
	switch {
	case len(in) == 0 || string(in) == "null":
		return nil, "", 0, chatwire.Invalid("input", "input is required")
	case in[0] == '"':
		var s string
		if json.Unmarshal(in, &s) != nil {
			return nil, "", 0, chatwire.Invalid("input", "input must be a string or an array of strings")
		}
		inputs = []string{s}
	case in[0] == '[':
		var raw []json.RawMessage
		if json.Unmarshal(in, &raw) != nil {
			return nil, "", 0, chatwire.Invalid("input", "input must be a string or an array of strings")
		}
		for _, r := range raw {
			var s string
			if json.Unmarshal(r, &s) != nil {
				return nil, "", 0, chatwire.Invalid("input", "Gemini embeds text only: input must be a string or an array of strings, not tokens")
			}
			inputs = append(inputs, s)
		}
	default:
		return nil, "", 0, chatwire.Invalid("input", "input must be a string or an array of strings")
	}
	if len(inputs) == 0 {
		return nil, "", 0, chatwire.Invalid("input", "input must not be empty")
	}
	for i, s := range inputs {
		if s == "" {
			return nil, "", 0, chatwire.Invalid("input", "input[%d] is empty", i)
		}
	}
	switch w.EncodingFormat {
	case "", "float":
		format = "float"
	case "base64":
		format = "base64"
	default:
		return nil, "", 0, chatwire.Invalid("encoding_format", "encoding_format must be float or base64")
	}
	if w.Dimensions != nil {
		if *w.Dimensions <= 0 {
			return nil, "", 0, chatwire.Invalid("dimensions", "dimensions must be positive")
		}
		dims = *w.Dimensions
	}
	return inputs, format, dims, nil
}

// embed serves an embeddings request.
func (c *Client) embed(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	inputs, format, dims, err := parseEmbeddings(req.Body)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()

	var vectors [][]float64
	for start := 0; start < len(inputs); start += maxBatch {
		batch := inputs[start:min(start+maxBatch, len(inputs))]
		got, err := c.embedBatch(a, req, batch, dims)
		if err != nil {
			return nil, err
		}
		vectors = append(vectors, got...)
	}
	return embeddingsResponse(vectors, inputs, format, req.Model)
}

// embedBatch embeds up to maxBatch inputs in one call.
func (c *Client) embedBatch(a *upstream.Attempt, req *providers.Request, inputs []string, dims int) ([][]float64, error) {
	reqs := make([]embedRequest, len(inputs))
	for i, s := range inputs {
		reqs[i] = embedRequest{Model: resourceName(req.Model), Content: content{Parts: []part{{Text: s}}}, OutputDimensionality: dims}
	}
	var body []byte
	var url string
	if len(reqs) == 1 {
		body, _ = json.Marshal(reqs[0])
		url = c.modelURL(req.Model, "embedContent")
	} else {
		body, _ = json.Marshal(batchEmbedRequest{Requests: reqs})
		url = c.modelURL(req.Model, "batchEmbedContents")
	}
	data, err := c.post(a, req, url, body)
	if err != nil {
		return nil, err
	}
	var r embedResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, c.BadResponse(err, "sent a response that is not an embeddings response")
	}
	var out [][]float64
	if r.Embedding != nil {
		out = [][]float64{r.Embedding.Values}
	} else {
		for _, e := range r.Embeddings {
			out = append(out, e.Values)
		}
	}
	if len(out) != len(inputs) {
		return nil, c.BadResponse(nil, "answered %d inputs with %d embeddings", len(inputs), len(out))
	}
	return out, nil
}

// resourceName is a model's resource name, models/{model}.
func resourceName(model string) string {
	if strings.Contains(model, "/") {
		return model
	}
	return "models/" + model
}

// embeddingsResponse writes OpenAI's answer. Gemini reports no token
// counts for embeddings, so usage is estimated, at 4 bytes a token (the
// Gemini docs put a token at "about 4 characters"), and marked Estimated.
// https://ai.google.dev/gemini-api/docs/tokens
func embeddingsResponse(vectors [][]float64, inputs []string, format, model string) (*providers.Response, error) {
	list := embeddingList{Object: "list", Data: make([]embeddingItem, len(vectors)), Model: model}
	for i, v := range vectors {
		item := embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if v == nil {
			item.Embedding = []float64{}
		}
		if format == "base64" {
			item.Embedding = base64Floats(v)
		}
		list.Data[i] = item
	}
	var tokens int64
	for _, s := range inputs {
		tokens += estimateTokens(s)
	}
	list.Usage = embeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("encoding the embeddings response: %w", err)
	}
	return &providers.Response{Body: b, Usage: &providers.Usage{PromptTokens: tokens, Estimated: true}}, nil
}

// estimateTokens is an input's estimated token count: a token per 4 bytes,
// rounded up.
func estimateTokens(s string) int64 { return int64((len(s) + 3) / 4) }

// base64Floats is OpenAI's base64 encoding: the little-endian float32s.
func base64Floats(v []float64) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(f)))
	}
	return base64.StdEncoding.EncodeToString(b)
}
