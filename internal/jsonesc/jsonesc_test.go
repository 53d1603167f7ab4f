package jsonesc_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/switchyard/switchyard/internal/jsonesc"
)

// asJSON is s as encoding/json writes it without HTML escaping.
func asJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func check(t *testing.T, s string) {
	got := `"` + string(jsonesc.Append(nil, s)) + `"`
	if want := asJSON(s); got != want {
		t.Fatalf("Append(%q) = %s, encoding/json writes %s", s, got, want)
	}
}

func TestAppend(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\`, "tab\tnl\ncr\r", "bs\bff\f", "\x00\x01\x1f", "<b>&amp;</b>",
		"caf\u00e9 \u4e2d\u6587 \U0001F600", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x82"} {
		check(t, s)
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "\xff", "\U0001F600\n"} {
		f.Add(s)
	}
	f.Fuzz(check)
}
