package classify

import (
	"regexp"
	"strings"
)

// Emails spelled out to slip past a pattern matcher: "name dot surname at
// bank dot de", "name(at)bank(dot)de", "name [at] bank [dot] com",
// "name @ bank . de". Bracketed forms are unambiguous; the bare words "at"
// and "dot" also occur in prose, so those need a domain that ends in a
// common top-level domain.

var (
	spelledDot   = `(?:\s*[\(\[\{<]\s*dot\s*[\)\]\}>]\s*|\s+dot\s+|\s*\.\s*)`
	spelledAt    = `(?:\s*[\(\[\{<]\s*at\s*[\)\]\}>]\s*|\s+at\s+|\s*@\s*)`
	spelledWord  = `[a-z0-9_%+\-]+`
	spelledEmail = regexp.MustCompile(`(?i)\b` + spelledWord + `(?:` + spelledDot + spelledWord + `)*` + spelledAt +
		`[a-z0-9\-]+(?:` + spelledDot + `[a-z0-9\-]+)*?` + spelledDot + `([a-z]{2,24})\b`)
	bracketed = regexp.MustCompile(`(?i)[\(\[\{<]\s*(?:at|dot)\s*[\)\]\}>]`)
)

// commonTLDs are the endings a bare "at … dot …" must have.
var commonTLDs = map[string]bool{
	"com": true, "net": true, "org": true, "edu": true, "gov": true, "io": true, "co": true, "info": true, "biz": true,
	"eu": true, "de": true, "fr": true, "uk": true, "es": true, "it": true, "nl": true, "be": true, "ch": true,
	"at": true, "pl": true, "pt": true, "se": true, "no": true, "dk": true, "fi": true, "ie": true, "us": true,
	"ca": true, "au": true, "br": true, "mx": true, "jp": true, "cn": true, "ru": true, "dev": true, "cz": true,
	"gr": true, "lu": true, "ar": true, "nz": true,
}

// stopwords cannot be a mailbox or a domain: "point at the dot in".
var stopwords = map[string]bool{
	"the": true, "a": true, "an": true, "this": true, "that": true, "these": true, "those": true, "my": true, "your": true,
	"his": true, "her": true, "its": true, "it": true, "our": true, "their": true, "some": true, "any": true, "each": true,
	"all": true, "one": true, "least": true, "most": true, "first": true, "last": true, "home": true, "work": true,
	"der": true, "die": true, "das": true, "le": true, "la": true, "les": true, "el": true, "il": true, "lo": true,
	"het": true, "een": true, "o": true, "os": true, "um": true, "uma": true, "un": true, "une": true,
}

// hasStopword reports a bare "at" next to a word that cannot be a mailbox
// or a domain.
func hasStopword(m string) bool {
	f := strings.Fields(strings.ToLower(m))
	for i, w := range f {
		if w == "at" && ((i > 0 && stopwords[f[i-1]]) || (i+1 < len(f) && stopwords[f[i+1]])) {
			return true
		}
	}
	return false
}

// scanSpelledEmails reports spelled-out emails in t. It looks only near
// an "at" written as a word, bracketed, or an "@" with spaces around it.
func scanSpelledEmails(t string, add func(Span)) {
	lo := -1 // end of the last window searched
	for i := 0; i+1 < len(t); i++ {
		var hit bool
		switch {
		case t[i] == '@':
			hit = (i > 0 && t[i-1] == ' ') || t[i+1] == ' '
		case (t[i]|0x20) == 'a' && (t[i+1]|0x20) == 't':
			hit = (i == 0 || !isAlnum(t[i-1])) && (i+2 == len(t) || !isAlnum(t[i+2]))
		}
		if !hit || i < lo {
			continue
		}
		s := max(i-96, 0, lo)
		for s > 0 && s < i && t[s-1] != ' ' { // start at a word
			s++
		}
		e := min(i+128, len(t))
		w := t[s:e]
		for _, m := range spelledEmail.FindAllStringSubmatchIndex(w, -1) {
			match := w[m[0]:m[1]]
			if !strings.ContainsAny(match, " ([{<") {
				continue // a plain address: the pattern detector's
			}
			if !bracketed.MatchString(match) && (!commonTLDs[strings.ToLower(w[m[2]:m[3]])] || hasStopword(match)) {
				continue
			}
			add(Span{Start: s + m[0], End: s + m[1], Label: Email})
		}
		lo = e
	}
}
