package messages

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// The fixtures, and what each covers, are listed in testdata/SOURCES.md.

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var idCounter atomic.Int64

func TestMain(m *testing.M) {
	// Generated ids are numbered, so that golden files are stable.
	newID = func(prefix string) string { return fmt.Sprintf("%sgen%03d", prefix, idCounter.Add(1)) }
	os.Exit(m.Run())
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./ingress/messages -update")
	require.Equal(t, string(want), string(got))
}

func indent(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, data, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

// cases lists the fixtures in dir whose names end in suffix, without it.
func cases(t *testing.T, dir, suffix string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"+suffix))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for i, p := range paths {
		paths[i] = strings.TrimSuffix(p, suffix)
	}
	return paths
}

// requestNotes are the notes each request fixture must produce.
var requestNotes = map[string][]string{
	"claude_code":               {NoteThinking, NoteCacheControl},
	"images_documents":          nil,
	"structured_output_prefill": {NoteThinking, NoteEffort},
	"system_blocks":             {NoteTopK, NoteCacheControl, NoteServiceTier},
	"tool_choice_any":           nil,
	"tool_choice_none":          nil,
	"tool_choice_tool":          nil,
	"tool_round_trip":           {NoteCacheControl},
}

// TestGoldenRequests: Messages request in, chat-completions body out. The
// body must be one the gateway's translating providers read.
func TestGoldenRequests(t *testing.T) {
	for _, base := range cases(t, "requests", ".messages.json") {
		name := filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(base + ".messages.json")
			require.NoError(t, err)
			r, err := Parse(in)
			require.NoError(t, err)
			body, err := r.ToChat()
			require.NoError(t, err)
			golden(t, base+".chat.json", indent(t, body))

			notes, ok := requestNotes[name]
			require.True(t, ok, "add the fixture's notes to requestNotes")
			require.Equal(t, notes, r.Notes())

			cr, err := chatwire.ParseRequest(body)
			require.NoError(t, err, "chatwire must read the translated body")
			require.Equal(t, r.Model, cr.Model)
			require.Equal(t, r.Stream, cr.Stream)
			require.Equal(t, r.Stream, cr.IncludeUsage)
			require.Equal(t, int(r.MaxTokens), cr.MaxTokens)
		})
	}
}

// TestGoldenResponses: chat completion in, Messages response out, with
// the usage the completion reports.
func TestGoldenResponses(t *testing.T) {
	for _, base := range cases(t, "responses", ".chat.json") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(base + ".chat.json")
			require.NoError(t, err)
			idCounter.Store(0)
			out, err := FromChat(in, "claude-sonnet-4-5", nil)
			require.NoError(t, err)
			golden(t, base+".messages.json", indent(t, out))
		})
	}
}

// translateStream feeds a fixture's chunks, one per line, to a Stream and
// ends it.
func translateStream(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	idCounter.Store(0)
	s := NewStream("claude-sonnet-4-5", "msg_01TestStream")
	var out []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ev, err := s.Chunk(sc.Bytes(), nil)
		require.NoError(t, err)
		out = append(out, ev...)
	}
	require.NoError(t, sc.Err())
	return append(out, s.End(nil)...)
}

// TestGoldenStreams: OpenAI chunks in, Messages SSE events out.
func TestGoldenStreams(t *testing.T) {
	for _, base := range cases(t, "streams", ".chunks.jsonl") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			out := translateStream(t, base+".chunks.jsonl")
			checkSSE(t, out)
			golden(t, base+".sse", out)
		})
	}
}

// sseEvent is one parsed event.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits well-formed output into events: each is "event: NAME\n"
// then one "data: JSON\n" line and a blank line, and the JSON is an object
// whose type is NAME.
func parseSSE(out []byte) ([]sseEvent, error) {
	var evs []sseEvent
	rest := out
	for len(rest) > 0 {
		end := bytes.Index(rest, []byte("\n\n"))
		if end < 0 {
			return nil, fmt.Errorf("unterminated event %q", rest)
		}
		lines := strings.Split(string(rest[:end]), "\n")
		rest = rest[end+2:]
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			return nil, fmt.Errorf("malformed event %q", lines)
		}
		name, data := strings.TrimPrefix(lines[0], "event: "), []byte(strings.TrimPrefix(lines[1], "data: "))
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("event %s: data is not a JSON object: %v", name, err)
		}
		if head.Type != name {
			return nil, fmt.Errorf("event %s has data of type %q", name, head.Type)
		}
		evs = append(evs, sseEvent{name: name, data: data})
	}
	return evs, nil
}

func checkSSE(t *testing.T, out []byte) []sseEvent {
	t.Helper()
	evs, err := parseSSE(out)
	require.NoError(t, err)
	return evs
}
