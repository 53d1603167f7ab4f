package classify

import (
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// Phone numbers are validated with libphonenumber's metadata (the Go port,
// github.com/nyaruka/phonenumbers): a number written with "+" or "00" is
// checked against its country's numbering plan; a national number ("030
// 1234567", "(415) 555-0132", "08124181102") against each hint region's.
// A valid international number is a phone. A valid national number is a
// phone when something says so: a word such as "phone" or "Telefon"
// nearby, parentheses around an area code, or ten digits or more printed
// in groups as phones are (a leading trunk 0, or 3-3-4 in North America);
// or a mobile number with its trunk prefix, 08124181102; otherwise it is
// only a weak signal (strict tenants).

// DefaultPhoneRegions are the regions national numbers are tried in when
// the classifier is given none: the largest markets of our users.
var DefaultPhoneRegions = []string{"US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PL", "PT", "SE", "IN", "ID", "BR", "MX", "AU", "JP"}

// maxPhoneParses bounds the numbering-plan checks per text: each costs
// a few microseconds, and a text of many numbers must not cost
// milliseconds. Past the bound, separated national numbers are judged by
// their shape alone.
const maxPhoneParses = 96

type phoneRegion struct {
	code     string
	cc       int32
	trunk    string // national (trunk) prefix
	keepZero bool   // Italy keeps its leading zero
}

type phoneChecker struct{ regions []phoneRegion }

// trunkOptional are the regions where national numbers are commonly
// written without their trunk prefix (Indian and Brazilian mobiles).
var trunkOptional = map[string]bool{"IN": true, "BR": true, "ID": true}

// trunkPrefixes are the national prefixes of the regions that have one.
var trunkPrefixes = map[string]string{
	"US": "1", "CA": "1", "GB": "0", "DE": "0", "FR": "0", "NL": "0", "BE": "0", "CH": "0", "AT": "0", "IE": "0",
	"SE": "0", "IN": "0", "ID": "0", "BR": "0", "AU": "0", "JP": "0", "CN": "0", "NZ": "0", "ZA": "0", "FI": "0",
	"TR": "0", "RU": "8", "UA": "0", "IL": "0", "KR": "0", "PH": "0", "TH": "0", "MY": "0", "VN": "0", "AR": "0",
	"CO": "0", "EG": "0", "NG": "0", "PK": "0", "BD": "0", "SA": "0", "AE": "0", "HU": "06", "RO": "0", "BG": "0",
}

func newPhoneChecker(regions []string) (phoneChecker, error) {
	if regions == nil {
		regions = DefaultPhoneRegions
	}
	var pc phoneChecker
	for _, r := range regions {
		r = strings.ToUpper(r)
		cc := phonenumbers.GetCountryCodeForRegion(r)
		if cc == 0 {
			return pc, &unknownRegionError{r}
		}
		pc.regions = append(pc.regions, phoneRegion{code: r, cc: int32(cc), trunk: trunkPrefixes[r], keepZero: r == "IT" || r == "SM" || r == "VA"})
	}
	return pc, nil
}

type unknownRegionError struct{ region string }

func (e *unknownRegionError) Error() string {
	return "unknown phone region " + strconv.Quote(e.region) + ": use ISO 3166 alpha-2 codes such as US or DE"
}

// valid reports whether d (digits only) is a valid number: international
// when intl, else national in one of the hint regions; mobile says it is a
// mobile number there.
func (pc *phoneChecker) valid(d string, intl bool, budget *int) (ok, mobile bool) {
	if intl {
		*budget -= 4
		n, err := phonenumbers.Parse("+"+d, "ZZ")
		return err == nil && phonenumbers.IsValidNumber(n), false
	}
	for _, r := range pc.regions {
		nsn, lead := d, false
		switch {
		case r.keepZero && strings.HasPrefix(d, "0"):
			nsn, lead = d[1:], true
		case r.trunk != "" && strings.HasPrefix(d, r.trunk):
			nsn = d[len(r.trunk):]
		case r.trunk != "" && r.trunk != "1" && !trunkOptional[r.code]:
			// A national number is written with its trunk prefix: 4839201
			// is no German number, 04839201 may be.
			continue
		}
		if len(nsn) < 6 || len(nsn) > 14 || (r.trunk == "1" && len(d) == 11 && d[0] != '1') {
			continue
		}
		v, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			continue
		}
		if *budget--; *budget < 0 {
			return false, false
		}
		n := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(r.cc), NationalNumber: proto.Uint64(v)}
		if lead {
			n.ItalianLeadingZero = proto.Bool(true)
		}
		if phonenumbers.IsValidNumberForRegion(n, r.code) {
			ok = true
			if t := phonenumbers.GetNumberType(n); t == phonenumbers.MOBILE || t == phonenumbers.FIXED_LINE_OR_MOBILE {
				return true, true
			}
		}
	}
	return ok, false
}

// dateShape reports groups that read as a date: 12.04.2024, 2024-04-12,
// 15/03/2024, 12.04.24 (one separator, a dot, a dash or a slash, twice).
func dateShape(t string, gs []group) bool {
	if len(gs) != 3 {
		return false
	}
	if sep := t[gs[0].end:gs[1].start]; (sep != "." && sep != "-" && sep != "/") || t[gs[1].end:gs[2].start] != sep {
		return false
	}
	n := func(g group) int { return g.end - g.start }
	v := func(g group) int {
		x := 0
		for k := g.start; k < g.end; k++ {
			x = x*10 + int(t[k]-'0')
		}
		return x
	}
	switch {
	case n(gs[0]) == 4 && n(gs[1]) <= 2 && n(gs[2]) <= 2: // y-m-d
		return v(gs[1]) >= 1 && v(gs[1]) <= 12 && v(gs[2]) >= 1 && v(gs[2]) <= 31
	case n(gs[0]) <= 2 && n(gs[1]) <= 2 && (n(gs[2]) == 4 || n(gs[2]) == 2): // d.m.y, m/d/y
		a, b := v(gs[0]), v(gs[1])
		return a >= 1 && b >= 1 && ((a <= 31 && b <= 12) || (a <= 12 && b <= 31))
	}
	return false
}

// startsWithDate reports groups that are a date, or a date and then
// something else ("15/03/2024 14:00"), not a number printed with dots
// throughout (06.12.34.56.78).
func startsWithDate(t string, gs []group) bool {
	if len(gs) < 3 || !dateShape(t, gs[:3]) {
		return false
	}
	return len(gs) == 3 || t[gs[2].end:gs[3].start] != t[gs[0].end:gs[1].start]
}

// thousandsShape reports an amount written in thousands groups: 1 204 332,
// 2.345.678 (a first group of one to three digits, not starting with 0,
// then groups of exactly three).
func thousandsShape(t string, gs []group) bool {
	if len(gs) < 2 || gs[0].end-gs[0].start > 3 || t[gs[0].start] == '0' {
		return false
	}
	for _, g := range gs[1:] {
		if g.end-g.start != 3 {
			return false
		}
	}
	return true
}

// idWords call a number something other than a phone.
var idWords = []string{
	"invoice", "order", "ref", "reference", "ticket", "account", "customer", "case", "tracking", "sku", "id", "po", "no.", "#",
	"kunden", "rechnung", "bestell", "auftrag", "facture", "commande", "dossier", "factura", "pedido", "fattura", "ordine",
	"encomenda", "bestelling", "klant",
}

// nanpShape reports groups of 3, 3 and 4 digits, 415 555 0132, or with
// the trunk 1 before them, 1-800-555-0199.
func nanpShape(gs []group) bool {
	if len(gs) == 4 && gs[0].end-gs[0].start == 1 {
		gs = gs[1:]
	}
	return len(gs) == 3 && gs[0].end-gs[0].start == 3 && gs[1].end-gs[1].start == 3 && gs[2].end-gs[2].start == 4
}

// scan reports the phone numbers in one run of digit groups: the longest
// window of whole groups from the run's start that is a valid number, then
// again after it ("030 1234567 / 0171 2345678" is two).
func (pc *phoneChecker) scan(t, hint string, r *numberRun, budget *int, add func(Span)) {
	gs := r.groups
	var buf [64]byte
	// Context is read once per run: the words around it.
	said := hasContext(t, r.start, r.end, phoneWords) || containsWord(hint, phoneKeyWords)
	for i := 0; i < len(gs); {
		found := -1
		tries := 0
		for j := len(gs) - 1; j >= i && tries < 4; j-- {
			if (i == 0 && r.gluedLeft) || (j == len(gs)-1 && r.gluedRight) {
				continue // part of a word or an id
			}
			if !(i == 0 && r.plus) && (startsWithDate(t, gs[i:j+1]) || (!said && thousandsShape(t, gs[i:j+1]))) {
				continue
			}
			d := string(digitsOf(t, gs[i:j+1], buf[:0]))
			if len(d) > 15 {
				continue
			}
			if len(d) < 7 {
				break
			}
			tries++
			start := gs[i].start
			if i > 0 && t[start-1] == '(' {
				start-- // "B2 (415) 555-2671": the area code's parenthesis
			}
			intl := i == 0 && r.plus
			if i == 0 {
				start = r.start
			}
			if strings.HasPrefix(d, "00") && len(d) > 9 {
				d, intl = d[2:], true
			}
			if *budget <= 0 {
				// Out of budget: a printed international number is still
				// reported, weakly, so that strict tenants keep it.
				if intl || j > i {
					add(Span{Start: start, End: gs[j].end, Label: Phone, Weak: true})
				}
				found = j
				break
			}
			ok, mobile := pc.valid(d, intl, budget)
			if !ok {
				continue
			}
			end := gs[j].end
			if end < len(t) && t[end] == ')' {
				end++
			}
			parens := strings.IndexByte(t[start:end], '(') >= 0
			// Printed as a phone, or a mobile number with its trunk 0
			// written bare (08124181102), unless the text calls it an
			// invoice, an order or a customer number.
			whole := i == 0 && j == len(gs)-1 && !hasContext(t, start, end, idWords)
			strong := intl || parens || said ||
				(whole && j > 0 && len(d) >= 10 && (d[0] == '0' || nanpShape(gs))) ||
				(whole && mobile && d[0] == '0' && len(d) >= 10)
			add(Span{Start: start, End: end, Label: Phone, Weak: !strong})
			found = j
			break
		}
		if found < 0 {
			i++ // "ref 12 0812 4181 102": try from the next group
			continue
		}
		i = found + 1
	}
}
