package classify

import "strings"

// Running every detector's regexp over the whole text costs 20-50 µs per
// kilobyte each with Go's regexp engine. Instead each built-in detector
// names a trigger: a cheap byte scan that finds the few short windows of
// the text where its entity could be, and the regexp runs on those only.
// Custom detectors run on the whole text.

type trigger int

const (
	anywhere    trigger = iota // no trigger: scan the whole text
	digitRuns                  // runs of digits and separators with >= 4 digits
	atSigns                    // around each '@'
	colonRuns                  // runs of hex digits and colons with >= 2 colons
	ibanStarts                 // two capitals and two digits
	keyPrefixes                // known API key prefixes
	jwtPrefix                  // "eyJ"
	pemHeader                  // "-----BEGIN"
)

// window is a half-open byte range of the text.
type window struct{ start, end int }

// byteClass is a set of bytes.
type byteClass [256]bool

func classOf(f func(byte) bool, extra string) *byteClass {
	var c byteClass
	for i := range 256 {
		c[i] = f(byte(i)) || strings.IndexByte(extra, byte(i)) >= 0
	}
	return &c
}

var (
	numberish = classOf(isDigit, " -.()+")
	hexColon  = classOf(isHex, ":%.ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ") // zone ids: fe80::1%eth0
	digitSeed = classOf(isDigit, "")
	colonSeed = classOf(func(byte) bool { return false }, ":")
)

// runsAround returns the maximal runs of class bytes that contain a seed
// byte, and keeps those that satisfy keep. Scanning from seeds skips the
// long stretches of prose that hold none.
func runsAround(text string, class, seed *byteClass, keep func(string) bool) []window {
	var out []window
	for i := 0; i < len(text); i++ {
		if !seed[text[i]] {
			continue
		}
		s, e := i, i+1
		for s > 0 && class[text[s-1]] {
			s--
		}
		for e < len(text) && class[text[e]] {
			e++
		}
		if keep(text[s:e]) {
			out = append(out, window{s, e})
		}
		i = e
	}
	return out
}

func countIf(s string, f func(byte) bool) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if f(s[i]) {
			n++
		}
	}
	return n
}

var apiKeyPrefixes = []string{"sk-", "sk_", "rk_", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza", "glpat-", "hf_", "SG.", "npm_", "pypi-", "shp", "dop_v1_", "ya29.", "hooks.slack.com/services/"}

// keyPrefixByFirst indexes apiKeyPrefixes by their first byte.
var keyPrefixByFirst = func() (t [256][]string) {
	for _, p := range apiKeyPrefixes {
		t[p[0]] = append(t[p[0]], p)
	}
	return t
}()

// windows finds where a trigger's entities may be.
func (t trigger) windows(text string) []window {
	switch t {
	case digitRuns:
		if strings.IndexAny(text, "0123456789") < 0 {
			return nil
		}
		return runsAround(text, numberish, digitSeed, func(s string) bool { return countIf(s, isDigit) >= 4 })
	case colonRuns:
		return runsAround(text, hexColon, colonSeed, func(s string) bool { return strings.Count(s, ":") >= 2 })
	case atSigns:
		var out []window
		for i := 0; i < len(text); i++ {
			if text[i] != '@' {
				continue
			}
			s, e := i, i+1
			// Non-ASCII bytes belong to the address too: müller@bank.de.
			for s > 0 && (isWordish(text[s-1]) || text[s-1] >= 0x80 || strings.IndexByte(".%+", text[s-1]) >= 0) {
				s--
			}
			for e < len(text) && (isWordish(text[e]) || text[e] >= 0x80 || text[e] == '.') {
				e++
			}
			out = append(out, window{s, e})
		}
		return out
	case ibanStarts:
		var out []window
		for i := 0; i+4 <= len(text); i++ {
			if isUpper(text[i]) && isUpper(text[i+1]) && isDigit(text[i+2]) && isDigit(text[i+3]) && (i == 0 || !isWordish(text[i-1])) {
				out = append(out, window{i, min(len(text), i+64)}) // 4 + 30 spaced characters
			}
		}
		return out
	case keyPrefixes:
		// One pass over word starts: a key starts after a byte that is not
		// a letter or digit, so most bytes are skipped at once.
		var out []window
		for i := 0; i < len(text); i++ {
			if (i > 0 && isAlnum(text[i-1])) || len(keyPrefixByFirst[text[i]]) == 0 {
				continue
			}
			for _, p := range keyPrefixByFirst[text[i]] {
				if strings.HasPrefix(text[i:], p) {
					e := i + len(p)
					for e < len(text) && (isWordish(text[e]) || text[e] == '.' || text[e] == '/') {
						e++
					}
					out = append(out, window{i, e})
					i = e - 1
					break
				}
			}
		}
		return out
	case jwtPrefix:
		var out []window
		for off := 0; ; {
			i := strings.Index(text[off:], "eyJ")
			if i < 0 {
				return out
			}
			s := off + i
			e := s
			for e < len(text) && (isWordish(text[e]) || text[e] == '.') {
				e++
			}
			out = append(out, window{s, e})
			off = e
		}
	case pemHeader:
		if i := strings.Index(text, "-----BEGIN"); i >= 0 {
			return []window{{i, len(text)}}
		}
		return nil
	}
	return []window{{0, len(text)}}
}
