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
	atWords      = `(?:at|arobase|arroba|chiocciola|klammeraffe)`
	dotWords     = `(?:dot|punkt|punto|point|ponto|punt)`
	spelledDot   = `(?:\s*[\(\[\{<]\s*(?:` + dotWords + `|\.)\s*[\)\]\}>]\s*|\s+` + dotWords + `\s+|\s+\.\s+|\.)`
	spelledAt    = `(?:\s*[\(\[\{<]\s*(?:` + atWords + `|a)\s*[\)\]\}>]\s*|\s+` + atWords + `\s+|\s*@\s*)`
	spelledWord  = `[a-z0-9_%+\-]+`
	spelledEmail = regexp.MustCompile(`(?i)\b` + spelledWord + `(?:` + spelledDot + spelledWord + `)*` + spelledAt +
		`[a-z0-9\-]+(?:` + spelledDot + `[a-z0-9\-]+)*?` + spelledDot + `([a-z]{2,24})\b`)
	// Forms no prose has: bracketed words, and at-words of other
	// languages.
	unambiguous = regexp.MustCompile(`(?i)[\(\[\{<]\s*(?:` + atWords + `|a|` + dotWords + `|\.)\s*[\)\]\}>]|\b(?:arobase|arroba|chiocciola|klammeraffe)\b`)
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
// an at-word, a bracketed "(a)", or an "@" with spaces around it. A
// candidate that fails ("me at jane dot doe" in "reach me at jane dot doe
// at gmail dot com") is retried from its next word.
func scanSpelledEmails(t string, add func(Span)) {
	lo, found := -1, 0 // end of the last window searched, and of the last address
	for i := 0; i+1 < len(t); i++ {
		// A hint well inside the last window was searched with it; one
		// near its end gets a window of its own, so that an address
		// across the edge is read whole.
		if !atHint(t, i) || i < lo-64 {
			continue
		}
		s := max(i-96, 0, found)
		for s > 0 && s < i && t[s-1] != ' ' { // start at a word
			s++
		}
		e := min(i+128, len(t))
		w := t[s:e]
		if !domainDot(w) {
			lo = e // prose around an "at": no domain to end an address
			continue
		}
		for pos := 0; pos < len(w); {
			m := spelledEmail.FindStringSubmatchIndex(w[pos:])
			if m == nil {
				break
			}
			ms, me := pos+m[0], pos+m[1]
			match, tld := w[ms:me], w[pos+m[2]:pos+m[3]]
			switch {
			case !strings.ContainsAny(match, " ([{<"):
				// a plain address: the pattern detector's
			case unambiguous.MatchString(match) ||
				(commonTLDs[strings.ToLower(tld)] && (tld == strings.ToLower(tld) || match == strings.ToUpper(match)) && !hasStopword(match)):
				add(Span{Start: s + ms, End: s + me, Label: Email})
				pos, found = me, s+me
				continue
			}
			// Retry from the next word of the failed candidate.
			next := strings.IndexByte(w[ms:me], ' ')
			if next < 0 {
				pos = me
				continue
			}
			pos = ms + next + 1
		}
		lo = e
	}
}

// domainDot reports whether w may hold the dot before a spelled email's
// top-level domain, which every match of spelledEmail has: a dot-word
// (any case: "dot", "pun…", "poin…", "pont…"), or a "." followed by a
// letter or a non-ASCII byte ("bank.de"; (?i) folds K and ſ into [a-z])
// or preceded by a space or a bracket ("bank . de", "bank(.)de"). Prose
// around an "at" rarely has one (a full stop is followed by a space), and
// this byte scan saves the regular expression there.
func domainDot(w string) bool {
	for j := 0; j < len(w); j++ {
		switch c := w[j]; c | 0x20 {
		case '.':
			if c != '.' {
				continue
			}
			if j+1 < len(w) && (isLetter(w[j+1]) || w[j+1] >= 0x80) {
				return true
			}
			if j > 0 && strings.IndexByte(" \t\n\f\r([{<", w[j-1]) >= 0 {
				return true
			}
		case 'd':
			if hasFoldPrefix(w[j+1:], "ot") {
				return true
			}
		case 'p':
			if rest := w[j+1:]; hasFoldPrefix(rest, "un") || hasFoldPrefix(rest, "oin") || hasFoldPrefix(rest, "ont") {
				return true
			}
		}
	}
	return false
}

// hasFoldPrefix is strings.HasPrefix ignoring ASCII case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// atStart are the bytes an at-hint starts with.
var atStart = func() (t [256]bool) {
	for _, c := range []byte("@([{<aAcCkK") {
		t[c] = true
	}
	return t
}()

// atHint reports an at-word, a bracketed at, or a spaced "@" at t[i].
func atHint(t string, i int) bool {
	if !atStart[t[i]] {
		return false
	}
	switch c := t[i] | 0x20; {
	case t[i] == '@':
		return (i > 0 && t[i-1] == ' ') || (i+1 < len(t) && t[i+1] == ' ')
	case t[i] == '(' || t[i] == '[' || t[i] == '{' || t[i] == '<':
		j := i + 1
		for j < len(t) && t[j] == ' ' {
			j++
		}
		return j < len(t) && (t[j]|0x20) == 'a'
	case c == 'a' || c == 'c' || c == 'k':
		if (i > 0 && isAlnum(t[i-1])) || i+1 == len(t) {
			return false
		}
		// The second letter first: most words starting with a, c or k
		// are none of these.
		switch n := t[i+1] | 0x20; c {
		case 'a':
			if n != 't' && n != 'r' {
				return false
			}
		case 'c':
			if n != 'h' {
				return false
			}
		case 'k':
			if n != 'l' {
				return false
			}
		}
		for _, w := range [...]string{"at", "arobase", "arroba", "chiocciola", "klammeraffe"} {
			if len(t)-i >= len(w) && strings.EqualFold(t[i:i+len(w)], w) && (i+len(w) == len(t) || !isAlnum(t[i+len(w)])) {
				return true
			}
		}
	}
	return false
}
