// Package corpus generates a deterministic corpus of OpenAI request
// bodies: sensitive cases (an email, phone number, card, IBAN, US SSN, IP
// address, API key, private key or JWT written in one of many formats and
// encodings, in one of many places of the request, in seven languages) and
// clean near-miss cases (order numbers, timestamps, versions, hashes, ...)
// that must not be taken for sensitive data.
//
// The values are generated (cards pass Luhn with real IIN prefixes, IBANs
// carry correct mod-97 check digits, SSNs avoid the never-issued ranges,
// phone numbers are valid per libphonenumber); nothing is read from files
// or the network, and a seed always gives the same corpus.
package corpus

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"unicode/utf16"

	"github.com/nyaruka/phonenumbers"
)

// Model is the model name every body asks for.
const Model = "hybrid"

// Detector labels.
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

// Case is one request of the corpus.
type Case struct {
	Name      string // unique, e.g. "card/dots/de/tool_call_id/17"
	Sensitive bool   // the request carries a sensitive value
	Detector  string // the label expected (EMAIL, PHONE, ...); "" for clean
	Format    string // how the value is written or encoded ("dots", "base64", ...; the near-miss kind for clean cases)
	Language  string // en, de, fr, es, it, pt, nl
	Place     string // where in the request the value sits (see Places)
	Op        string // OpChat, OpTextCompletion or OpEmbeddings
	Body      []byte // the request JSON, uncompressed; "model" is Model
	Gzip      bool   // send Body gzip-compressed with Content-Encoding: gzip
	// Forbidden are the strings a proprietary upstream must never receive
	// (none for clean cases): first the value as written, then its
	// canonical forms (digits only for cards, SSNs and phones, plus the
	// phone's E.164; the upper-case IBAN without spaces; the plain email
	// address; a PEM key with LF line ends and its first base64 line), and
	// last, for encoded formats (IsEncoded), the blob as it reads in the
	// decoded body: the base64 text, the percent-encoded value, or the
	// \u-escaped text inside the tool arguments or result. Look for them
	// in the decoded strings of the body (Strings, Leaks), not only in its
	// bytes.
	Forbidden []string
}

// Path is the OpenAI path the case is sent to.
func (c Case) Path() string { return OpPath(c.Op) }

// OpPath maps an Op to its OpenAI path.
func OpPath(op string) string {
	switch op {
	case OpTextCompletion:
		return "/v1/completions"
	case OpEmbeddings:
		return "/v1/embeddings"
	}
	return "/v1/chat/completions"
}

// Encoded formats: the value is not in the body as written; the last
// Forbidden entry is the blob that is.
var encodedFormats = map[string]bool{"base64": true, "data-url": true, "percent": true, "json-escape": true}

// IsEncoded reports whether a format hides the value inside an encoded
// blob (base64, data URL, percent-encoding, JSON \u escapes).
func IsEncoded(format string) bool { return encodedFormats[format] }

// encodings applied to every detector, after its own formats.
var encodings = []string{"base64", "data-url", "percent", "url-query", "json-escape", "gzip"}

// Generate returns the corpus for a seed: sensitive cases first, then
// clean ones. The same seed always gives the same cases.
func Generate(seed uint64) []Case {
	items := generate(seed)
	out := make([]Case, len(items))
	for i := range items {
		out[i] = items[i].Case
	}
	return out
}

// item is a case with the value it was built around (as written for
// sensitive cases, the near-miss for clean ones), for the tests.
type item struct {
	Case
	value string
}

type gen struct {
	r        *rand.Rand
	rot      map[string]int
	detPlace map[string]int
	allPlace map[string]int
	items    []item
}

func generate(seed uint64) []item {
	g := &gen{
		r:        rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed)),
		rot:      map[string]int{},
		detPlace: map[string]int{},
		allPlace: map[string]int{},
	}
	for _, d := range detectors {
		g.sensitive(d)
	}
	for _, k := range cleanKinds {
		g.clean(k)
	}
	return g.items
}

// next rotates through n choices under a key.
func (g *gen) next(key string, n int) int {
	i := g.rot[key] % n
	g.rot[key]++
	return i
}

// choosePlace picks, among the places that accept the payload, the one the
// detector has used least (then the least used overall, then at random).
func (g *gen) choosePlace(det string, pl payload) placeDef {
	var best []placeDef
	bd, ba := -1, -1
	for _, p := range places {
		if !p.accepts(pl) {
			continue
		}
		d, a := g.detPlace[det+"|"+p.name], g.allPlace[p.name]
		switch {
		case bd < 0 || d < bd || d == bd && a < ba:
			best, bd, ba = []placeDef{p}, d, a
		case d == bd && a == ba:
			best = append(best, p)
		}
	}
	if best == nil {
		panic(fmt.Sprintf("corpus: no place accepts a %s payload %q", det, pl.value))
	}
	p := pick(g.r, best)
	g.detPlace[det+"|"+p.name]++
	g.allPlace[p.name]++
	return p
}

func (g *gen) add(it item) {
	it.Name = fmt.Sprintf("%s/%s/%s/%s/%d", shortName(it.Detector), it.Format, it.Language, it.Place, len(g.items))
	g.items = append(g.items, it)
}

func shortName(det string) string {
	for _, d := range detectors {
		if d.label == det {
			return d.short
		}
	}
	return "clean"
}

func fill(tpl, noun, v string) string {
	return strings.NewReplacer("{noun}", noun, "{v}", v).Replace(tpl)
}

func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// ---- sensitive cases ----

// rendered is one value in one format.
type rendered struct {
	written string   // the value as written
	snippet string   // written plus what the format puts next to it
	canon   []string // canonical forms
	extra   []string // further strings that must not leak (a PEM body line)
	needCtx bool     // recognisable only next to a context word
}

type detSpec struct {
	label, short, param string
	tech                bool     // prose from the technical templates
	formats             []string // own formats, not encodings
	enc                 map[string][]string
	render              func(g *gen, format, lang string) rendered
}

var detectors = []detSpec{
	{label: CreditCard, short: "card", param: "card_number",
		formats: []string{"plain", "spaces", "two-spaces", "dots", "dashes", "dash-spaced", "fullwidth",
			"zero-width", "soft-hyphen", "adjacent-expiry", "adjacent-count", "adjacent-ref"},
		enc: map[string][]string{
			"base64": {"spaces", "plain", "dashes"}, "data-url": {"spaces", "plain"},
			"percent": {"spaces", "dash-spaced"}, "url-query": {"plain", "dashes", "dots"},
			"json-escape": {"plain", "spaces"},
		},
		render: renderCard},
	{label: IBAN, short: "iban", param: "iban",
		formats: []string{"plain", "lowercase", "grouped", "stray-digit"},
		enc: map[string][]string{
			"base64": {"grouped", "plain"}, "data-url": {"grouped", "plain"}, "percent": {"grouped"},
			"url-query": {"plain", "lowercase"}, "json-escape": {"plain", "grouped"},
		},
		render: renderIBAN},
	{label: USSSN, short: "ssn", param: "ssn",
		formats: []string{"dashed", "bare-context", "spaced-context"},
		enc: map[string][]string{
			"base64": {"dashed"}, "data-url": {"dashed"}, "percent": {"spaced-context"},
			"url-query": {"dashed", "bare-context"}, "json-escape": {"dashed", "bare-context"},
		},
		render: renderSSN},
	{label: Email, short: "email", param: "email",
		formats: []string{"plain", "zero-width", "spelled", "paren-at", "bracket-at"},
		enc:     map[string][]string{},
		render:  renderEmail},
	{label: Phone, short: "phone", param: "phone",
		formats: []string{"e164", "international", "national-context", "national-compact-context"},
		enc: map[string][]string{
			"base64": {"international", "e164", "national-context"}, "data-url": {"international", "e164"},
			"percent": {"international"}, "url-query": {"e164"}, "json-escape": {"e164", "international"},
		},
		render: renderPhone},
	{label: APIKey, short: "apikey", param: "api_key", tech: true,
		formats: []string{"plain", "env-assign"},
		enc:     map[string][]string{"base64": {"plain", "env-assign"}, "data-url": {"env-assign", "plain"}},
		render:  renderAPIKey},
	{label: JWT, short: "jwt", param: "token", tech: true,
		formats: []string{"plain", "bearer"},
		enc:     map[string][]string{"base64": {"bearer", "plain"}, "data-url": {"bearer", "plain"}, "percent": {"bearer"}},
		render:  renderJWT},
	{label: PrivateKey, short: "pkey", param: "private_key", tech: true,
		formats: []string{"plain", "crlf", "literal-newlines"},
		enc:     map[string][]string{"url-query": nil},
		render:  renderPEM},
	{label: IPAddress, short: "ip", param: "ip_address", tech: true,
		formats: []string{"ipv4", "ipv6", "ipv4-port", "ipv6-port"},
		enc: map[string][]string{
			"base64": {"ipv4", "ipv6"}, "data-url": {"ipv4", "ipv6"}, "percent": {"ipv6", "ipv6-port"},
			"url-query": {"ipv4", "ipv6"}, "json-escape": {"ipv4", "ipv6"},
		},
		render: renderIP},
}

// Detectors lists the labels the corpus covers.
func Detectors() []string {
	out := make([]string, len(detectors))
	for i, d := range detectors {
		out[i] = d.label
	}
	return out
}

func (g *gen) sentence(d detSpec, lang string, r rendered) string {
	tpls := customerTemplates[lang]
	if d.tech {
		tpls = techTemplates[lang]
	}
	tpls = append(append([]string{}, tpls...), extraTemplates[d.label][lang]...)
	return fill(pick(g.r, tpls), pick(g.r, nouns[d.label][lang]), r.snippet)
}

// perDetector is about how many cases each detector gets: detectors with
// few formats repeat each format more often.
const perDetector = 140

func (g *gen) sensitive(d detSpec) {
	encReps := map[string]int{}
	encCases := 0
	for _, e := range encodings {
		if bases, ok := d.enc[e]; ok && bases == nil {
			continue // the encoding does not apply
		}
		encReps[e] = 2
		if e == "percent" || e == "url-query" || e == "data-url" {
			encReps[e] = 1 // these fit one or two places only
		}
		encCases += encReps[e] * len(Languages)
	}
	perFormat := len(Languages) * len(d.formats)
	reps := max(2, (perDetector-encCases+perFormat/2)/perFormat)
	for _, f := range d.formats {
		g.sensitiveFormat(d, f, reps)
	}
	for _, e := range encodings {
		if encReps[e] > 0 {
			g.sensitiveFormat(d, e, encReps[e])
		}
	}
}

func (g *gen) sensitiveFormat(d detSpec, format string, reps int) {
	for rep := 0; rep < reps; rep++ {
		for _, lang := range Languages {
			g.sensitiveCase(d, format, lang)
		}
	}
}

func (g *gen) sensitiveCase(d detSpec, format, lang string) {
	base, gz := format, false
	if IsEncoded(format) || format == "url-query" || format == "gzip" {
		bases := d.enc[format]
		if len(bases) == 0 {
			bases = d.formats[:1]
		}
		if format == "gzip" {
			bases = d.formats
		}
		base = bases[g.next(d.short+"/"+format, len(bases))]
		gz = format == "gzip"
	}
	r := d.render(g, base, lang)
	for tries := 0; d.label != CreditCard && luhnSpan(r.snippet) && tries < 100; tries++ {
		r = d.render(g, base, lang) // a card-like span would make it a card too
	}
	forbidden := append([]string{r.written}, r.canon...)
	forbidden = append(forbidden, r.extra...)
	pl := payload{kind: plainPayload, param: d.param}

	switch format {
	case "base64", "data-url":
		blob := base64.StdEncoding.EncodeToString([]byte(g.sentence(d, lang, r)))
		if format == "base64" {
			pl.kind, pl.text = b64Payload, base64Intros[lang]+" "+blob
		} else {
			pl.kind, pl.url = dataURLPayload, "data:text/plain;base64,"+blob
		}
		forbidden = append(forbidden, blob)
	case "percent":
		blob := percentEncode(r.snippet)
		pl.kind, pl.url = urlPayload, imageBase+"?"+d.param+"="+blob
		forbidden = append(forbidden, blob)
	case "url-query":
		if hasSpace(r.snippet) {
			panic("corpus: url-query base with a space: " + d.short + "/" + base)
		}
		pl.kind, pl.url = urlPayload, imageBase+"?"+d.param+"="+r.snippet
	case "json-escape":
		blob := jsonEscapeAll(r.snippet)
		pl.kind, pl.json = jsonPayload, `{"`+d.param+`":"`+blob+`","source":"crm"}`
		forbidden = append(forbidden, blob)
	default:
		pl.text = g.sentence(d, lang, r)
		pl.value = r.snippet
		pl.needCtx = r.needCtx
	}
	p := g.choosePlace(d.label, pl)
	g.add(item{Case: Case{
		Sensitive: true,
		Detector:  d.label,
		Format:    format,
		Language:  lang,
		Place:     p.name,
		Op:        p.op,
		Body:      g.body(p, lang, pl),
		Gzip:      gz,
		Forbidden: dedupe(forbidden),
	}, value: r.written})
}

// percentEncode escapes every byte but RFC 3986's unreserved characters.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// jsonEscapeAll writes s as the inside of a JSON string with every
// character but ASCII letters as a \u escape.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			b.WriteRune(c)
		case c > 0xFFFF:
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, c)
		}
	}
	return b.String()
}

func renderCard(g *gen, f, lang string) rendered {
	d := genCard(g.r)
	gr := cardGroups(d)
	r := rendered{canon: []string{d}}
	switch f {
	case "plain":
		r.written = d
	case "spaces":
		r.written = strings.Join(gr, " ")
	case "two-spaces":
		r.written = strings.Join(gr, "  ")
	case "dots":
		r.written = strings.Join(gr, ".")
	case "dashes":
		r.written = strings.Join(gr, "-")
	case "dash-spaced":
		r.written = strings.Join(gr, " - ")
	case "fullwidth":
		r.written = fullwidth(d)
	case "zero-width":
		r.written = strings.Join(gr, "\u200b")
	case "soft-hyphen":
		r.written = strings.Join(gr, "\u00ad")
	case "adjacent-expiry":
		r.written = strings.Join(gr, " ")
		r.snippet = fmt.Sprintf("%s %02d/%02d", r.written, 1+g.r.IntN(12), 26+g.r.IntN(5))
	case "adjacent-count":
		r.written = d
		r.snippet = fmt.Sprintf("%s %s %d %s", payWord[lang], d, 2+g.r.IntN(4), timesWord[lang])
	case "adjacent-ref":
		r.written = strings.Join(gr, " ")
		r.snippet = fmt.Sprintf("%s %d %s", refWord[lang], 1+g.r.IntN(9), r.written)
	default:
		panic("corpus: card format " + f)
	}
	if r.snippet == "" {
		r.snippet = r.written
	}
	return r
}

func renderIBAN(g *gen, f, lang string) rendered {
	c := ibanCountries[g.next("iban-country", len(ibanCountries))]
	s := genIBAN(g.r, c)
	r := rendered{canon: []string{s}}
	switch f {
	case "plain":
		r.written = s
	case "lowercase":
		r.written = strings.ToLower(s)
	case "grouped":
		r.written = group4(s)
	case "stray-digit":
		r.written = group4(s)
		r.snippet = fmt.Sprintf("%s %d", r.written, 1+g.r.IntN(9))
	default:
		panic("corpus: iban format " + f)
	}
	if r.snippet == "" {
		r.snippet = r.written
	}
	return r
}

func renderSSN(g *gen, f, lang string) rendered {
	d := genSSN(g.r)
	r := rendered{canon: []string{d}}
	switch f {
	case "dashed":
		r.written = d[:3] + "-" + d[3:5] + "-" + d[5:]
	case "bare-context":
		r.written, r.needCtx = d, true
	case "spaced-context":
		r.written, r.needCtx = d[:3]+" "+d[3:5]+" "+d[5:], true
	default:
		panic("corpus: ssn format " + f)
	}
	r.snippet = r.written
	return r
}

func renderEmail(g *gen, f, lang string) rendered {
	e := genEmail(g.r, lang)
	local, domain, _ := strings.Cut(e, "@")
	r := rendered{canon: []string{e}}
	switch f {
	case "plain":
		r.written = e
	case "zero-width":
		label, _, _ := strings.Cut(domain, ".")
		k := 1 + g.r.IntN(len(label))
		if k == len(label) && g.r.IntN(2) == 0 {
			k = 1
		}
		r.written = local + "@" + domain[:k] + "\u200b" + domain[k:]
	case "spelled":
		r.written = strings.ReplaceAll(local, ".", " dot ") + " at " + strings.ReplaceAll(domain, ".", " dot ")
	case "paren-at":
		r.written = local + "(at)" + strings.ReplaceAll(domain, ".", "(dot)")
	case "bracket-at":
		r.written = local + " [at] " + strings.ReplaceAll(domain, ".", " [dot] ")
	default:
		panic("corpus: email format " + f)
	}
	r.snippet = r.written
	return r
}

func renderPhone(g *gen, f, lang string) rendered {
	region := phoneRegions[g.next("phone-region", len(phoneRegions))]
	num := genPhone(g.r, region)
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	var r rendered
	switch f {
	case "e164":
		r.written = e164
	case "international":
		r.written = phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	case "national-context":
		r.written, r.needCtx = phonenumbers.Format(num, phonenumbers.NATIONAL), true
	case "national-compact-context":
		r.written, r.needCtx = digitsOnly(phonenumbers.Format(num, phonenumbers.NATIONAL)), true
	default:
		panic("corpus: phone format " + f)
	}
	r.snippet = r.written
	r.canon = []string{digitsOnly(r.written), e164}
	return r
}

func renderAPIKey(g *gen, f, lang string) rendered {
	k := keyKinds[g.next("key-kind", len(keyKinds))]
	key := k.gen(g.r)
	r := rendered{written: key, snippet: key, canon: []string{key}}
	switch f {
	case "plain":
	case "env-assign":
		r.snippet = k.env + "=" + key
	default:
		panic("corpus: api key format " + f)
	}
	return r
}

func renderJWT(g *gen, f, lang string) rendered {
	t := genJWT(g.r)
	r := rendered{written: t, snippet: t, canon: []string{t}}
	switch f {
	case "plain":
	case "bearer":
		r.snippet = "Authorization: Bearer " + t
	default:
		panic("corpus: jwt format " + f)
	}
	return r
}

func renderPEM(g *gen, f, lang string) rendered {
	pem := genPEM(g.r)
	r := rendered{canon: []string{pem}, extra: []string{pemFirstLine(pem)}}
	switch f {
	case "plain":
		r.written = pem
	case "crlf":
		r.written = strings.ReplaceAll(pem, "\n", "\r\n")
	case "literal-newlines":
		r.written = strings.ReplaceAll(pem, "\n", `\n`)
	default:
		panic("corpus: private key format " + f)
	}
	r.snippet = r.written
	return r
}

func renderIP(g *gen, f, lang string) rendered {
	var r rendered
	port := pick(g.r, []int{22, 443, 3306, 5432, 6379, 8080, 8443, 9200})
	switch f {
	case "ipv4":
		r.written = genIPv4(g.r)
	case "ipv6":
		r.written = genIPv6(g.r)
	case "ipv4-port":
		r.written = genIPv4(g.r)
		r.snippet = fmt.Sprintf("%s:%d", r.written, port)
	case "ipv6-port":
		r.written = genIPv6(g.r)
		r.snippet = fmt.Sprintf("[%s]:%d", r.written, port)
	default:
		panic("corpus: ip format " + f)
	}
	if r.snippet == "" {
		r.snippet = r.written
	}
	r.canon = []string{r.written}
	return r
}

// ---- JSON Lines ----

type jsonlCase struct {
	Name      string          `json:"name"`
	Sensitive bool            `json:"sensitive"`
	Detector  string          `json:"detector"`
	Format    string          `json:"format"`
	Language  string          `json:"language"`
	Place     string          `json:"place"`
	Op        string          `json:"op"`
	Path      string          `json:"path"`
	Gzip      bool            `json:"gzip"`
	Forbidden []string        `json:"forbidden"`
	Body      json.RawMessage `json:"body"`
}

// WriteJSONL writes one JSON object per case and line, the body inline.
func WriteJSONL(w io.Writer, cases []Case) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	for _, c := range cases {
		f := c.Forbidden
		if f == nil {
			f = []string{}
		}
		if err := e.Encode(jsonlCase{c.Name, c.Sensitive, c.Detector, c.Format, c.Language, c.Place,
			c.Op, c.Path(), c.Gzip, f, json.RawMessage(c.Body)}); err != nil {
			return err
		}
	}
	return nil
}
