package classify

import (
	"net/netip"
	"regexp"
	"strings"
)

// builtin are the detectors every classifier has, in priority order for
// overlapping matches: secrets first (a key may contain digit runs), then
// structured numbers with checksums, then the looser patterns.
var builtin = []detector{
	{label: PrivateKey, category: CategorySecret, trigger: pemHeader,
		re: regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )?PRIVATE KEY-----|$)`)},
	{label: JWT, category: CategorySecret, trigger: jwtPrefix,
		re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}`)},
	{label: APIKey, category: CategorySecret, trigger: keyPrefixes,
		re: regexp.MustCompile(`\b(?:sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,})`)},
	{label: CreditCard, category: CategoryPII, trigger: digitRuns,
		re: regexp.MustCompile(`\b[1-9](?:[ -]?\d){12,18}\b`), valid: luhnCard},
	{label: IBAN, category: CategoryPII, trigger: ibanStarts,
		re: regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b`), valid: ibanValid},
	{label: USSSN, category: CategoryPII, trigger: digitRuns,
		re: regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`), valid: ssnValid},
	{label: Email, category: CategoryPII, trigger: atSigns,
		re: regexp.MustCompile(`\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b`)},
	{label: IPAddress, category: CategoryPII, trigger: digitRuns,
		re: regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`), valid: ipValid},
	{label: IPAddress, category: CategoryPII, trigger: colonRuns,
		re: regexp.MustCompile(`(?i:(?:\b[0-9a-f]{1,4}|::?)(?::[0-9a-f]{0,4}){1,7}(?:%[0-9a-z]+)?)`), valid: ipValid},
	{label: Phone, category: CategoryPII, trigger: digitRuns,
		re: regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}\b`), valid: phoneValid},
}

func digits(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			out = append(out, c-'0')
		}
	}
	return out
}

// luhnCard accepts 13 to 19 digits that pass the Luhn check, written
// either without separators or in groups of 3 to 6 digits split by one
// kind of separator, as cards are printed.
func luhnCard(s string) bool {
	if sep := strings.IndexAny(s, " -"); sep >= 0 {
		groups := strings.Split(s, s[sep:sep+1])
		for _, g := range groups {
			if len(g) < 3 || len(g) > 6 || strings.ContainsAny(g, " -") {
				return false
			}
		}
	}
	d := digits(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// ibanValid checks the ISO 13616 mod-97 checksum.
func ibanValid(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	r := s[4:] + s[:4]
	rem := 0
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// ssnValid rejects numbers the SSA never issues: area 000, 666 or 9xx,
// group 00, serial 0000.
func ssnValid(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

func ipValid(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	if a.Is4() {
		// Version-like strings ("1.2.3.4") are IPs too; accept them, but
		// not the unspecified address.
		return !a.IsUnspecified()
	}
	return strings.Count(s, ":") >= 2 && !a.IsUnspecified()
}

// phoneValid wants 8 to 15 digits (E.164's range) and, without a leading
// "+" or parentheses, at least 10 in separated groups, so dates, times,
// amounts and bare IDs are not phones.
func phoneValid(s string) bool {
	n := len(digits(s))
	if n < 8 || n > 15 {
		return false
	}
	if strings.HasPrefix(s, "+") || strings.Contains(s, "(") {
		return true
	}
	// Plain digit groups: at least 10 digits and one kind of separator,
	// so that two adjacent numbers do not read as one phone.
	kinds := 0
	for _, sep := range []string{" ", ".", "-"} {
		if strings.Contains(s, sep) {
			kinds++
		}
	}
	return n >= 10 && kinds == 1
}
