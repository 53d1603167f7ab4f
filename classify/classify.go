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
	PrivateKey = "PRIVATE_KEY"
	JWT        = "JWT"
)

// Categories group labels for policies that care about the kind of data,
// not the exact entity.
const (
	CategoryPII    = "pii"
	CategorySecret = "secret"
)

// Span is one match in a text: text[Start:End] is the entity.
type Span struct {
	Start, End int
	Label      string
}

// detector finds one label's entities. valid, if set, confirms a regexp
// match (a Luhn or IBAN checksum) so look-alikes are not reported.
type detector struct {
	label    string
	category string
	re       *regexp.Regexp
	valid    func(string) bool
	trigger  trigger
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
}

// New returns a classifier with the built-in detectors plus custom ones.
func New(custom ...Custom) (*Classifier, error) {
	c := &Classifier{detectors: slices.Clone(builtin), category: map[string]string{}}
	for _, cu := range custom {
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

// Find returns every entity in text, ordered by position, without
// overlaps: where two detectors claim the same characters the longer match
// wins, then the earlier detector (secrets and cards before phones).
func (c *Classifier) Find(text string) []Span {
	var spans []Span
	var cache [pemHeader + 1][]window // windows per trigger, found once
	var done [pemHeader + 1]bool
	for _, d := range c.detectors {
		if !done[d.trigger] {
			cache[d.trigger], done[d.trigger] = d.trigger.windows(text), true
		}
		for _, w := range cache[d.trigger] {
			// One byte of context on each side keeps \b honest at the edges.
			base := max(w.start-1, 0)
			sub := text[base:min(w.end+1, len(text))]
			for _, loc := range d.re.FindAllStringIndex(sub, -1) {
				s, e := base+loc[0], base+loc[1]
				if s < w.start || e > w.end {
					continue
				}
				if d.valid != nil && !d.valid(text[s:e]) {
					continue
				}
				spans = append(spans, Span{Start: s, End: e, Label: d.label})
			}
		}
	}
	return dropOverlaps(spans, c.rank)
}

func (c *Classifier) rank(label string) int {
	for i, d := range c.detectors {
		if d.label == label {
			return i
		}
	}
	return len(c.detectors)
}

func dropOverlaps(spans []Span, rank func(string) int) []Span {
	if len(spans) < 2 {
		return spans
	}
	// Longest first, then by detector order, then by position; keep a span
	// only if it overlaps none kept before it.
	sort.SliceStable(spans, func(i, j int) bool {
		li, lj := spans[i].End-spans[i].Start, spans[j].End-spans[j].Start
		if li != lj {
			return li > lj
		}
		if ri, rj := rank(spans[i].Label), rank(spans[j].Label); ri != rj {
			return ri < rj
		}
		return spans[i].Start < spans[j].Start
	})
	kept := spans[:0:0]
	for _, s := range spans {
		overlaps := false
		for _, k := range kept {
			if s.Start < k.End && k.Start < s.End {
				overlaps = true
				break
			}
		}
		if !overlaps {
			kept = append(kept, s)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Start < kept[j].Start })
	return kept
}

// Counts tallies spans by label.
func Counts(spans []Span) map[string]int {
	if len(spans) == 0 {
		return nil
	}
	m := make(map[string]int, len(spans))
	for _, s := range spans {
		m[s.Label]++
	}
	return m
}
