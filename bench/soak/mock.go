package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// faults is what the soak loop switches on and off in the primary mock
// upstream. The fallback mock has none.
type faults struct {
	// failPct is the share of calls, in percent, answered 503.
	failPct atomic.Int32
	// cut makes streams end after cutAfter chunks: the connection is
	// hijacked and closed, with no terminating chunk and no [DONE].
	cut atomic.Bool
}

// cutAfter is how many chunks a stream sends before it is cut.
const cutAfter = 3

// streamChunks is the number of chat.completion.chunk events of a stream,
// role and finish chunks included, not counting the usage chunk.
const streamChunks = 20

// upstream is an OpenAI-compatible mock of /v1/chat/completions.
//
// Usage varies per request so that costs do: prompt tokens grow with the
// request body, completion tokens are the request's max_tokens (40 when
// absent, at most 400), and every third call reports a quarter of its
// prompt as cached.
type upstream struct {
	name       string
	key        string        // the Bearer key the gateway must send
	chunkDelay time.Duration // pause between stream chunks
	faults     *faults       // nil: always healthy

	calls, failed, cut, rejected, unauthorized atomic.Int64
	seq                                        atomic.Int64
}

// words are the streamed content deltas.
var words = strings.Fields("The quick brown fox jumps over the lazy dog while the soak test keeps " +
	"sending mixed traffic through the gateway")

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok")
		return
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/chat/completions"):
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown URL "+r.URL.Path)
		return
	}
	u.calls.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+u.key {
		u.unauthorized.Add(1)
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return
	}
	if !gjson.ValidBytes(body) {
		u.rejected.Add(1)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "The body is not valid JSON.")
		return
	}
	req := gjson.ParseBytes(body)
	model, msgs, maxTok := req.Get("model"), req.Get("messages"), req.Get("max_tokens")
	if model.Type != gjson.String || !msgs.IsArray() || (maxTok.Exists() && maxTok.Type != gjson.Number) ||
		(req.Get("stream").Exists() && !req.Get("stream").IsBool()) {
		u.rejected.Add(1)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "A parameter has the wrong type.")
		return
	}
	if f := u.faults; f != nil {
		if p := f.failPct.Load(); p > 0 && rand.Int32N(100) < p {
			u.failed.Add(1)
			writeError(w, http.StatusServiceUnavailable, "server_error", "overloaded", "The mock upstream is overloaded (injected fault).")
			return
		}
	}
	n := u.seq.Add(1)
	completion := int64(40)
	if maxTok.Exists() {
		completion = min(max(maxTok.Int(), 1), 400)
	}
	prompt := 8 + int64(len(body))/16
	cached := int64(0)
	if n%3 == 0 {
		cached = prompt / 4
	}
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d}}`,
		prompt, completion, prompt+completion, cached)
	id := fmt.Sprintf("chatcmpl-%s-%d", u.name, n)
	created := time.Now().Unix()
	modelJSON, _ := json.Marshal(model.Str)

	if !req.Get("stream").Bool() {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"object":"chat.completion","created":%d,"model":%s,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":%s}`,
			id, created, modelJSON, strings.Join(words, " "), usage)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	cutting := u.faults != nil && u.faults.cut.Load()
	for i := 0; i < streamChunks; i++ {
		var delta, finish string
		switch i {
		case 0:
			delta, finish = `{"role":"assistant","content":""}`, "null"
		case streamChunks - 1:
			delta, finish = `{}`, `"stop"`
		default:
			word := words[(i-1)%len(words)]
			if i > 1 {
				word = " " + word
			}
			delta, finish = fmt.Sprintf(`{"content":%q}`, word), "null"
		}
		if _, err := fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%s,\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n",
			id, created, modelJSON, delta, finish); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if cutting && i+1 == cutAfter {
			u.cut.Add(1)
			if conn, _, err := rc.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, like a dying upstream
				}
				_ = conn.Close()
			} else {
				panic(http.ErrAbortHandler)
			}
			return
		}
		if u.chunkDelay > 0 {
			time.Sleep(u.chunkDelay)
		}
	}
	if req.Get("stream_options.include_usage").Bool() {
		fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%s,\"choices\":[],\"usage\":%s}\n\n",
			id, created, modelJSON, usage)
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
	_, _ = w.Write(b)
}

// startUpstream serves u on a free loopback port and returns its base URL
// (".../v1") and a function that stops it.
func startUpstream(u *upstream) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog()}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

// readSSE reads one SSE stream, calling fn for every line without its
// line ending. It stops at EOF or when fn returns false.
func readSSE(r io.Reader, fn func(line string) bool) error {
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if !fn(strings.TrimRight(line, "\r\n")) {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
