package classify

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labels lists what Find reports: strong spans as LABEL=value, weak ones
// as ~LABEL=value.
func labels(c *Classifier, text string) []string {
	var out []string
	for _, s := range c.Find(text) {
		p := ""
		if s.Weak {
			p = "~"
		}
		out = append(out, p+s.Label+"="+text[s.Start:s.End])
	}
	return out
}

func TestEvasionsAreFound(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	for _, tc := range []struct{ name, text, want string }{
		{"card with dots", "card 4532.0736.2915.0489 thanks", "CREDIT_CARD=4532.0736.2915.0489"},
		{"card with two spaces", "card 4532  0736  2915  0489", "CREDIT_CARD=4532  0736  2915  0489"},
		{"card with spaced dashes", "card 4532 - 0736 - 2915 - 0489.", "CREDIT_CARD=4532 - 0736 - 2915 - 0489"},
		{"card in fullwidth digits", "card ４５３２０７３６２９１５０４８９", "CREDIT_CARD=４５３２０７３６２９１５０４８９"},
		{"card with zero-width spaces", "card 4532\u200b0736\u200b2915\u200b0489", "CREDIT_CARD=4532\u200b0736\u200b2915\u200b0489"},
		{"card in Arabic-Indic digits", "card ٤٥٣٢٠٧٣٦٢٩١٥٠٤٨٩", "CREDIT_CARD=٤٥٣٢٠٧٣٦٢٩١٥٠٤٨٩"},
		{"card then expiry", "4111 1111 1111 1111 12/27", "CREDIT_CARD=4111 1111 1111 1111"},
		{"card then a count", "pay 4111111111111111 2 times", "CREDIT_CARD=4111111111111111"},
		{"card after a reference", "ref 1 4111 1111 1111 1111", "CREDIT_CARD=4111 1111 1111 1111"},
		{"card with an en dash", "4111–1111–1111–1111", "CREDIT_CARD=4111–1111–1111–1111"},
		{"iban lower case", "iban de89 3704 0044 0532 0130 00", "IBAN=de89 3704 0044 0532 0130 00"},
		{"iban then a digit", "IBAN DE89 3704 0044 0532 0130 00 1", "IBAN=DE89 3704 0044 0532 0130 00"},
		{"iban with dashes", "DE89-3704-0044-0532-0130-00", "IBAN=DE89-3704-0044-0532-0130-00"},
		{"iban with letters", "GB29 NWBK 6016 1331 9268 19", "IBAN=GB29 NWBK 6016 1331 9268 19"},
		{"email spelled", "write to name dot surname at bank dot de today", "EMAIL=name dot surname at bank dot de"},
		{"email (at)", "jane(at)bank(dot)de", "EMAIL=jane(at)bank(dot)de"},
		{"email [at]", "jane [at] bank [dot] com", "EMAIL=jane [at] bank [dot] com"},
		{"email zero-width domain", "jane@ba\u200bnk.de", "EMAIL=jane@ba\u200bnk.de"},
		{"email fullwidth at", "jane＠bank.de", "EMAIL=jane＠bank.de"},
		{"ssn bare with context", "my SSN is 878117765", "US_SSN=878117765"},
		{"ssn spaced with context", "social security number: 815 61 6416", "US_SSN=815 61 6416"},
		{"ssn german context", "Sozialversicherungsnummer (USA) 878117765", "US_SSN=878117765"},
		{"ssn spanish context", "número de seguro social 878117765", "US_SSN=878117765"},
		{"phone spaced international", "call +33 1 74 89 42 77", "PHONE=+33 1 74 89 42 77"},
		{"phone e164", "+4915112345678", "PHONE=+4915112345678"},
		{"phone national with context", "my phone is 08124181102", "PHONE=08124181102"},
		{"phone national grouped", "030 12345678", "PHONE=030 12345678"},
		{"phone 00 prefix", "0033 1 74 89 42 77", "PHONE=0033 1 74 89 42 77"},
		{"phone nanp", "415.555.0132", "PHONE=415.555.0132"},
		{"phone bare mobile with trunk 0", "nomor saya 08124181102", "PHONE=08124181102"},
		{"phone french dots", "tel 06.12.34.56.78", "PHONE=06.12.34.56.78"},
		{"email after 'me at'", "reach me at jane dot doe at gmail dot com", "EMAIL=jane dot doe at gmail dot com"},
		{"email arroba", "escribe a juan punto perez arroba gmail punto com", "EMAIL=juan punto perez arroba gmail punto com"},
		{"itin with context", "ITIN 912-78-1234", "US_SSN=912-78-1234"},
		{"iban italian layout", "IBAN IT 60 X 05428 11101 000000123456", "IBAN=IT 60 X 05428 11101 000000123456"},
		{"card with underscores", "card 4111_1111_1111_1111", "CREDIT_CARD=4111_1111_1111_1111"},
		{"password", "password: Winter2024!", "PASSWORD=Winter2024!"},
		{"card over lines", "card\n4111\n1111\n1111\n1111\nthanks", "CREDIT_CARD=4111\n1111\n1111\n1111"},
		{"card with commas", "4111,1111,1111,1111", "CREDIT_CARD=4111,1111,1111,1111"},
		{"email with umlaut", "an müller@bank.de schreiben", "EMAIL=müller@bank.de"},
		{"email spaced at and dot", "name @ bank . de", "EMAIL=name @ bank . de"},
		{"password in env", "DB_PASSWORD=s3cr3tP@ssw0rd", "PASSWORD=s3cr3tP@ssw0rd"},
		{"url credentials", "postgres://admin:Sup3rS3cret2024@db.internal:5432/prod", "PASSWORD=admin:Sup3rS3cret2024@db.internal:5432"},
		{"token in a url", "https://ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R@github.com/acme/app.git", "API_KEY=ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R@github.com"},
		{"aws secret after its name", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "API_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{"camelCase key name", "clientSecret: 'a8F3kL9mQ2xZ7vB4nC6d'", "API_KEY=a8F3kL9mQ2xZ7vB4nC6d"},
		{"slack webhook", "https://hooks.slack.com/services/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", "API_KEY=hooks.slack.com/services/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"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, labels(c, tc.text), tc.want)
		})
	}
}

func TestNearMissesAreClean(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	for _, text := range []string{
		"order 4111 1111 1111 1112 shipped",     // Luhn fails: weak only
		"build 20240315103045 passed",           // a timestamp
		"released v10.4.1-rc2 on 2024-03-15",    // version and date
		"IBAN-like DE00 3704 0044 0532 0130 00", // bad checksum: weak only
		"batch 123456789 done",                  // nine digits, no context: weak only
		"000-12-3456 is not issued",             // SSA invalid area
		"it cost $1,234,567.89 at 10:30",        // amount and time
		"look at the dot product of the vectors",
		"the dot-com era at its peak",
		"isbn 978-3-16-148410-0",
		"uuid 123e4567-e89b-12d3-a456-426614174000",
		"sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"call ext. 42 at 9am",
		"unix time 1700000000 or 1700000000123",
		"postcode 10115 Berlin, tracking 9400 1000 0000 0000 0000 00",
		"let s = String::from(\"x\"); use std::fs::File; Error::BadRequest",
		"arn:aws:iam::123456789012:role/x",
		"The EAN 5901234123457 is on the box",
		"Meet me at Starbucks. It opens at 7.",
		"He works at Microsoft dot NET team",
		"Call scheduled 15/03/2024 14:00",
		"Contact person since 01.01.2019",
		"Call center handled 1 204 332 calls",
		"Invoice 0612345678 for March",
		"password = getpass.getpass()",
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
	} {
		var strong []string
		for _, s := range c.Find(text) {
			if !s.Weak {
				strong = append(strong, s.Label+"="+text[s.Start:s.End])
			}
		}
		assert.Empty(t, strong, text)
	}
}

func TestWeakSignals(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	assert.Contains(t, labels(c, "batch 878117765 done"), "~US_SSN=878117765")
	assert.Contains(t, labels(c, "order 4111 1111 1111 1112"), "~CREDIT_CARD=4111 1111 1111 1112")
	assert.Contains(t, labels(c, "DE00 3704 0044 0532 0130 00"), "~IBAN=DE00 3704 0044 0532 0130 00")
}

func TestDecodedTextIsScanned(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	secret := "please charge 4111 1111 1111 1111 and mail jane@bank.de"
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	for _, tc := range []struct{ name, text, span, label string }{
		{"base64 in text", "decode this: " + b64 + " please", b64, CreditCard},
		{"base64 url alphabet", "x " + base64.RawURLEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)), CreditCard},
		{"data url", "data:text/plain;base64," + b64, b64, CreditCard},
		{"percent-encoded query", "https://img.example.com/a.png?email=jane%40bank.de&x=1", "jane%40bank.de", Email},
		{"json escapes", `{"to":"jane\u0040bank.de"}`, `jane\u0040bank.de`, Email},
		{"nested: percent inside base64", base64.StdEncoding.EncodeToString([]byte("q=jane%40bank.de&x=1")), base64.StdEncoding.EncodeToString([]byte("q=jane%40bank.de&x=1")), Email},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, labels(c, tc.text), tc.label+"="+tc.span)
		})
	}
	// An image payload decodes to binary: probed, not scanned, no finding.
	img := base64.StdEncoding.EncodeToString(append([]byte{0x89, 'P', 'N', 'G', 0, 0, 0, 0x0d}, make([]byte, 4096)...))
	assert.Empty(t, labels(c, "data:image/png;base64,"+img))
}

func TestScanRequestKeysNumbersAndIDs(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	body := `{"model":"m","user":"jane@bank.de","metadata":{"jane.doe@bank.de":"x","n":"878117765 ssn"},
	"messages":[{"role":"assistant","tool_calls":[{"id":"call_4111111111111111","type":"function","function":{"name":"f","arguments":"{}"}}]},
	{"role":"tool","tool_call_id":"call_4111111111111111","content":"ok"}],"seed":4111111111111111}`
	f := c.ScanRequest([]byte(body))
	var got []string
	for _, d := range f.Detections() {
		got = append(got, d.Label+"@"+d.Path)
	}
	// A key that holds data is named by its label: paths never hold values.
	assert.ElementsMatch(t, []string{"EMAIL@user", "EMAIL@metadata.<EMAIL>", "US_SSN@metadata.n",
		"CREDIT_CARD@messages.0.tool_calls.0.id", "CREDIT_CARD@messages.1.tool_call_id", "CREDIT_CARD@seed"}, got)
	out, masked, err := (&Redactor{}).Body([]byte(body), f)
	require.NoError(t, err)
	assert.Equal(t, 6, masked[Email]+masked[USSSN]+masked[CreditCard])
	for _, v := range []string{"jane@bank.de", "jane.doe@bank.de", "878117765", "4111111111111111"} {
		assert.NotContains(t, string(out), v)
	}
	assert.True(t, strings.Contains(string(out), `"[EMAIL_2]":"x"`), string(out))
	assert.Contains(t, string(out), `"seed":"[CREDIT_CARD_1]"`)
}

// A JSON key is the context of its value: a password or a key under its
// name, but not a cache key.
func TestKeyNamesSecrets(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	f := c.ScanRequest([]byte(`{"metadata":{"password":"Summer2024!","api_key":"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c","prompt_cache_key":"a8F3kL9mQ2xZ7vB4nC6dE1fG"}}`))
	assert.Equal(t, map[string]int{Password: 1, APIKey: 1}, f.Counts())
}

// Cases from a review of the scanners.
func TestReviewCases(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	// A code glued to the first group does not hide the rest of the run.
	for _, text := range []string{"form W2 123-45-6789", "employee E1042 - 123-45-6789", "jane,X1,123-45-6789"} {
		assert.Contains(t, labels(c, text), "US_SSN=123-45-6789", text)
	}
	assert.Contains(t, labels(c, "room B2 (415) 555-2671"), "PHONE=(415) 555-2671")
	// An address across the edge of the last search window is read whole.
	long := "I will be at the office tomorrow afternoon, so if anything comes up with the contract, the invoice or the delivery, please write to jane (at) bank (dot) de"
	assert.Contains(t, labels(c, long), "EMAIL=jane (at) bank (dot) de")
	// Two values sharing bytes are masked together.
	text := "pay 4111 1111 1111 1111.jane@bank.de now"
	red := (&Redactor{}).Text(text, c.Find(text))
	assert.NotContains(t, red, "jane")
	assert.NotContains(t, red, "4111")
	// Padding one field with encoded text does not use up another's decoding.
	pad := strings.Repeat(`%252525 \\\\n`, 1) + strings.Repeat(" ", 200000)
	body := `{"a_pad":"` + pad + `","b":"` + base64.StdEncoding.EncodeToString([]byte("contact jane.doe@bank.de please")) + `"}`
	assert.Equal(t, map[string]int{Email: 1}, c.ScanRequest([]byte(body)).Counts())
}
