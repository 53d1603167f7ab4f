package classify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Field is one piece of text in an OpenAI request body and the entities
// found in it. Path is the body's JSON path to it (gjson/sjson syntax).
type Field struct {
	Path  string
	Text  string
	Spans []Span
}

// Findings are the entities in one request.
type Findings struct {
	Fields []Field // only fields with at least one entity
}

// Counts tallies the entities by label; nil when there are none.
func (f Findings) Counts() map[string]int {
	var all []Span
	for _, fl := range f.Fields {
		all = append(all, fl.Spans...)
	}
	return Counts(all)
}

// Labels is the sorted set of labels found.
func (f Findings) Labels() []string {
	counts := f.Counts()
	out := make([]string, 0, len(counts))
	for l := range counts {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ScanRequest classifies the text a chat, completion or embeddings request
// carries: message contents (plain or text parts), tool-call arguments
// (and the legacy function_call's), tool results, prompts and embedding
// inputs. Image and audio data are not text and are skipped.
func (c *Classifier) ScanRequest(body []byte) Findings {
	var f Findings
	visit := func(path string, v gjson.Result) {
		if v.Type != gjson.String || v.Str == "" {
			return
		}
		if spans := c.Find(v.Str); len(spans) > 0 {
			f.Fields = append(f.Fields, Field{Path: path, Text: v.Str, Spans: spans})
		}
	}
	root := gjson.ParseBytes(body)
	root.Get("messages").ForEach(func(i, m gjson.Result) bool {
		p := "messages." + i.String()
		content := m.Get("content")
		if content.IsArray() {
			content.ForEach(func(j, part gjson.Result) bool {
				if part.Get("type").Str == "text" {
					visit(p+".content."+j.String()+".text", part.Get("text"))
				}
				return true
			})
		} else {
			visit(p+".content", content)
		}
		m.Get("tool_calls").ForEach(func(j, tc gjson.Result) bool {
			visit(p+".tool_calls."+j.String()+".function.arguments", tc.Get("function.arguments"))
			return true
		})
		visit(p+".function_call.arguments", m.Get("function_call.arguments")) // the legacy functions API
		return true
	})
	for _, key := range []string{"prompt", "input"} {
		v := root.Get(key)
		if v.IsArray() {
			v.ForEach(func(i, s gjson.Result) bool {
				visit(key+"."+i.String(), s)
				return true
			})
		} else {
			visit(key, v)
		}
	}
	return f
}

// Redactor replaces entities with typed placeholders, [EMAIL_1],
// [CREDIT_CARD_2], numbering each distinct value once per request so that
// the model still sees which mentions are the same. Use one per request.
type Redactor struct {
	// Labels selects what to mask; nil masks every label.
	Labels map[string]bool
	seen   map[string]string
	next   map[string]int
}

// Placeholder is the text an entity is replaced with.
func (r *Redactor) placeholder(label, value string) string {
	if r.seen == nil {
		r.seen, r.next = map[string]string{}, map[string]int{}
	}
	key := label + "\x00" + value
	if p, ok := r.seen[key]; ok {
		return p
	}
	r.next[label]++
	p := "[" + label + "_" + strconv.Itoa(r.next[label]) + "]"
	r.seen[key] = p
	return p
}

// Text returns text with the selected spans masked.
func (r *Redactor) Text(text string, spans []Span) string {
	var b strings.Builder
	last := 0
	for _, s := range spans {
		if r.Labels != nil && !r.Labels[s.Label] {
			continue
		}
		b.WriteString(text[last:s.Start])
		b.WriteString(r.placeholder(s.Label, text[s.Start:s.End]))
		last = s.End
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// Body returns a copy of body with the selected entities in f masked, and
// how many were masked per label.
func (r *Redactor) Body(body []byte, f Findings) ([]byte, map[string]int, error) {
	masked := map[string]int{}
	out := body
	for _, fl := range f.Fields {
		red := r.Text(fl.Text, fl.Spans)
		if red == fl.Text {
			continue
		}
		for _, s := range fl.Spans {
			if r.Labels == nil || r.Labels[s.Label] {
				masked[s.Label]++
			}
		}
		var err error
		if out, err = sjson.SetBytes(out, fl.Path, red); err != nil {
			return nil, nil, fmt.Errorf("redacting %s: %w", fl.Path, err)
		}
	}
	return out, masked, nil
}
