package classify

import (
	"net/netip"
	"regexp"
	"strings"
)

// builtin are the pattern detectors every classifier has. Cards, IBANs,
// SSNs and phones have scanners of their own (numbers.go, iban.go,
// phones.go), and so do spelled-out emails (spelled.go).
var builtin = []detector{
	{label: PrivateKey, category: CategorySecret, trigger: pemHeader,
		re: regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)`)},
	{label: JWT, category: CategorySecret, trigger: jwtPrefix,
		re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}`)},
	// Known key formats, at a word start: "call_sk-proj-…" is a key, but
	// "task-…" holds no "sk-" key.
	{label: APIKey, category: CategorySecret, trigger: keyPrefixes, group: 1,
		re: regexp.MustCompile(`(?:^|[^A-Za-z0-9])(sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|ya29\.[A-Za-z0-9_-]{20,}|hooks\.slack\.com/services/[A-Za-z0-9/]{20,})`)},
	{label: Email, category: CategoryPII, trigger: atSigns,
		re: regexp.MustCompile(`[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}`)},
	// An IPv4 address, also inside an identifier ("call_10.0.0.7"), not
	// inside a longer dotted number.
	{label: IPAddress, category: CategoryPII, trigger: digitRuns, group: 1,
		re: regexp.MustCompile(`(?:^|[^0-9A-Za-z.])((?:\d{1,3}\.){3}\d{1,3})`), valid: ipValid, after: ipv4After},
	// An IPv6 address, not a path in code ("String::from", "Foo::Bar"):
	// nothing of an identifier on either side.
	{label: IPAddress, category: CategoryPII, trigger: colonRuns, group: 1,
		re: regexp.MustCompile(`(?:^|[^0-9A-Za-z:])((?i:(?:[0-9a-f]{1,4}|::?)(?::[0-9a-f]{0,4}){1,7}(?:%[0-9a-z]+)?))`), valid: ipValid, after: ipv6After},
}

// ipv4After accepts what may follow an IPv4 address: not a digit, a
// letter or another dotted number (a sentence's full stop is fine).
func ipv4After(t string, e int) bool {
	if e < len(t) && t[e] == '.' {
		e++
	}
	return e == len(t) || (!isAlnum(t[e]) && t[e] != '.')
}

// ipv6After accepts what may follow an IPv6 address: nothing of an
// identifier ("::from" is code).
func ipv6After(t string, e int) bool {
	return e == len(t) || !(isAlnum(t[e]) || t[e] == '_' || t[e] == ':')
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
	return strings.Count(s, ":") >= 2 && !a.WithZone("").IsUnspecified()
}
