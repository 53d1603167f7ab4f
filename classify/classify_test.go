package classify

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func found(t *testing.T, c *Classifier, text string) []string {
	t.Helper()
	var out []string
	for _, s := range c.Find(text) {
		if !s.Weak {
			out = append(out, s.Label+"="+text[s.Start:s.End])
		}
	}
	return out
}

func TestDetectors(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"email", "write to jane.doe+x@example.co.uk today", []string{"EMAIL=jane.doe+x@example.co.uk"}},
		{"not an email", "user@localhost and @handle", nil},
		{"visa with spaces", "card 4111 1111 1111 1111 exp 12/29", []string{"CREDIT_CARD=4111 1111 1111 1111"}},
		{"amex with dashes", "3782-822463-10005", []string{"CREDIT_CARD=3782-822463-10005"}},
		{"luhn fails", "order 4111 1111 1111 1112", nil},
		{"iban", "pay to DE89 3704 0044 0532 0130 00 please", []string{"IBAN=DE89 3704 0044 0532 0130 00"}},
		{"iban compact", "GB82WEST12345698765432", []string{"IBAN=GB82WEST12345698765432"}},
		{"iban bad checksum", "DE00 3704 0044 0532 0130 00", nil},
		{"ssn", "SSN 123-45-6789.", []string{"US_SSN=123-45-6789"}},
		{"ssn never issued", "000-12-3456 666-12-3456 900-12-3456 123-00-4567", nil},
		{"ipv4", "server 10.1.2.3 down", []string{"IP_ADDRESS=10.1.2.3"}},
		{"not ipv4", "version 999.1.2.3", nil},
		{"ipv6", "from 2001:db8::8a2e:370:7334 ok", []string{"IP_ADDRESS=2001:db8::8a2e:370:7334"}},
		{"phone e164", "call +44 20 7946 0958 now", []string{"PHONE=+44 20 7946 0958"}},
		{"phone us", "(415) 555-2671", []string{"PHONE=(415) 555-2671"}},
		{"phone dashes", "tel 415-555-2671", []string{"PHONE=415-555-2671"}},
		{"dates and amounts are not phones", "on 2024-01-15 at 10:30 it cost 1,234.56", nil},
		{"openai key", "key sk-proj-abcdefghijklmnopqrstuvwx1234", []string{"API_KEY=sk-proj-abcdefghijklmnopqrstuvwx1234"}},
		{"aws key", "AKIAIOSFODNN7EXAMPLE", []string{"API_KEY=AKIAIOSFODNN7EXAMPLE"}},
		{"github token", "ghp_" + strings.Repeat("a1B2", 9), []string{"API_KEY=ghp_" + strings.Repeat("a1B2", 9)}},
		{"jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
			[]string{"JWT=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
			[]string{"PRIVATE_KEY=-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"}},
		{"several, in order", "a@b.io then 4111111111111111 then 123-45-6789",
			[]string{"EMAIL=a@b.io", "CREDIT_CARD=4111111111111111", "US_SSN=123-45-6789"}},
		{"nothing", "The quick brown fox jumps over 13 lazy dogs.", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, found(t, c, tc.text))
		})
	}
}

func TestCustomDetectors(t *testing.T) {
	c, err := New(Custom{Label: "EMPLOYEE_ID", Pattern: `\bEMP-\d{6}\b`}, Custom{Label: "PROJECT", Pattern: `Project Falcon`, Category: CategorySecret})
	require.NoError(t, err)
	assert.Equal(t, []string{"EMPLOYEE_ID=EMP-123456", "PROJECT=Project Falcon"}, found(t, c, "EMP-123456 works on Project Falcon"))
	assert.Equal(t, CategoryPII, c.Category("EMPLOYEE_ID"))
	assert.Equal(t, CategorySecret, c.Category("PROJECT"))
	assert.Equal(t, CategorySecret, c.Category(APIKey))

	for _, bad := range []Custom{{Label: "X", Pattern: "("}, {Label: "lower", Pattern: "x"}, {Label: "Y", Pattern: "y", Category: "other"}} {
		_, err := New(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

const chatBody = `{"model":"m","messages":[
 {"role":"system","content":"You are helpful."},
 {"role":"user","content":[{"type":"text","text":"Mail jane@example.com or jane@example.com, card 4111 1111 1111 1111"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
 {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"email\":\"bob@example.org\"}"}}]},
 {"role":"tool","tool_call_id":"c1","content":"bob@example.org is at 10.0.0.7"}
]}`

func TestScanAndRedactRequest(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	f := c.ScanRequest([]byte(chatBody))
	assert.Equal(t, map[string]int{Email: 4, CreditCard: 1, IPAddress: 1}, f.Counts())
	assert.Equal(t, []string{CreditCard, Email, IPAddress}, f.Labels())

	r := &Redactor{Labels: map[string]bool{Email: true, CreditCard: true}}
	out, masked, err := r.Body([]byte(chatBody), f)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{Email: 4, CreditCard: 1}, masked)
	assert.Equal(t, "Mail [EMAIL_1] or [EMAIL_1], card [CREDIT_CARD_1]", gjson.GetBytes(out, "messages.1.content.0.text").Str)
	assert.Equal(t, `{"email":"[EMAIL_2]"}`, gjson.GetBytes(out, "messages.2.tool_calls.0.function.arguments").Str)
	assert.Equal(t, "[EMAIL_2] is at 10.0.0.7", gjson.GetBytes(out, "messages.3.content").Str, "same value, same placeholder; IPs not selected")
	assert.Equal(t, "data:image/png;base64,AAAA", gjson.GetBytes(out, "messages.1.content.1.image_url.url").Str)
	assert.NotContains(t, string(out), "jane@example.com")
	assert.Contains(t, chatBody, "jane@example.com", "the input is not modified")
}

func TestScanPromptAndInput(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	assert.Equal(t, map[string]int{Email: 1}, c.ScanRequest([]byte(`{"prompt":"hi a@b.io"}`)).Counts())
	assert.Equal(t, map[string]int{USSSN: 2}, c.ScanRequest([]byte(`{"input":["123-45-6789","x 123-45-6789"]}`)).Counts())
	assert.Nil(t, c.ScanRequest([]byte(`{"input":[1,2,3]}`)).Counts())
	legacy := `{"messages":[{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{\"to\":\"a@b.io\"}"}}]}`
	assert.Equal(t, map[string]int{Email: 1}, c.ScanRequest([]byte(legacy)).Counts())
}

// FuzzFind checks that detection never panics, that every span lies inside
// the text on rune boundaries, that spans do not overlap, and that checksum
// detectors only report values that pass their checksum.
func FuzzFind(f *testing.F) {
	for _, s := range []string{"a@b.io 4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "+1 (415) 555-2671", "::1 fe80::1%eth0", "-----BEGIN PRIVATE KEY-----", "123-45-6789", "\xff\xfe@\x00.io"} {
		f.Add(s)
	}
	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		spans := c.Find(text)
		end := 0
		for _, s := range spans {
			if s.Start < end || s.Start >= s.End || s.End > len(text) {
				t.Fatalf("bad span %+v in %q (previous end %d)", s, text, end)
			}
			end = s.End
			v := text[s.Start:s.End]
			if utf8.ValidString(text) && !utf8.ValidString(v) {
				t.Fatalf("span %+v splits a rune in %q", s, text)
			}
			if s.Weak {
				continue
			}
			n := normalize(v).text
			switch s.Label {
			case CreditCard:
				var d []byte
				for i := 0; i < len(n); i++ {
					if isDigit(n[i]) {
						d = append(d, n[i])
					}
				}
				if !containsValid(d, 13, 19, luhn) {
					t.Fatalf("card %q holds no run of 13 to 19 digits that passes Luhn", v)
				}
			case IBAN:
				var d []byte
				for i := 0; i < len(n); i++ {
					if isAlnum(n[i]) {
						d = append(d, upper(n[i]))
					}
				}
				if !containsValid(d, 15, 34, ibanChecksum) {
					t.Fatalf("IBAN %q holds no run that passes mod 97", v)
				}
			}
		}
		r := &Redactor{}
		red := r.Text(text, spans)
		if len(spans) == 0 && red != text {
			t.Fatalf("nothing found but text changed")
		}
	})
}

// FuzzWindowsAgreeWithFullScan checks that scanning only the triggered
// windows misses nothing that scanning everything finds: every byte of a
// full-scan match is in a windowed match of the same label. Windows may
// find more: a window that starts inside one match can find a second that
// overlaps it ("0@0.AA@0.AA": "0@0.AA" and "AA@0.AA"), which one
// left-to-right pass over the whole text skips; the two are then joined,
// and masked together.
func FuzzWindowsAgreeWithFullScan(f *testing.F) {
	for _, s := range []string{"mail a.b@c.io, 4111-1111-1111-1111 +1 (415) 555-2671", "GB82 WEST 1234 5698 7654 32", "fe80::1%eth0 10.0.0.1", "x sk-abcdefghijklmnopqrstuvwxyz eyJabcde.eyJabcde.abcdefghijkl"} {
		f.Add(s)
	}
	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := dropOverlaps(c.patterns(text, nil, true), c.rank)
		want := dropOverlaps(c.patterns(text, nil, false), c.rank)
		for _, w := range want {
			covered := false
			for _, g := range got {
				if g.Label == w.Label && g.Start <= w.Start && w.End <= g.End && (w.Weak || !g.Weak) {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("windows found %v, full scan %v in %q: %+v is not covered", got, want, text, w)
			}
		}
	})
}

func TestScanEveryTextField(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	ssn := "123-45-6789"
	for name, body := range map[string]string{
		"message name":         `{"messages":[{"role":"user","name":"` + ssn + `","content":"hi"}]}`,
		"tool description":     `{"tools":[{"type":"function","function":{"name":"f","description":"call ` + ssn + `"}}]}`,
		"legacy functions":     `{"functions":[{"name":"f","description":"` + ssn + `"}]}`,
		"response schema":      `{"response_format":{"type":"json_schema","json_schema":{"schema":{"properties":{"x":{"description":"` + ssn + `"}}}}}}`,
		"refusal":              `{"messages":[{"role":"assistant","refusal":"` + ssn + `"}]}`,
		"other part types":     `{"messages":[{"role":"user","content":[{"type":"input_text","text":"` + ssn + `"}]}]}`,
		"stop":                 `{"stop":["` + ssn + `"]}`,
		"user":                 `{"user":"` + ssn + `"}`,
		"key with a dot":       `{"metadata":{"a.b":"` + ssn + `"}}`,
		"tool result in parts": `{"messages":[{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"` + ssn + `"}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := c.ScanRequest([]byte(body))
			assert.Equal(t, map[string]int{USSSN: 1}, f.Counts())
			out, _, err := (&Redactor{}).Body([]byte(body), f)
			require.NoError(t, err)
			assert.NotContains(t, string(out), ssn, "redaction reaches the field")
			assert.Contains(t, string(out), "[US_SSN_1]")
		})
	}
	// No field is exempt by its name: ids, models and URLs are scanned too.
	f := c.ScanRequest([]byte(`{"model":"` + ssn + `","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,4111111111111111"}}]}]}`))
	assert.Equal(t, map[string]int{USSSN: 1, CreditCard: 1}, f.Counts())
}

// containsValid reports whether some run of d, lo to hi long, passes ok.
// A strong span is the match itself, or, where another strong match
// overlapped it in part, the union of both (widened so that masking
// leaves neither in clear): the match is then a run inside it.
func containsValid(d []byte, lo, hi int, ok func([]byte) bool) bool {
	for i := range d {
		for n := lo; n <= hi && i+n <= len(d); n++ {
			if ok(d[i : i+n]) {
				return true
			}
		}
	}
	return false
}
