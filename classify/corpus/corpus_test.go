package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

const testSeed = 20240315

var (
	corpusOnce  sync.Once
	corpusItems []item
)

func items(t *testing.T) []item {
	t.Helper()
	corpusOnce.Do(func() { corpusItems = generate(testSeed) })
	return corpusItems
}

func TestDeterministic(t *testing.T) {
	a, b := Generate(7), Generate(7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Generate(7) differs between two calls")
	}
	c := Generate(8)
	if len(c) == len(a) && reflect.DeepEqual(a, c) {
		t.Fatal("Generate(8) equals Generate(7)")
	}
}

func TestNamesAndCounts(t *testing.T) {
	its := items(t)
	seen := map[string]bool{}
	sens, clean, gz := 0, 0, 0
	for _, it := range its {
		if seen[it.Name] {
			t.Errorf("duplicate name %s", it.Name)
		}
		seen[it.Name] = true
		if it.Sensitive {
			sens++
		} else {
			clean++
		}
		if it.Gzip {
			gz++
		}
	}
	if sens < 1000 || clean < 300 {
		t.Fatalf("%d sensitive, %d clean; want at least 1000 and 300", sens, clean)
	}
	if gz == 0 {
		t.Error("no gzip cases")
	}
	t.Logf("%d cases: %d sensitive, %d clean, %d gzip", len(its), sens, clean, gz)
}

// visible returns the decoded strings of a body, nested JSON included.
func visible(t *testing.T, body []byte) []string { return strs(t, body, true) }

func strs(t *testing.T, body []byte, nested bool) []string {
	t.Helper()
	out, err := jsonStrings(body, nested)
	if err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	return out
}

func contains(strs []string, sub string) bool {
	for _, s := range strs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

var roles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true}

func TestBodiesAreOpenAIRequests(t *testing.T) {
	for _, it := range items(t) {
		var m map[string]any
		if err := json.Unmarshal(it.Body, &m); err != nil {
			t.Fatalf("%s: invalid JSON: %v", it.Name, err)
		}
		if m["model"] != Model {
			t.Errorf("%s: model %v", it.Name, m["model"])
		}
		if s, ok := m["stream"]; ok && s != false || !ok && it.Op != OpEmbeddings {
			t.Errorf("%s: stream %v", it.Name, s)
		}
		switch it.Op {
		case OpTextCompletion:
			if _, ok := m["prompt"].(string); !ok || it.Path() != "/v1/completions" {
				t.Errorf("%s: completion without a string prompt", it.Name)
			}
		case OpEmbeddings:
			if m["input"] == nil || it.Path() != "/v1/embeddings" {
				t.Errorf("%s: embeddings without input", it.Name)
			}
		case OpChat:
			checkMessages(t, it.Name, m)
		default:
			t.Errorf("%s: op %q", it.Name, it.Op)
		}
	}
}

func checkMessages(t *testing.T, name string, m map[string]any) {
	msgs, ok := m["messages"].([]any)
	if !ok || len(msgs) == 0 {
		t.Errorf("%s: no messages", name)
		return
	}
	var callIDs map[string]bool
	for i, e := range msgs {
		msg, _ := e.(map[string]any)
		role, _ := msg["role"].(string)
		if !roles[role] {
			t.Errorf("%s: message %d role %q", name, i, role)
		}
		switch role {
		case "assistant":
			callIDs = nil
			if calls, ok := msg["tool_calls"].([]any); ok {
				callIDs = map[string]bool{}
				for _, c := range calls {
					call := c.(map[string]any)
					callIDs[call["id"].(string)] = true
					args := call["function"].(map[string]any)["arguments"].(string)
					if !json.Valid([]byte(args)) {
						t.Errorf("%s: arguments are not JSON: %s", name, args)
					}
				}
			}
		case "tool":
			id, _ := msg["tool_call_id"].(string)
			if !callIDs[id] {
				t.Errorf("%s: tool message %d answers %q, not a call of the assistant message before it", name, i, id)
			}
			if _, ok := msg["content"].(string); !ok {
				t.Errorf("%s: tool message without string content", name)
			}
		default:
			callIDs = nil
		}
		if role != "assistant" || msg["tool_calls"] == nil {
			if msg["content"] == nil {
				t.Errorf("%s: message %d has no content", name, i)
			}
		}
	}
	if last := msgs[len(msgs)-1].(map[string]any)["role"]; last == "assistant" {
		t.Errorf("%s: ends with an assistant message", name)
	}
}

func decodeBlob(format, blob string) (string, error) {
	switch format {
	case "base64", "data-url":
		b, err := base64.StdEncoding.DecodeString(blob)
		return string(b), err
	case "percent":
		return url.PathUnescape(blob)
	case "json-escape":
		var s string
		err := json.Unmarshal([]byte(`"`+blob+`"`), &s)
		return s, err
	}
	return "", fmt.Errorf("not an encoded format: %s", format)
}

func TestForbiddenAppearInBodies(t *testing.T) {
	for _, it := range items(t) {
		if !it.Sensitive {
			continue
		}
		if len(it.Forbidden) == 0 {
			t.Errorf("%s: no forbidden strings", it.Name)
			continue
		}
		if it.Forbidden[0] != it.value {
			t.Errorf("%s: Forbidden[0] %q is not the value as written %q", it.Name, it.Forbidden[0], it.value)
		}
		vis := visible(t, it.Body)
		if !IsEncoded(it.Format) {
			if !contains(vis, it.Forbidden[0]) {
				t.Errorf("%s: %q not in the body", it.Name, it.Forbidden[0])
			}
			continue
		}
		blob := it.Forbidden[len(it.Forbidden)-1]
		if !contains(vis, blob) {
			t.Errorf("%s: encoded blob %q not in the body", it.Name, blob)
		}
		dec, err := decodeBlob(it.Format, blob)
		if err != nil || !strings.Contains(dec, it.Forbidden[0]) {
			t.Errorf("%s: blob decodes to %q (%v), without %q", it.Name, dec, err, it.Forbidden[0])
		}
		if it.Format != "percent" && contains(strs(t, it.Body, false), it.Forbidden[0]) {
			t.Errorf("%s: encoded format, but the value is in the body as written", it.Name)
		}
	}
}

var (
	digitsRe = regexp.MustCompile(`^\d+$`)
	ibanRe   = regexp.MustCompile(`^[A-Z]{2}\d{2}[A-Z0-9]+$`)
	emailRe  = regexp.MustCompile(`^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$`)
	jwtRe    = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
	pemRe    = regexp.MustCompile(`(?s)^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----\n([A-Za-z0-9+/=]+\n)+-----END ([A-Z]+ )?PRIVATE KEY-----$`)
)

// canonical returns the Forbidden entries that match re.
func canonical(c Case, re *regexp.Regexp) []string {
	var out []string
	for _, f := range c.Forbidden {
		if re.MatchString(f) {
			out = append(out, f)
		}
	}
	return out
}

func TestSensitiveValuesAreValid(t *testing.T) {
	for _, it := range items(t) {
		if !it.Sensitive {
			continue
		}
		c := it.Case
		ok := false
		switch c.Detector {
		case CreditCard:
			for _, d := range canonical(c, digitsRe) {
				ok = Luhn(d) && CardBrand(d) != ""
			}
		case IBAN:
			for _, s := range canonical(c, ibanRe) {
				ok = IBANValid(s)
			}
		case USSSN:
			for _, d := range canonical(c, digitsRe) {
				ok = SSNValid(d)
			}
		case Phone:
			for _, f := range c.Forbidden {
				if strings.HasPrefix(f, "+") && digitsRe.MatchString(f[1:]) {
					ok = PhoneValid(f)
				}
			}
		case Email:
			ok = len(canonical(c, emailRe)) > 0
		case JWT:
			for _, s := range canonical(c, jwtRe) {
				h, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[0])
				ok = err == nil && json.Valid(h) && bytes.Contains(h, []byte(`"alg"`))
			}
		case PrivateKey:
			ok = len(canonical(c, pemRe)) > 0
		case APIKey:
			for _, p := range KeyPrefixes {
				ok = ok || strings.HasPrefix(c.Forbidden[0], p) && len(c.Forbidden[0]) >= 20
			}
		case IPAddress:
			for _, f := range c.Forbidden {
				if a, err := netip.ParseAddr(f); err == nil && !a.IsUnspecified() {
					ok = true
				}
			}
		default:
			t.Errorf("%s: detector %q", c.Name, c.Detector)
		}
		if !ok {
			t.Errorf("%s: no valid %s among %q", c.Name, c.Detector, c.Forbidden)
		}
	}
}

func TestLuhnSpan(t *testing.T) {
	for s, want := range map[string]bool{
		"4111 1111 1111 1111":        true,
		"ref 1 4111 1111 1111 1111":  true,
		"4111111111111111":           true,
		"4111 1111 1111 1112":        false,
		"0111 1111 1111 1111 1":      false,
		"FR12 4638 0917 9475 9929 1": true,
		"1.234.567,89 €":             false,
		"2024-03-15 10:30:45":        false,
	} {
		if got := luhnSpan(s); got != want {
			t.Errorf("luhnSpan(%q) = %v", s, got)
		}
	}
}

func TestIBANLengths(t *testing.T) {
	want := map[string]int{"DE": 22, "FR": 27, "GB": 22, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "AT": 20, "CH": 21, "PL": 28, "PT": 25, "IE": 22}
	if !reflect.DeepEqual(IBANLengths, want) {
		t.Fatalf("IBAN lengths %v", IBANLengths)
	}
	// Known-good IBANs from the registry's examples.
	for _, s := range []string{"DE89370400440532013000", "GB29NWBK60161331926819", "FR1420041010050500013M02606", "NL91ABNA0417164300", "BE68539007547034"} {
		if !IBANValid(s) {
			t.Errorf("IBANValid(%s) = false", s)
		}
	}
	if IBANValid("DE88370400440532013000") {
		t.Error("a wrong check digit passes")
	}
}

var (
	cardLikeRe = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	ssnWords   = regexp.MustCompile(`(?i)ssn|social security|taxpayer|sozialversicherung|sécurité sociale|seguro social|previdenza|segurança social|sofinummer`)
)

func TestCleanCases(t *testing.T) {
	for _, it := range items(t) {
		if it.Sensitive {
			continue
		}
		if it.Detector != "" || len(it.Forbidden) != 0 {
			t.Errorf("%s: clean case with detector %q, forbidden %q", it.Name, it.Detector, it.Forbidden)
		}
		vis := visible(t, it.Body)
		if !contains(vis, it.value) {
			t.Errorf("%s: value %q not in the body", it.Name, it.value)
		}
		for _, s := range vis {
			for _, m := range cardLikeRe.FindAllString(s, -1) {
				d := digitsOnly(m)
				if d[0] != '0' && Luhn(d) {
					t.Errorf("%s: %q passes Luhn", it.Name, m)
				}
			}
			if luhnSpan(s) {
				t.Errorf("%s: a card-like span passes Luhn in %q", it.Name, s)
			}
		}
		switch it.Format {
		case "card-luhn-fail":
			d := digitsOnly(it.value)
			if Luhn(d) || CardBrand(d) == "" {
				t.Errorf("%s: %q should be a card-shaped number failing Luhn", it.Name, it.value)
			}
		case "iban-bad-check":
			s := strings.ReplaceAll(it.value, " ", "")
			if IBANValid(s) || IBANLengths[s[:2]] != len(s) {
				t.Errorf("%s: %q should be IBAN-shaped with a wrong check", it.Name, it.value)
			}
		case "ssn-invalid":
			if SSNValid(digitsOnly(it.value)) {
				t.Errorf("%s: %q is a valid SSN", it.Name, it.value)
			}
		case "nine-digit":
			if len(it.value) != 9 || ssnWords.Match(it.Body) {
				t.Errorf("%s: nine digits %q with SSN context", it.Name, it.value)
			}
		case "order-number", "tracking-number", "invoice-number", "epoch-13":
			if d := digitsOnly(it.value); len(d) >= 13 && len(d) <= 19 && Luhn(d) && d[0] != '0' {
				t.Errorf("%s: %q passes Luhn", it.Name, it.value)
			}
		case "at-dot-prose":
			if strings.Contains(it.value, "@") {
				t.Errorf("%s: prose with an @", it.Name)
			}
		}
	}
}

func TestLeaks(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	for _, it := range items(t) {
		if !it.Sensitive {
			continue
		}
		got := Leaks(it.Body, it.Forbidden)
		if len(got) == 0 {
			t.Errorf("%s: Leaks finds none of %q", it.Name, it.Forbidden)
		}
		if !it.Gzip {
			continue
		}
		zb.Reset()
		zw.Reset(&zb)
		zw.Write(it.Body)
		zw.Close()
		if !reflect.DeepEqual(Leaks(zb.Bytes(), it.Forbidden), got) {
			t.Errorf("%s: Leaks differs on the gzip-compressed body", it.Name)
		}
	}
	if got := Leaks([]byte(`{"a":"x\u0040y"}`), []string{"x@y"}); len(got) != 1 {
		t.Errorf("Leaks misses a JSON-escaped value: %v", got)
	}
	if got := Leaks([]byte(`{"a":"{\"k\":\"x\\u0040y\"}"}`), []string{"x@y"}); len(got) != 1 {
		t.Errorf("Leaks misses a value in a JSON-valued string: %v", got)
	}
}

func TestWriteJSONL(t *testing.T) {
	cases := Generate(3)
	var b bytes.Buffer
	if err := WriteJSONL(&b, cases); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d lines for %d cases", len(lines), len(cases))
	}
	for i, l := range lines {
		var c struct {
			Name string          `json:"name"`
			Path string          `json:"path"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if c.Name != cases[i].Name || c.Path != cases[i].Path() {
			t.Fatalf("line %d: %s %s", i, c.Name, c.Path)
		}
		var got, want any
		if json.Unmarshal(c.Body, &got) != nil || json.Unmarshal(cases[i].Body, &want) != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("line %d: body differs", i)
		}
	}
}

type counter map[string]int

func (c counter) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, c[k])
	}
	return b.String()
}

func TestBalance(t *testing.T) {
	det, lang, place, cleanPlace, cleanFormat, op := counter{}, counter{}, counter{}, counter{}, counter{}, counter{}
	format := map[string]counter{}
	detLang := counter{}
	sens := 0
	for _, it := range items(t) {
		op[it.Op]++
		if !it.Sensitive {
			cleanPlace[it.Place]++
			cleanFormat[it.Format]++
			lang["clean/"+it.Language]++
			continue
		}
		sens++
		det[it.Detector]++
		lang[it.Language]++
		place[it.Place]++
		detLang[it.Detector+"/"+it.Language]++
		if format[it.Detector] == nil {
			format[it.Detector] = counter{}
		}
		format[it.Detector][it.Format]++
	}
	t.Logf("detectors:%v", det)
	for _, d := range Detectors() {
		t.Logf("formats %s:%v", d, format[d])
	}
	t.Logf("places (sensitive):%v", place)
	t.Logf("places (clean):%v", cleanPlace)
	t.Logf("clean kinds:%v", cleanFormat)
	t.Logf("languages:%v", lang)
	t.Logf("ops:%v", op)

	for _, d := range Detectors() {
		if det[d] < 100 {
			t.Errorf("%s: only %d cases", d, det[d])
		}
		if len(format[d]) < 7 {
			t.Errorf("%s: only %d formats", d, len(format[d]))
		}
		for _, l := range Languages {
			if detLang[d+"/"+l] < 10 {
				t.Errorf("%s/%s: only %d cases", d, l, detLang[d+"/"+l])
			}
		}
		for f, n := range format[d] {
			if n < 7 {
				t.Errorf("%s/%s: only %d cases", d, f, n)
			}
		}
	}
	for _, l := range Languages {
		if lang[l] < sens/10 || lang["clean/"+l] < 30 {
			t.Errorf("%s: %d sensitive, %d clean", l, lang[l], lang["clean/"+l])
		}
	}
	for _, p := range Places() {
		if place[p] < 15 {
			t.Errorf("place %s: only %d sensitive cases", p, place[p])
		}
		if p != "file_data" && cleanPlace[p] < 5 {
			t.Errorf("place %s: only %d clean cases", p, cleanPlace[p])
		}
	}
}

// TestDump writes the corpus as JSON Lines to $CORPUS_JSONL when set:
//
//	CORPUS_JSONL=/tmp/corpus.jsonl go test -run Dump ./classify/corpus
func TestDump(t *testing.T) {
	path := os.Getenv("CORPUS_JSONL")
	if path == "" {
		t.Skip("CORPUS_JSONL not set")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteJSONL(f, Generate(testSeed)); err != nil {
		t.Fatal(err)
	}
}
