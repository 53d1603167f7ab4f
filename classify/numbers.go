package classify

import (
	"strings"
)

// Numbers
//
// Cards, US social security numbers and phone numbers are digits in
// groups. The number scanner finds runs of digit groups joined by
// separators (spaces, several spaces, dots, dashes with or without spaces
// around them, slashes, parentheses) and folds the separators: each
// detector then reads the run's digits group by group. A value is tried at
// every window of whole groups, so a neighbouring number, a date or a
// reference ("4111 1111 1111 1111 12/27", "ref 1 4111…") never hides it.

type group struct{ start, end int } // a maximal run of ASCII digits

// numberRun is digit groups joined by separators.
type numberRun struct {
	start, end int // the run's bytes, with a leading '+' or '('
	plus       bool
	// A letter touches the run's start or end: part of a word or an id.
	gluedLeft, gluedRight bool
	groups                []group
}

const maxGroupsPerRun = 64

func isSep(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')' || c == '_' || c == ',' || c == '|'
}

// numberRuns finds the runs of digit groups with at least minDigits digits.
func numberRuns(t string, minDigits int, yield func(*numberRun)) {
	var r numberRun
	var groups []group // allocated at the first digit: most texts have none
	for i := 0; i < len(t); {
		if !isDigit(t[i]) {
			i++
			continue
		}
		if groups == nil {
			groups = make([]group, 0, 8)
		}
		r = numberRun{start: i, groups: groups[:0]}
		if i > 0 && t[i-1] == '(' {
			r.start = i - 1
			if i > 1 && t[i-2] == '+' {
				r.start, r.plus = i-2, true
			}
		} else if i > 0 && t[i-1] == '+' {
			r.start, r.plus = i-1, true
		}
		if r.start > 0 && isLetter(t[r.start-1]) {
			r.gluedLeft = true
		}
		digits := 0
		for {
			s := i
			for i < len(t) && isDigit(t[i]) {
				i++
			}
			digits += i - s
			if len(r.groups) < maxGroupsPerRun {
				r.groups = append(r.groups, group{s, i})
			}
			r.end = i
			// A separator: up to four bytes with at most two punctuation
			// marks ("-", " - ", ") ", "  ", "/").
			j, punct := i, 0
			for j < len(t) && j-i < 4 && isSep(t[j]) {
				if t[j] != ' ' && t[j] != '\t' && t[j] != '\n' && t[j] != '\r' {
					punct++
				}
				j++
			}
			if j == i || j == len(t) || !isDigit(t[j]) || punct > 2 || len(r.groups) == maxGroupsPerRun {
				break
			}
			i = j
		}
		if i < len(t) && t[i] == ')' {
			r.end = i + 1
		}
		if i < len(t) && isLetter(t[i]) {
			r.gluedRight = true
		}
		groups = r.groups[:0] // keep what append grew
		if digits >= minDigits {
			yield(&r)
		}
	}
}

// digitsOf appends the digits of groups[i..j] to buf.
func digitsOf(t string, gs []group, buf []byte) []byte {
	for _, g := range gs {
		buf = append(buf, t[g.start:g.end]...)
	}
	return buf
}

// scanNumbers reports cards, SSNs and phones in t.
func (c *Classifier) scanNumbers(t, hint string, add func(Span)) {
	var buf [64]byte
	phoneBudget := maxPhoneParses
	numberRuns(t, 7, func(r *numberRun) {
		strong := false
		gs := r.groups
		// Cards: every window of whole groups with 13 to 19 digits.
		for i := range gs {
			n := 0
			for j := i; j < len(gs); j++ {
				n += gs[j].end - gs[j].start
				if n > 19 {
					break
				}
				if n < 13 {
					continue
				}
				d := digitsOf(t, gs[i:j+1], buf[:0])
				if !cardPrefix(d) {
					continue
				}
				shaped := i == j || cardGroups(gs[i:j+1])
				// Thirteen digits are an EAN barcode more often than one
				// of the few 13-digit Visa cards still out there.
				if n == 13 && !hasContext(t, gs[i].start, gs[j].end, cardProse) {
					shaped = false
				}
				// Glued to a word, or after a "+": a phone, an id.
				edgeGlued := (i == 0 && (r.gluedLeft || r.plus)) || (j == len(gs)-1 && r.gluedRight)
				switch {
				case luhn(d) && shaped && !edgeGlued:
					add(Span{Start: gs[i].start, End: gs[j].end, Label: CreditCard})
					strong = true
				default:
					// A look-alike: a checksum off by a digit, odd
					// grouping, or glued to a word.
					add(Span{Start: gs[i].start, End: gs[j].end, Label: CreditCard, Weak: true})
				}
			}
		}
		// A card glued to other digits in one long group: the group is
		// one weak signal (a long group of random digits holds a
		// Luhn-valid window almost surely, so more would say nothing).
		for _, g := range gs {
			if n := g.end - g.start; n <= 19 || n > 64 {
				continue
			}
			if longGroupCard(t[g.start:g.end]) {
				add(Span{Start: g.start, End: g.end, Label: CreditCard, Weak: true})
			}
		}
		// US SSNs: 3-2-4 digits, or nine digits in one group.
		{
			for i := range gs {
				var end, n int
				dashed := false
				switch {
				case gs[i].end-gs[i].start == 9:
					end, n = i, 9
				case i+2 < len(gs) && gs[i].end-gs[i].start == 3 && gs[i+1].end-gs[i+1].start == 2 && gs[i+2].end-gs[i+2].start == 4:
					end, n = i+2, 9
					dashed = t[gs[i].end:gs[i+1].start] == "-" && t[gs[i+1].end:gs[i+2].start] == "-"
				case i+2 < len(gs) && gs[i].end-gs[i].start == 3 && gs[i+1].end-gs[i+1].start == 3 && gs[i+2].end-gs[i+2].start == 3:
					end, n = i+2, 9 // 372 194 410: an SSN only where the context says so
				default:
					continue
				}
				if (i == 0 && r.gluedLeft) || (end == len(gs)-1 && r.gluedRight) {
					continue // part of a word or an id: W2123456789
				}
				d := digitsOf(t, gs[i:end+1], buf[:0])
				s, e := gs[i].start, gs[end].end
				if n != 9 || !(ssnValid(d) || (itinValid(d) && hasContext(t, s, e, itinWords))) {
					continue
				}
				switch {
				case dashed || hasContext(t, s, e, ssnWords) || containsWord(hint, ssnWords):
					add(Span{Start: s, End: e, Label: USSSN})
					strong = true
				default:
					add(Span{Start: s, End: e, Label: USSSN, Weak: true})
				}
			}
		}
		if !strong {
			c.phones.scan(t, hint, r, &phoneBudget, add)
		}
	})
}

// longGroupCard reports a card-like window inside a long digit group.
func longGroupCard(d string) bool {
	for s := 0; s+13 <= len(d); s++ {
		for l := 13; l <= 19 && s+l <= len(d); l++ {
			if w := []byte(d[s : s+l]); cardPrefix(w) && luhn(w) {
				return true
			}
		}
	}
	return false
}

// cardPrefix accepts the issuer prefixes of the card networks: Visa 4,
// Mastercard 51-55 and 2221-2720, Amex 34/37, Diners 30/36/38/39, JCB 35,
// Discover, UnionPay, Maestro, RuPay and Mir 5 and 6, Mir 2200-2204.
func cardPrefix(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	switch d[0] {
	case '4', '5', '6':
		return true
	case '3':
		return d[1] == '0' || (d[1] >= '4' && d[1] <= '9')
	case '2':
		return d[1] >= '2' && d[1] <= '7'
	}
	return false
}

// cardGroups reports whether groups look like a printed card: 3 to 6
// digits each (4-4-4-4, 4-6-5, 4-4-4-4-3).
func cardGroups(gs []group) bool {
	for _, g := range gs {
		if n := g.end - g.start; n < 3 || n > 6 {
			return false
		}
	}
	return true
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
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

// ssnValid rejects numbers the SSA never issues: area 000, 666 or 9xx,
// group 00, serial 0000. d is nine digits.
func ssnValid(d []byte) bool {
	area, grp, serial := string(d[0:3]), string(d[3:5]), string(d[5:9])
	return area != "000" && area != "666" && area[0] != '9' && grp != "00" && serial != "0000"
}

// itinValid accepts an IRS individual taxpayer number: area 9xx and a
// group of 50-65, 70-88, 90-92 or 94-99.
func itinValid(d []byte) bool {
	g := int(d[3]-'0')*10 + int(d[4]-'0')
	return d[0] == '9' && ((g >= 50 && g <= 65) || (g >= 70 && g <= 88) || (g >= 90 && g <= 92) || g >= 94)
}

var itinWords = []string{"itin", "taxpayer", "tax id", "tin"}

// cardProse are the words that make a 13-digit number a card.
var cardProse = []string{"card", "visa", "credit", "debit", "karte", "carte", "tarjeta", "carta", "cartão", "cartao", "kaart", "pan"}

// Words that say a nine-digit number is a US social security number, in
// the languages of the corpus. Matched at word starts, case-insensitively.
var ssnWords = []string{
	"ssn", "ss#", "ss no", "ss number", "social", "social security", "social-security", "soc sec", "soc. sec", "taxpayer", "tax id", "tin", "itin",
	"sozialversicherung", "sécurité sociale", "securite sociale", "seguro social", "seguridad social",
	"previdenza sociale", "sicurezza sociale", "segurança social", "seguranca social", "seguridade social",
	"sociale zekerheid", "burgerservicenummer", "numéro de sécu",
}

// Words that say a number is a phone number.
var phoneWords = []string{
	"phone", "tel", "tél", "telp", "call", "mobile", "cell", "cel", "whatsapp", "wa", "hp", "sms", "fax", "reach me", "text me",
	"contact", "telefon", "handy", "rufnummer", "anruf", "ruf ", "téléphone", "telephone", "portable", "appel", "rappel", "joindre",
	"teléfono", "telefono", "móvil", "movil", "celular", "llam", "lläm", "llám", "cellulare", "chiam", "telemóvel", "telemovel", "ligue",
	"nomor", "zadzwo", "komórk", "numer tel",
	"ligar", "telefoon", "mobiel", "bel ", "bellen", "gsm", "my number", "our number", "his number", "her number",
	"number to reach", "meine nummer", "mon numéro", "mi número", "il mio numero", "o meu número", "mijn nummer",
}

// phoneKeyWords say, in a JSON key, that its value is a phone number. A
// key is terser than prose, so the prose words that also name other
// things ("call" in tool_call_id) are left out.
var phoneKeyWords = []string{"phone", "tel", "telephone", "mobile", "cell", "fax", "whatsapp", "msisdn", "sms", "telefon",
	"handy", "téléphone", "portable", "teléfono", "telefono", "móvil", "movil", "celular", "cellulare", "telemóvel", "telefoon", "mobiel", "gsm"}

// contextBefore and contextAfter are how far hasContext looks, in bytes.
const (
	contextBefore = 48
	contextAfter  = 24
)

// hasContext reports whether one of words starts a word near t[s:e];
// words of four letters or fewer must be whole words ("tel", not "tell").
func hasContext(t string, s, e int, words []string) bool {
	lo, hi := max(s-contextBefore, 0), min(e+contextAfter, len(t))
	return proseWord(strings.ToLower(t[lo:s]), words) || proseWord(strings.ToLower(t[e:hi]), words)
}

// proseWord is containsWord for prose: a word glued to an identifier by
// "_" ("call_1720474574") is part of the identifier, not a context word.
func proseWord(w string, words []string) bool { return findWord(w, words, isIdent) }

func isIdent(c byte) bool { return isAlnum(c) || c == '_' }

// containsWord reports whether one of words starts a word of w (after a
// non-letter: "customer_ssn" holds "ssn"); a word of four letters or fewer
// must end there too.
func containsWord(w string, words []string) bool { return findWord(w, words, isLetter) }

// findWord reports whether one of words occurs in w with no inWord byte
// before it (and, for words of four letters or fewer, none after it).
func findWord(w string, words []string, inWord func(byte) bool) bool {
	for _, k := range words {
		for off := 0; ; {
			i := strings.Index(w[off:], k)
			if i < 0 {
				break
			}
			i += off
			end := i + len(k)
			if (i == 0 || !inWord(w[i-1])) && (len(k) > 4 || end == len(w) || !inWord(w[end])) {
				return true
			}
			off = i + 1
		}
	}
	return false
}
