package classify

import (
	"strings"
	"testing"
)

// A typical chat request of about 1.3 KB: a system prompt, a user message
// with one email and one card number, and an assistant turn.
var benchBody = []byte(`{"model":"m","messages":[{"role":"system","content":"` + strings.Repeat("You are a careful assistant for the billing team. ", 8) +
	`"},{"role":"user","content":"` + strings.Repeat("Please look into the invoice dispute from last week. ", 10) +
	`Contact jane.doe@example.com, card 4111 1111 1111 1111."},{"role":"assistant","content":"Sure, I will check the ledger entries for March and April."}]}`)

func BenchmarkScanRequest(b *testing.B) {
	c, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if f := c.ScanRequest(benchBody); len(f.Fields) != 1 {
			b.Fatalf("found %d fields", len(f.Fields))
		}
	}
}

func BenchmarkScanRequestClean(b *testing.B) {
	c, err := New()
	if err != nil {
		b.Fatal(err)
	}
	clean := []byte(strings.NewReplacer("jane.doe@example.com", "Jane", "4111 1111 1111 1111", "on file").Replace(string(benchBody)))
	b.SetBytes(int64(len(clean)))
	b.ReportAllocs()
	for b.Loop() {
		if f := c.ScanRequest(clean); len(f.Fields) != 0 {
			b.Fatalf("found %d fields", len(f.Fields))
		}
	}
}
