package classify

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Field is one piece of text in a request body and the entities found in
// it: a string value, an object key or a number.
type Field struct {
	// Path is the body's JSON path to it (gjson/sjson syntax); for a key,
	// the path of the member the key names.
	Path string
	// Key is true when the text is an object key.
	Key bool
	// Text is the decoded text; spans index it.
	Text  string
	Spans []Span

	start, end int // the raw token in the body
	number     bool
}

// Findings are the entities in one request.
type Findings struct {
	Fields []Field // only fields with at least one entity, strong or weak
}

// tally counts the strong or the weak spans of every field by label.
func (f Findings) tally(weak bool) map[string]int {
	var m map[string]int
	for _, fl := range f.Fields {
		for label, n := range tally(fl.Spans, weak) {
			if m == nil {
				m = map[string]int{}
			}
			m[label] += n
		}
	}
	return m
}

// Counts tallies the strong entities by label; nil when there are none.
func (f Findings) Counts() map[string]int { return f.tally(false) }

// WeakCounts tallies the weak signals by label; nil when there are none.
func (f Findings) WeakCounts() map[string]int { return f.tally(true) }

// Labels is the sorted set of labels found, strong and weak.
func (f Findings) Labels() []string {
	set := map[string]bool{}
	for _, fl := range f.Fields {
		for _, s := range fl.Spans {
			set[s.Label] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Detection says which detector fired where: a label and a path, never
// the value. It is what explain shows.
type Detection struct {
	Label string `json:"label"`
	Path  string `json:"path"`
	Key   bool   `json:"key,omitempty"`
	Weak  bool   `json:"weak,omitempty"`
}

// Detections lists every entity by label and path, in body order.
func (f Findings) Detections() []Detection {
	var out []Detection
	for _, fl := range f.Fields {
		for _, s := range fl.Spans {
			out = append(out, Detection{Label: s.Label, Path: fl.Path, Key: fl.Key, Weak: s.Weak})
		}
	}
	return out
}

// ScanRequest classifies every string and number in a JSON request body,
// object keys included, whatever the field: message contents and parts,
// names and ids the client chooses (tool_call_id, name, user), metadata,
// URLs, tool definitions and arguments, schemas, prompts, embedding
// inputs. No field is exempt by its name: if a byte the client sent can
// reach an upstream, it is scanned. Each text is read normalised and
// decoded (normalize.go, decode.go). body must be valid JSON.
func (c *Classifier) ScanRequest(body []byte) Findings {
	var f Findings
	w := &jsonWalker{b: body}
	w.walk(func(t jsonToken) {
		var text string
		if t.str {
			text = decodeString(body[t.start:t.end])
		} else {
			if t.end-t.start < 7 {
				return // too short to be anything
			}
			text = string(body[t.start:t.end])
		}
		if text == "" {
			return
		}
		var hint string
		if !t.key {
			hint = strings.ToLower(splitWords(w.key()))
		}
		// Each text has a decoding budget of its own, in proportion to
		// its size: one field cannot use up what another needs.
		spans := c.scanText(text, hint, &budget{bytes: max(fieldDecodeMin, 8*len(text))}, 0)
		if hint != "" {
			spans = keyContext(hint, text, spans)
		}
		if len(spans) == 0 {
			return
		}
		if t.key {
			w.markKey(spans[0].Label)
		}
		f.Fields = append(f.Fields, Field{Path: w.path(), Key: t.key, Text: strings.Clone(text), Spans: spans,
			start: t.start, end: t.end, number: !t.str})
	})
	return f
}

// keyContext reads an object key (k, lower-cased) as the words before its
// value. The number scanners read it as a hint already (under "ssn" a bare
// nine-digit number is an SSN, under "phone" a bare national number is a
// phone); here, under "card_number" a card-like number is a card, and
// under "api_key" or "password" a random-looking token is a secret.
func keyContext(k, text string, spans []Span) []Span {
	for i, s := range spans {
		if s.Weak && s.Label == CreditCard && containsWord(k, cardWords) {
			spans[i].Weak = false
		}
	}
	if len(spans) > 0 || len(text) > 1024 || strings.ContainsAny(text, " \n\t") || notSecretKey(k) {
		return spans
	}
	switch {
	case containsWord(k, passwordWords) && len(text) >= 6 && notAWord(text):
		spans = append(spans, Span{Start: 0, End: len(text), Label: Password})
	case containsWord(k, secretWords) && len(text) >= 16 && (randomLooking(text) || tokenLike(text)):
		spans = append(spans, Span{Start: 0, End: len(text), Label: APIKey})
	}
	return spans
}

// notSecretKey reports keys that name a "key" that is no secret: cache
// and idempotency keys, key ids, public keys.
func notSecretKey(k string) bool {
	for _, w := range []string{"cache", "idempotency", "key_id", "keyid", "key id", "public", "kid"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Words that say a number is a payment card.
var cardWords = []string{"card", "cc", "pan", "ccnum", "kreditkarte", "karte", "carte", "tarjeta", "carta", "cartão", "cartao", "kaart", "visa", "mastercard", "amex"}

// splitWords turns camelCase into separate words: "customerPhone" reads
// "customer Phone".
func splitWords(s string) string {
	camel := false
	for i := 1; i < len(s) && !camel; i++ {
		camel = s[i] >= 'A' && s[i] <= 'Z' && s[i-1] >= 'a' && s[i-1] <= 'z'
	}
	if !camel {
		return s // most keys: no copy
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i] >= 'A' && s[i] <= 'Z' && s[i-1] >= 'a' && s[i-1] <= 'z' {
			b.WriteByte(' ')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Redactor replaces entities with typed placeholders, [EMAIL_1],
// [CREDIT_CARD_2], numbering each distinct value once per request so that
// the model still sees which mentions are the same. It remembers each
// placeholder's value so that Restorer can put the values back into the
// answer: that mapping lives in this value only, for one request; it is
// never logged, traced or audited. Use one per request.
type Redactor struct {
	// Labels selects what to mask; nil masks every label. Weak signals of
	// a selected label are masked too.
	Labels map[string]bool
	seen   map[string]string // label + value -> placeholder
	values map[string]string // placeholder -> value
	next   map[string]int
}

func (r *Redactor) placeholder(label, value string) string {
	if r.seen == nil {
		r.seen, r.values, r.next = map[string]string{}, map[string]string{}, map[string]int{}
	}
	key := label + "\x00" + value
	if p, ok := r.seen[key]; ok {
		return p
	}
	r.next[label]++
	p := "[" + label + "_" + strconv.Itoa(r.next[label]) + "]"
	r.seen[key], r.values[p] = p, value
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
// how many were masked per label. A masked key or number becomes a string.
func (r *Redactor) Body(body []byte, f Findings) ([]byte, map[string]int, error) {
	masked := map[string]int{}
	fields := slices.Clone(f.Fields)
	sort.Slice(fields, func(i, j int) bool { return fields[i].start < fields[j].start })
	var out []byte
	last := 0
	for _, fl := range fields {
		red := r.Text(fl.Text, fl.Spans)
		if red == fl.Text {
			continue
		}
		for _, s := range fl.Spans {
			if r.Labels == nil || r.Labels[s.Label] {
				masked[s.Label]++
			}
		}
		if fl.start < last || fl.end > len(body) || !sameText(body[fl.start:fl.end], fl) {
			// Findings of another body: masking blind could leave a value
			// in clear or break the JSON, so refuse.
			return nil, nil, fmt.Errorf("redaction: the findings do not match this body at byte %d", fl.start)
		}
		enc, err := json.Marshal(red)
		if err != nil {
			return nil, nil, err
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, body[last:fl.start]...)
		out = append(out, enc...)
		last = fl.end
	}
	if out == nil {
		return body, masked, nil
	}
	return append(out, body[last:]...), masked, nil
}

// sameText reports whether raw is the token a field was read from.
func sameText(raw []byte, fl Field) bool {
	if fl.number {
		return string(raw) == fl.Text
	}
	return decodeString(raw) == fl.Text
}

// Restorer returns what puts this redactor's values back into an answer.
func (r *Redactor) Restorer() *Restorer { return NewRestorer(r.values) }
