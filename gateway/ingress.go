package gateway

import (
	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/providers"
)

// coveredBy reports whether every entity found in native was also found
// in translated (as many, by label, strong and weak): then a decision
// made on the translation holds for the native request too.
func coveredBy(native, translated classify.Findings) bool {
	for _, pair := range [][2]map[string]int{{native.Counts(), translated.Counts()}, {native.WeakCounts(), translated.WeakCounts()}} {
		for label, n := range pair[0] {
			if pair[1][label] < n {
				return false
			}
		}
	}
	return true
}

// Ingresses
//
// Every API the gateway accepts (OpenAI chat completions, completions and
// embeddings; OpenAI Responses; Anthropic Messages) runs through one
// pipeline (serve): an ingress that is not OpenAI chat parses its own
// format, validates it, and translates it into a chat-completions body;
// classification, policy, quotas, routing, settlement, the ledger and
// tracing then run on that body, which is exactly what a translating
// upstream receives. The ingress renders the answer back in the client's
// format: a complete answer (ingress.answer), a stream (streamFormat) and
// errors (handleError, by path).

// ingress renders answers in a client's API format.
type ingress interface {
	// answer renders a complete OpenAI chat completion, whose usage (as
	// reported or estimated) is given.
	answer(chat []byte, usage *providers.Usage) ([]byte, error)
	// nativeAnswer is the answer of a backend that took the client's own
	// request (providers.Native): already in the client's format, it may
	// still need the gateway's part (the Responses API's response id and
	// stored conversation).
	nativeAnswer(body []byte) ([]byte, error)
	// events returns the translator for one stream; promptTokens is the
	// prompt as the answering deployment counts it, for formats that
	// report it before the upstream's usage is known.
	events(promptTokens int64) streamFormat
}

// streamFormat renders one stream of OpenAI chat chunks in a client's
// format. Its methods run on the stream's relay goroutine, one at a time.
type streamFormat interface {
	// start is written before the first chunk.
	start() []byte
	// chunk translates one chunk (usage set when the chunk carried it,
	// usage-only chunks included).
	chunk(data []byte, usage *providers.Usage) ([]byte, error)
	// native passes on the data of one event of a backend that took the
	// client's own request, already in the client's format; start, chunk
	// and end are then not called, fail still is.
	native(data []byte) ([]byte, error)
	// end closes a stream that ended cleanly, with its settled usage.
	end(usage *providers.Usage) []byte
	// fail closes a stream that failed after it started.
	fail(e *APIError) []byte
}
