package classify

import (
	"encoding/json"
	"testing"
)

// FuzzScanRequest checks the one-pass JSON walk on any valid document:
// no panic, every span inside its field's text, and redaction that leaves
// valid JSON. (Redaction may make new findings: "[PHONE_1].666666666"
// reads differently from the run of digits it came from.)
func FuzzScanRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"card 4111 1111 1111 1111"}]}`,
		`{"metadata":{"jane@bank.de":"x","n":[1,2,{"ssn":"878117765"}]},"seed":4111111111111111}`,
		`[[[["a\u0040b.de"]]]]`, `"x"`, `{"a\\.b":"DE89 3704 0044 0532 0130 00"}`, `{"":""}`,
	} {
		f.Add([]byte(s))
	}
	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		fs := c.ScanRequest(body)
		for _, fl := range fs.Fields {
			for _, s := range fl.Spans {
				if s.Start < 0 || s.Start >= s.End || s.End > len(fl.Text) {
					t.Fatalf("span %+v outside %q", s, fl.Text)
				}
			}
		}
		out, _, err := (&Redactor{}).Body(body, fs)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("redacted body is not JSON: %s", out)
		}
	})
}
