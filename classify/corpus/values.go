package corpus

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// This file generates valid values of each kind and holds the checks the
// tests use (Luhn, mod-97, SSA ranges).

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	alnumDash = alnum + "-_"
	upperNum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	base32    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	hexDigits = "0123456789abcdef"
	letters   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func randFrom(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

func randDigits(r *rand.Rand, n int) string { return randFrom(r, "0123456789", n) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// ---- cards ----

type cardBrand struct {
	name     string
	prefixes func(r *rand.Rand) string
	lengths  []int
}

var cardBrands = []cardBrand{
	{"visa", func(r *rand.Rand) string { return "4" }, []int{16, 16, 16, 19}},
	{"mastercard", func(r *rand.Rand) string {
		if r.IntN(2) == 0 {
			return strconv.Itoa(51 + r.IntN(5))
		}
		return strconv.Itoa(2221 + r.IntN(2720-2221+1))
	}, []int{16}},
	{"amex", func(r *rand.Rand) string { return pick(r, []string{"34", "37"}) }, []int{15}},
	{"discover", func(r *rand.Rand) string { return pick(r, []string{"6011", "65", "644", "649"}) }, []int{16, 16, 19}},
	{"jcb", func(r *rand.Rand) string { return strconv.Itoa(3528 + r.IntN(3589-3528+1)) }, []int{16}},
}

// luhnCheckDigit returns the digit that makes body+digit pass Luhn.
func luhnCheckDigit(body string) byte {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		v := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 { // doubled: the check digit will sit right of it
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// Luhn reports whether the ASCII digit string passes the Luhn check.
func Luhn(d string) bool {
	if d == "" {
		return false
	}
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		c := d[i]
		if c < '0' || c > '9' {
			return false
		}
		v := int(c - '0')
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

// CardBrand names the brand whose IIN range and length d fits, or "".
func CardBrand(d string) string {
	n := len(d)
	p := func(k int) int {
		if len(d) < k {
			return -1
		}
		v, _ := strconv.Atoi(d[:k])
		return v
	}
	switch {
	case d[0] == '4' && (n == 13 || n == 16 || n == 19):
		return "visa"
	case (p(2) >= 51 && p(2) <= 55 || p(4) >= 2221 && p(4) <= 2720) && n == 16:
		return "mastercard"
	case (p(2) == 34 || p(2) == 37) && n == 15:
		return "amex"
	case (p(4) == 6011 || p(2) == 65 || p(3) >= 644 && p(3) <= 649) && (n == 16 || n == 19):
		return "discover"
	case p(4) >= 3528 && p(4) <= 3589 && n >= 16 && n <= 19:
		return "jcb"
	}
	return ""
}

func genCard(r *rand.Rand) string {
	b := pick(r, cardBrands)
	n := pick(r, b.lengths)
	body := b.prefixes(r)
	body += randDigits(r, n-1-len(body))
	return body + string(luhnCheckDigit(body))
}

// cardGroups splits a card number as it is printed: 4-6-5 for 15 digits,
// fours otherwise.
func cardGroups(d string) []string {
	var sizes []int
	switch len(d) {
	case 15:
		sizes = []int{4, 6, 5}
	case 14:
		sizes = []int{4, 6, 4}
	default:
		for i := 0; i < len(d); i += 4 {
			sizes = append(sizes, min(4, len(d)-i))
		}
	}
	var out []string
	i := 0
	for _, s := range sizes {
		out = append(out, d[i:i+s])
		i += s
	}
	return out
}

func fullwidth(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(0xFF10 + (c - '0'))
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ---- IBAN ----

// ibanCountry describes the BBAN as a sequence of (kind, count): n digits,
// a upper-case letters, c upper-case alphanumerics.
type ibanCountry struct {
	code   string
	length int
	bban   string // e.g. "18n", "4a14n"
	banks  []string
}

var ibanCountries = []ibanCountry{
	{"DE", 22, "18n", nil},
	{"FR", 27, "10n11n2n", nil},
	{"GB", 22, "4a14n", []string{"NWBK", "BARC", "LOYD", "HBUK", "MIDL"}},
	{"ES", 24, "20n", nil},
	{"IT", 27, "1a10n12n", nil},
	{"NL", 18, "4a10n", []string{"ABNA", "INGB", "RABO", "TRIO", "SNSB", "ASNB"}},
	{"BE", 16, "12n", nil},
	{"AT", 20, "16n", nil},
	{"CH", 21, "5n12n", nil},
	{"PL", 28, "24n", nil},
	{"PT", 25, "21n", nil},
	{"IE", 22, "4a14n", []string{"AIBK", "BOFI"}},
}

// IBANLengths is the length of an IBAN per country code.
var IBANLengths = func() map[string]int {
	m := map[string]int{}
	for _, c := range ibanCountries {
		m[c.code] = c.length
	}
	return m
}()

func ibanMod97(s string) int {
	r := s[4:] + s[:4]
	rem := 0
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return -1
		}
	}
	return rem
}

// IBANValid checks the country length and the mod-97 checksum of an
// upper-case IBAN without spaces.
func IBANValid(s string) bool {
	if len(s) < 5 || IBANLengths[s[:2]] != len(s) {
		return false
	}
	return ibanMod97(s) == 1
}

func genBBAN(r *rand.Rand, c ibanCountry) string {
	var b strings.Builder
	spec := c.bban
	first := true
	for spec != "" {
		i := 0
		for spec[i] >= '0' && spec[i] <= '9' {
			i++
		}
		n, _ := strconv.Atoi(spec[:i])
		kind := spec[i]
		spec = spec[i+1:]
		switch {
		case kind == 'a' && first && c.banks != nil && n == 4:
			b.WriteString(pick(r, c.banks))
		case kind == 'a':
			b.WriteString(randFrom(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", n))
		default:
			b.WriteString(randDigits(r, n))
		}
		first = false
	}
	return b.String()
}

func ibanWithCheck(code, bban string) string {
	rem := ibanMod97(code + "00" + bban)
	return fmt.Sprintf("%s%02d%s", code, 98-rem, bban)
}

func genIBAN(r *rand.Rand, c ibanCountry) string {
	return ibanWithCheck(c.code, genBBAN(r, c))
}

// genBadIBAN returns an IBAN-shaped string whose check digits are wrong.
func genBadIBAN(r *rand.Rand, c ibanCountry) string {
	good := genIBAN(r, c)
	for {
		cd := fmt.Sprintf("%02d", 2+r.IntN(97))
		bad := good[:2] + cd + good[4:]
		if bad != good && ibanMod97(bad) != 1 {
			return bad
		}
	}
}

func group4(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:min(i+4, len(s))])
	}
	return strings.Join(parts, " ")
}

// ---- SSN ----

// SSNValid reports whether 9 digits are outside the SSA's never-issued
// ranges: area 000, 666, 900-999; group 00; serial 0000.
func SSNValid(d string) bool {
	if len(d) != 9 {
		return false
	}
	for i := 0; i < 9; i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

func genSSN(r *rand.Rand) string {
	for {
		area := 1 + r.IntN(899)
		if area == 666 {
			continue
		}
		return fmt.Sprintf("%03d%02d%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
	}
}

// genBadSSN returns an SSN-shaped number in a range the SSA never issues
// (and not an ITIN: 9xx areas get groups below 50).
func genBadSSN(r *rand.Rand) string {
	area := fmt.Sprintf("%03d", 1+r.IntN(899))
	group := fmt.Sprintf("%02d", 1+r.IntN(99))
	serial := fmt.Sprintf("%04d", 1+r.IntN(9999))
	switch r.IntN(5) {
	case 0:
		area = "000"
	case 1:
		area = "666"
	case 2:
		area = fmt.Sprintf("9%02d", r.IntN(100))
		group = fmt.Sprintf("%02d", 1+r.IntN(49))
	case 3:
		group = "00"
	case 4:
		serial = "0000"
	}
	return area + "-" + group + "-" + serial
}

// ---- phones ----

var phoneRegions = []string{"US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "ID", "BR"}

// genPhone derives a number from the region's example number by
// randomising its trailing digits until libphonenumber calls it valid for
// that region.
func genPhone(r *rand.Rand, region string) *phonenumbers.PhoneNumber {
	types := []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE}
	for attempt := 0; ; attempt++ {
		ex := phonenumbers.GetExampleNumberForType(region, types[r.IntN(2)])
		if ex == nil {
			continue
		}
		nsn := phonenumbers.GetNationalSignificantNumber(ex)
		// Vary the prefix too (area code, mobile range) at first; fall
		// back to the subscriber digits where that rarely gives a valid
		// number.
		k := len(nsn) - 1
		if attempt > 100 {
			k = len(nsn) - 3
		}
		if attempt > 300 {
			k = min(k, 4)
		}
		b := []byte(nsn)
		for i := len(b) - k; i < len(b); i++ {
			b[i] = byte('0' + r.IntN(10))
		}
		num, err := phonenumbers.Parse(fmt.Sprintf("+%d%s", ex.GetCountryCode(), b), "")
		if err != nil {
			continue
		}
		if phonenumbers.IsValidNumber(num) && phonenumbers.GetRegionCodeForNumber(num) == region {
			return num
		}
	}
}

// PhoneValid parses an E.164 number and asks libphonenumber.
func PhoneValid(e164 string) bool {
	num, err := phonenumbers.Parse(e164, "")
	return err == nil && phonenumbers.IsValidNumber(num)
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ---- emails ----

var firstNames = map[string][]string{
	"en": {"james", "emily", "oliver", "sophie", "jack", "grace", "harry", "chloe"},
	"de": {"lukas", "anna", "jonas", "lena", "felix", "marie", "paul", "sophia"},
	"fr": {"louis", "camille", "hugo", "chloe", "jules", "manon", "arthur", "lea"},
	"es": {"hugo", "lucia", "mateo", "sofia", "pablo", "martina", "alvaro", "paula"},
	"it": {"leonardo", "giulia", "francesco", "aurora", "lorenzo", "chiara", "matteo", "sara"},
	"pt": {"joao", "beatriz", "rodrigo", "mariana", "tiago", "ines", "duarte", "leonor"},
	"nl": {"daan", "emma", "sem", "julia", "lucas", "tess", "milan", "sanne"},
}

var lastNames = map[string][]string{
	"en": {"smith", "johnson", "walker", "harris", "clarke", "turner", "wright", "hughes"},
	"de": {"mueller", "schmidt", "schneider", "fischer", "weber", "wagner", "becker", "hoffmann"},
	"fr": {"martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand"},
	"es": {"garcia", "fernandez", "gonzalez", "rodriguez", "lopez", "martinez", "sanchez", "perez"},
	"it": {"rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci"},
	"pt": {"silva", "santos", "ferreira", "pereira", "oliveira", "costa", "rodrigues", "martins"},
	"nl": {"devries", "jansen", "bakker", "visser", "smit", "meijer", "mulder", "bos"},
}

var mailDomains = map[string][]string{
	"en": {"northbank.com", "acme-corp.co.uk", "mailbox.org", "lloyds-mail.co.uk", "example-health.com"},
	"de": {"bank.de", "sparkasse-mail.de", "firma.de", "posteo.de", "stadtwerke-nord.de"},
	"fr": {"banque.fr", "orange-pro.fr", "societe.fr", "laposte.net", "mutuelle-sud.fr"},
	"es": {"banco.es", "empresa.es", "correo-pro.es", "telefonica-mail.es", "clinica-norte.es"},
	"it": {"banca.it", "azienda.it", "posta-pro.it", "libero-mail.it", "studio-legale.it"},
	"pt": {"banco.pt", "empresa.pt", "sapo-mail.pt", "correio.pt", "clinica-lisboa.pt"},
	"nl": {"bank.nl", "bedrijf.nl", "ziggo-mail.nl", "kpn-mail.nl", "gemeente-west.nl"},
}

func genEmail(r *rand.Rand, lang string) string {
	f, l := pick(r, firstNames[lang]), pick(r, lastNames[lang])
	var local string
	switch r.IntN(5) {
	case 0:
		local = f + "." + l
	case 1:
		local = f[:1] + "." + l
	case 2:
		local = f + "_" + l + strconv.Itoa(10+r.IntN(90))
	case 3:
		local = l + "." + f
	default:
		local = f + l + strconv.Itoa(1+r.IntN(9))
	}
	return local + "@" + pick(r, mailDomains[lang])
}

// ---- API keys ----

type keyKind struct {
	env string
	gen func(r *rand.Rand) string
}

var keyKinds = []keyKind{
	{"OPENAI_API_KEY", func(r *rand.Rand) string {
		return "sk-proj-" + randFrom(r, alnumDash, 74) + "T3BlbkFJ" + randFrom(r, alnumDash, 74)
	}},
	{"OPENAI_API_KEY", func(r *rand.Rand) string {
		return "sk-" + randFrom(r, alnum, 20) + "T3BlbkFJ" + randFrom(r, alnum, 20)
	}},
	{"ANTHROPIC_API_KEY", func(r *rand.Rand) string {
		return "sk-ant-api03-" + randFrom(r, alnumDash, 93) + "AA"
	}},
	{"AWS_ACCESS_KEY_ID", func(r *rand.Rand) string { return "AKIA" + randFrom(r, base32, 16) }},
	{"GITHUB_TOKEN", func(r *rand.Rand) string { return "ghp_" + randFrom(r, alnum, 36) }},
	{"GITHUB_TOKEN", func(r *rand.Rand) string {
		return "github_pat_11" + randFrom(r, upperNum, 20) + "_" + randFrom(r, alnum, 59)
	}},
	{"SLACK_BOT_TOKEN", func(r *rand.Rand) string {
		return "xoxb-" + randDigits(r, 11) + "-" + randDigits(r, 13) + "-" + randFrom(r, alnum, 24)
	}},
	{"GOOGLE_API_KEY", func(r *rand.Rand) string { return "AIza" + randFrom(r, alnumDash, 35) }},
	{"GITLAB_TOKEN", func(r *rand.Rand) string { return "glpat-" + randFrom(r, alnumDash, 20) }},
	{"HF_TOKEN", func(r *rand.Rand) string { return "hf_" + randFrom(r, letters, 34) }},
	{"STRIPE_SECRET_KEY", func(r *rand.Rand) string { return "sk_live_51" + randFrom(r, alnum, 97) }},
}

// KeyPrefixes are the prefixes generated API keys start with.
var KeyPrefixes = []string{"sk-proj-", "sk-ant-api03-", "sk-", "AKIA", "ghp_", "github_pat_", "xoxb-", "AIza", "glpat-", "hf_", "sk_live_"}

// ---- JWT ----

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func genJWT(r *rand.Rand) string {
	alg, sig := "HS256", 32
	switch r.IntN(3) {
	case 1:
		alg, sig = "RS256", 256
	case 2:
		alg, sig = "ES256", 64
	}
	var header string
	if r.IntN(2) == 0 {
		header = `{"alg":"` + alg + `","typ":"JWT"}`
	} else {
		header = `{"alg":"` + alg + `","kid":"` + randFrom(r, alnum, 16) + `","typ":"JWT"}`
	}
	iat := 1700000000 + r.IntN(60000000)
	payload := fmt.Sprintf(`{"sub":"%d","iat":%d,"exp":%d,"iss":"https://auth.%s.example","scope":"%s"}`,
		100000+r.IntN(9000000), iat, iat+3600*(1+r.IntN(24)),
		pick(r, []string{"acme", "northwind", "contoso", "initech"}),
		pick(r, []string{"read write", "openid profile", "payments:read", "admin"}))
	s := make([]byte, sig)
	for i := range s {
		s[i] = byte(r.IntN(256))
	}
	return b64url([]byte(header)) + "." + b64url([]byte(payload)) + "." + b64url(s)
}

// ---- PEM private keys ----

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func be32(n int) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

func sshString(s []byte) []byte { return append(be32(len(s)), s...) }

// genPEM returns a PEM private key block (LF line ends) whose DER or
// OpenSSH structure starts as real ones do, the rest random.
func genPEM(r *rand.Rand) string {
	var label string
	var der []byte
	width := 64
	switch r.IntN(4) {
	case 0:
		label = "RSA PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00}, randBytes(r, 1180)...)
	case 1:
		label = "PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
			0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x82, 0x04, 0xa7}, randBytes(r, 1191)...)
	case 2:
		label = "EC PRIVATE KEY"
		der = append([]byte{0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20}, randBytes(r, 32)...)
		der = append(der, 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
			0xa1, 0x44, 0x03, 0x42, 0x00, 0x04)
		der = append(der, randBytes(r, 64)...)
	default:
		label = "OPENSSH PRIVATE KEY"
		width = 70
		pub := randBytes(r, 32)
		pubBlob := append(sshString([]byte("ssh-ed25519")), sshString(pub)...)
		der = append([]byte("openssh-key-v1\x00"), sshString([]byte("none"))...)
		der = append(der, sshString([]byte("none"))...)
		der = append(der, sshString(nil)...)
		der = append(der, be32(1)...)
		der = append(der, sshString(pubBlob)...)
		check := randBytes(r, 4)
		priv := append(append([]byte{}, check...), check...)
		priv = append(priv, pubBlob...)
		priv = append(priv, sshString(append(randBytes(r, 32), pub...))...)
		priv = append(priv, sshString([]byte("user@laptop"))...)
		priv = append(priv, 1, 2, 3, 4, 5)
		der = append(der, sshString(priv)...)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----\n")
	for i := 0; i < len(b64); i += width {
		b.WriteString(b64[i:min(i+width, len(b64))])
		b.WriteByte('\n')
	}
	b.WriteString("-----END " + label + "-----")
	return b.String()
}

// pemFirstLine is the first base64 line of a PEM block.
func pemFirstLine(pem string) string {
	lines := strings.Split(pem, "\n")
	return lines[1]
}

// ---- IP addresses ----

func genIPv4(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
	case 1:
		return fmt.Sprintf("192.168.%d.%d", r.IntN(256), 1+r.IntN(254))
	case 2:
		return fmt.Sprintf("172.%d.%d.%d", 16+r.IntN(16), r.IntN(256), 1+r.IntN(254))
	}
	for {
		a := 11 + r.IntN(212)
		if a == 127 || a == 100 || a == 169 || a == 172 || a == 192 {
			continue
		}
		return fmt.Sprintf("%d.%d.%d.%d", a, r.IntN(256), r.IntN(256), 1+r.IntN(254))
	}
}

func genIPv6(r *rand.Rand) string {
	prefixes := [][]uint16{{0x2a02}, {0x2001, 0x41d0}, {0x2600, 0x1f18}, {0x2a01, 0x4f8}, {0x2606, 0x4700}, {0x2a00, 0x1450}}
	p := pick(r, prefixes)
	var b [16]byte
	i := 0
	for _, w := range p {
		b[i], b[i+1] = byte(w>>8), byte(w)
		i += 2
	}
	zeroRun := r.IntN(3) // produce compressible zero groups sometimes
	for ; i < 16; i += 2 {
		if zeroRun > 0 && i >= 8 && i < 8+2*zeroRun {
			continue
		}
		w := r.IntN(0x10000)
		b[i], b[i+1] = byte(w>>8), byte(w)
	}
	return netip.AddrFrom16(b).String()
}

// luhnSpan reports whether s holds a card-like digit span: one or more
// digit groups joined by single spaces, dashes or dots, 13 to 19 digits in
// all, not starting with 0, that passes Luhn. Near-misses must not hold
// one, nor may values of other kinds (an IBAN's groups), so that each
// case has one expected label.
func luhnSpan(s string) bool {
	// groups[i] is a run of digits; joined[i] says whether it is joined
	// to the run before it by a single separator.
	var groups []string
	var joined []bool
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		join := len(groups) > 0 && i >= 2 && strings.IndexByte(" -.", s[i-1]) >= 0 &&
			s[i-2] >= '0' && s[i-2] <= '9'
		groups = append(groups, s[i:j])
		joined = append(joined, join)
		i = j
	}
	for a := range groups {
		d := ""
		for b := a; b < len(groups); b++ {
			if b > a && !joined[b] {
				break
			}
			d += groups[b]
			if len(d) > 19 {
				break
			}
			if len(d) >= 13 && d[0] != '0' && Luhn(d) {
				return true
			}
		}
	}
	return false
}
