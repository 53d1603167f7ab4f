package classify

// IBANs are found by country: two letters and two check digits start one,
// the country fixes its length (ISO 13616 registry), and its characters
// are read from there, in either case, across the separators people print
// between groups (spaces, dashes, dots). Knowing the length means a digit
// written after the IBAN ("… 0130 00 1") cannot hide it. The mod-97
// checksum decides; a well-formed candidate that fails it is a weak
// signal.

var ibanLength = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
	"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
	"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
	"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

// scanIBANs reports the IBANs in t.
func scanIBANs(t string, add func(Span)) {
	var buf [40]byte
	for i := 0; i+4 <= len(t); i++ {
		if (i > 0 && isAlnum(t[i-1])) || !isLetter(t[i]) || !isLetter(t[i+1]) {
			continue
		}
		// The check digits, right after the country or one space on ("IT 60 X 05428…").
		c := i + 2
		if c < len(t) && t[c] == ' ' {
			c++
		}
		if c+2 > len(t) || !isDigit(t[c]) || !isDigit(t[c+1]) {
			continue
		}
		n, ok := ibanLength[string([]byte{upper(t[i]), upper(t[i+1])})]
		if !ok {
			continue
		}
		d := append(buf[:0], upper(t[i]), upper(t[i+1]), t[c], t[c+1])
		j, letters := c+2, 0
		for len(d) < n && j < len(t) {
			c := t[j]
			if isAlnum(c) {
				if isLetter(c) {
					letters++
				}
				d = append(d, upper(c))
				j++
				continue
			}
			// A separator of up to three bytes between two characters.
			k := j
			for k < len(t) && k-j < 3 && (t[k] == ' ' || t[k] == '-' || t[k] == '.') {
				k++
			}
			if k == j || k == len(t) || !isAlnum(t[k]) {
				break
			}
			j = k
		}
		// Letters are bank codes, a few at most: a run of words is not
		// an account number.
		if len(d) < n || letters*2 > n-4 {
			continue
		}
		add(Span{Start: i, End: j, Label: IBAN, Weak: !ibanChecksum(d)})
		i = j - 1
	}
}

// ibanChecksum checks the ISO 13616 mod-97 checksum of an upper-case IBAN.
func ibanChecksum(d []byte) bool {
	rem := 0
	for k := range len(d) {
		c := d[(k+4)%len(d)]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return rem == 1
}
