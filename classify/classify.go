// Package classify finds sensitive data in request text before the policy
// decides where the request may go: personal data (email, phone, payment
// card, IBAN, US SSN, IP address), secrets (API keys, private keys, JWTs)
// and whatever custom patterns config adds.
//
// Only labels and counts leave this package for the policy input and the
// logs; the spans it finds are used for redaction and never logged.
package classify

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Labels of the built-in detectors. They are stable: policies match them.
const (
	Email      = "EMAIL"
	Phone      = "PHONE"
	CreditCard = "CREDIT_CARD"
	IBAN       = "IBAN"
	USSSN      = "US_SSN"
	IPAddress  = "IP_ADDRESS"
	APIKey     = "API_KEY"
	Password   = "PASSWORD"
	PrivateKey = "PRIVATE_KEY"
	JWT        = "JWT"
)

// Categories group labels for policies that care about the kind of data,
// not the exact entity.
const (
	CategoryPII    = "pii"
	CategorySecret = "secret"
)

// Span is one match in a text: text[Start:End] is the entity, as the
// client wrote it (normalisation and decoding map back to the original
// bytes).
type Span struct {
	Start, End int
	Label      string
	// Weak marks a weaker signal: a nine-digit number with no context, a
	// card-like number that fails its checksum, a national phone number
	// written bare. Policies count weak signals only for tenants with
	// strict detection.
	Weak bool
}

// detector finds one label's entities. valid, if set, confirms a regexp
// match (a Luhn or IBAN checksum) so look-alikes are not reported.
type detector struct {
	label    string
	category string
	re       *regexp.Regexp
	valid    func(string) bool
	trigger  trigger
	group    int // the submatch that is the entity; 0 is the whole match
	// after, if set, checks the text after a match (a boundary RE2
	// cannot look ahead for without consuming it).
	after func(text string, end int) bool
}

// Custom is a detector from config: a label and a regular expression
// (RE2 syntax) whose every match is an entity.
type Custom struct {
	Label    string
	Pattern  string
	Category string // pii or secret; default pii
}

// Classifier runs a fixed set of detectors. It is safe for concurrent use.
type Classifier struct {
	detectors []detector
	category  map[string]string
	phones    phoneChecker
}

// Options configure a classifier.
type Options struct {
	// Custom are detectors added to the built-in ones.
	Custom []Custom
	// PhoneRegions are the ISO 3166 regions national phone numbers are
	// checked against; nil means DefaultPhoneRegions.
	PhoneRegions []string
}

// New returns a classifier with the built-in detectors plus custom ones.
func New(custom ...Custom) (*Classifier, error) { return NewWith(Options{Custom: custom}) }

// NewWith returns a classifier configured by o.
func NewWith(o Options) (*Classifier, error) {
	phones, err := newPhoneChecker(o.PhoneRegions)
	if err != nil {
		return nil, err
	}
	c := &Classifier{detectors: slices.Clone(builtin), category: map[string]string{}, phones: phones}
	for _, cu := range o.Custom {
		re, err := regexp.Compile(cu.Pattern)
		if err != nil {
			return nil, fmt.Errorf("custom detector %s: %w", cu.Label, err)
		}
		if !validLabel(cu.Label) {
			return nil, fmt.Errorf("custom detector label %q: use A-Z, 0-9 and _", cu.Label)
		}
		cat := cu.Category
		if cat == "" {
			cat = CategoryPII
		}
		if cat != CategoryPII && cat != CategorySecret {
			return nil, fmt.Errorf("custom detector %s: category must be pii or secret, got %q", cu.Label, cat)
		}
		c.detectors = append(c.detectors, detector{label: cu.Label, category: cat, re: re})
	}
	for _, l := range []string{CreditCard, IBAN, USSSN, Phone} {
		c.category[l] = CategoryPII
	}
	c.category[Password] = CategorySecret
	for _, d := range c.detectors {
		c.category[d.label] = d.category
	}
	return c, nil
}

func validLabel(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// Category is a label's category, or "" for an unknown label.
func (c *Classifier) Category(label string) string { return c.category[label] }

// Find returns every entity in text, strong and weak, ordered by position,
// without overlaps: a strong match beats a weak one, then the longer match
// wins, then the detector listed first in rank (secrets, then cards…).
// Find reads text normalised (normalize.go); spans are in text's own
// bytes.
// Text that decodes to text (base64, percent-encoding, escapes) is
// scanned decoded too (decode.go).
func (c *Classifier) Find(text string) []Span {
	return c.scanText(text, "", &budget{bytes: maxDecodedBytes}, 0)
}

// findView appends the entities of a normalised text to spans. hint is
// context from outside the text (the lower-cased key a JSON value sits
// under), read like the words before a number.
func (c *Classifier) findView(text, hint string, spans []Span) []Span {
	spans = c.patterns(text, spans, true)
	add := func(s Span) { spans = append(spans, s) }
	// IBANs, numbers and key tokens all hold a digit: most prose has
	// none, and is read once here instead of three times.
	if strings.IndexAny(text, "0123456789") >= 0 {
		scanIBANs(text, add)
		c.scanNumbers(text, hint, add)
		scanKeyTokens(text, add)
	}
	scanPasswords(text, add) // a password may be letters and symbols
	scanURLCredentials(text, add)
	scanSpelledEmails(text, add)
	return spans
}

// patterns appends the matches of the pattern detectors: in the windows
// their triggers find, or, when windowed is false, in the whole text (the
// reference the windows are tested against).
func (c *Classifier) patterns(text string, spans []Span, windowed bool) []Span {
	var cache [pemHeader + 1][]window // windows per trigger, found once
	var done [pemHeader + 1]bool
	for _, d := range c.detectors {
		if !done[d.trigger] {
			cache[d.trigger], done[d.trigger] = d.trigger.windows(text), true
			if !windowed {
				cache[d.trigger] = []window{{0, len(text)}}
			}
		}
		for _, w := range cache[d.trigger] {
			// One byte of context on each side keeps \b honest at the edges.
			base := max(w.start-1, 0)
			sub := text[base:min(w.end+1, len(text))]
			for _, loc := range d.re.FindAllStringSubmatchIndex(sub, -1) {
				if loc[2*d.group] < 0 {
					continue
				}
				s, e := base+loc[2*d.group], base+loc[2*d.group+1]
				if s < w.start || e > w.end {
					continue
				}
				if d.valid != nil && !d.valid(text[s:e]) {
					continue
				}
				if d.after != nil && !d.after(text, e) {
					continue
				}
				spans = append(spans, Span{Start: s, End: e, Label: d.label})
			}
		}
	}
	return spans
}

// labelRank orders the built-in labels for overlapping matches: secrets
// first (a key may contain digit runs), then structured numbers with
// checksums, then the looser patterns. Custom labels come after.
var labelRank = map[string]int{PrivateKey: 0, JWT: 1, APIKey: 2, Password: 3, CreditCard: 4, IBAN: 5, USSSN: 6, Email: 7, IPAddress: 8, Phone: 9}

func (c *Classifier) rank(label string) int {
	if r, ok := labelRank[label]; ok {
		return r
	}
	for i, d := range c.detectors {
		if d.label == label {
			return len(labelRank) + i
		}
	}
	return len(labelRank) + len(c.detectors)
}

func dropOverlaps(spans []Span, rank func(string) int) []Span {
	if len(spans) < 2 {
		return spans
	}
	// Strong first, then longest, then by rank, then by position; keep a
	// span only if it overlaps none kept before it. The bytes kept so far
	// are a bitset, so the cost is the spans' length, not their count
	// squared.
	sort.SliceStable(spans, func(i, j int) bool {
		if spans[i].Weak != spans[j].Weak {
			return !spans[i].Weak
		}
		li, lj := spans[i].End-spans[i].Start, spans[j].End-spans[j].Start
		if li != lj {
			return li > lj
		}
		if ri, rj := rank(spans[i].Label), rank(spans[j].Label); ri != rj {
			return ri < rj
		}
		return spans[i].Start < spans[j].Start
	})
	end := 0
	for _, s := range spans {
		end = max(end, s.End)
	}
	covered := make([]uint64, end/64+1)
	isSet := func(i int) bool { return covered[i/64]&(1<<(i%64)) != 0 }
	kept := spans[:0:0]
	var partial []Span // strong spans that stick out of a kept one
	for _, s := range spans {
		overlaps, outside := false, false
		for i := s.Start; i < s.End; i++ {
			if isSet(i) {
				overlaps = true
			} else {
				outside = true
			}
			if overlaps && outside {
				break
			}
		}
		switch {
		case !overlaps:
			for i := s.Start; i < s.End; i++ {
				covered[i/64] |= 1 << (i % 64)
			}
			kept = append(kept, s)
		case outside && !s.Weak:
			partial = append(partial, s)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Start < kept[j].Start })
	if len(partial) == 0 {
		return kept
	}
	// A strong match that overlaps a kept one in part ("4111 1111 1111
	// 1111.jane@bank.de": the card and the email share "1111") widens it
	// to both, so that masking leaves neither value in clear.
	all := append(kept, partial...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start < all[j].Start })
	out := all[:0:0]
	for _, s := range all {
		if n := len(out); n > 0 && s.Start < out[n-1].End {
			out[n-1].End = max(out[n-1].End, s.End)
			out[n-1].Weak = out[n-1].Weak && s.Weak
			continue
		}
		out = append(out, s)
	}
	return out
}

// Counts tallies the strong spans by label; nil when there are none.
func Counts(spans []Span) map[string]int { return tally(spans, false) }

// WeakCounts tallies the weak spans by label; nil when there are none.
func WeakCounts(spans []Span) map[string]int { return tally(spans, true) }

func tally(spans []Span, weak bool) map[string]int {
	var m map[string]int
	for _, s := range spans {
		if s.Weak == weak {
			if m == nil {
				m = map[string]int{}
			}
			m[s.Label]++
		}
	}
	return m
}
