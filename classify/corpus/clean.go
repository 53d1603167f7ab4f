package corpus

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// cleanKind is one kind of near-miss: a value that looks like sensitive
// data and is not.
type cleanKind struct {
	format string // Case.Format
	noun   string // key of cleanNouns; "" for prose that stands alone
	gen    func(g *gen, lang string) string
}

var cleanKinds = []cleanKind{
	{"order-number", "order", func(g *gen, lang string) string { return cleanDigits(g, 6+g.r.IntN(19)) }},
	{"invoice-number", "invoice", func(g *gen, lang string) string {
		if g.r.IntN(2) == 0 {
			return fmt.Sprintf("%s-%d-%s", pick(g.r, []string{"INV", "RE", "FA", "FAC", "FT"}), 2019+g.r.IntN(8), randDigits(g.r, 5+g.r.IntN(4)))
		}
		return cleanDigits(g, 6+g.r.IntN(19))
	}},
	{"tracking-number", "tracking", func(g *gen, lang string) string {
		switch g.r.IntN(3) {
		case 0:
			return "1Z" + randFrom(g.r, upperNum, 16)
		case 1:
			return "JJD" + cleanDigits(g, 18)
		}
		return cleanDigits(g, 10+g.r.IntN(13))
	}},
	{"card-luhn-fail", "loyalty", func(g *gen, lang string) string {
		d := genCard(g.r)
		last := d[len(d)-1] - '0'
		d = d[:len(d)-1] + strconv.Itoa(int(last+1+uint8(g.r.IntN(9)))%10)
		switch g.r.IntN(3) {
		case 0:
			return strings.Join(cardGroups(d), " ")
		case 1:
			return strings.Join(cardGroups(d), "-")
		}
		return d
	}},
	{"iban-bad-check", "iban", func(g *gen, lang string) string {
		s := genBadIBAN(g.r, ibanCountries[g.next("clean-iban", len(ibanCountries))])
		if g.r.IntN(2) == 0 {
			return group4(s)
		}
		return s
	}},
	{"timestamp-iso", "timestamp", func(g *gen, lang string) string {
		t := randTime(g)
		switch g.r.IntN(3) {
		case 0:
			return t.UTC().Format(time.RFC3339)
		case 1:
			return t.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		return t.In(time.FixedZone("", 3600*(1+g.r.IntN(2)))).Format(time.RFC3339)
	}},
	{"timestamp-sql", "timestamp", func(g *gen, lang string) string { return randTime(g).UTC().Format("2006-01-02 15:04:05") }},
	{"epoch-10", "timestamp", func(g *gen, lang string) string { return strconv.FormatInt(randTime(g).Unix(), 10) }},
	{"epoch-13", "timestamp", func(g *gen, lang string) string {
		ms := randTime(g).UnixMilli()
		for Luhn(strconv.FormatInt(ms, 10)) {
			ms++
		}
		return strconv.FormatInt(ms, 10)
	}},
	{"date", "date", func(g *gen, lang string) string {
		t := randTime(g)
		if g.r.IntN(3) == 0 {
			return t.Format("2006-01-02")
		}
		switch lang {
		case "en":
			return t.Format("01/02/2006")
		case "de":
			return t.Format("02.01.2006")
		case "nl":
			return t.Format("02-01-2006")
		}
		return t.Format("02/01/2006")
	}},
	{"version", "version", func(g *gen, lang string) string {
		a, b, c := g.r.IntN(12), g.r.IntN(30), g.r.IntN(40)
		switch g.r.IntN(4) {
		case 0:
			return fmt.Sprintf("%d.%d.%d", a, b, c)
		case 1:
			return fmt.Sprintf("v%d.%d.%d-rc%d", a, b, c, 1+g.r.IntN(5))
		case 2:
			return fmt.Sprintf("%d.%d.0-%d-amd64", 4+g.r.IntN(3), b, 1+g.r.IntN(40))
		}
		return fmt.Sprintf("%d.%d.%d-beta.%d", a, b, c, 1+g.r.IntN(9))
	}},
	{"semver-range", "range", func(g *gen, lang string) string {
		a, b, c := g.r.IntN(12), g.r.IntN(30), g.r.IntN(40)
		switch g.r.IntN(4) {
		case 0:
			return fmt.Sprintf("^%d.%d.%d", a, b, c)
		case 1:
			return fmt.Sprintf("~%d.%d.%d", a, b, c)
		case 2:
			return fmt.Sprintf(">=%d.%d.0 <%d.0.0", a, b, a+1)
		}
		return fmt.Sprintf("%d.x", a)
	}},
	{"git-sha", "commit", func(g *gen, lang string) string {
		n := pick(g.r, []int{7, 8, 12, 40})
		for {
			s := randFrom(g.r, hexDigits, n)
			if strings.ContainsAny(s, "abcdef") {
				return s
			}
		}
	}},
	{"uuid", "requestid", func(g *gen, lang string) string {
		h := randFrom(g.r, hexDigits, 32)
		return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string("89ab"[g.r.IntN(4)]) + h[17:20] + "-" + h[20:]
	}},
	{"hex-hash", "checksum", func(g *gen, lang string) string {
		if g.r.IntN(2) == 0 {
			return "sha256:" + randFrom(g.r, hexDigits, 64)
		}
		return randFrom(g.r, hexDigits, 32)
	}},
	{"price-us", "total", func(g *gen, lang string) string {
		return "$" + groupThousands(1+g.r.IntN(9999999), ",") + fmt.Sprintf(".%02d", g.r.IntN(100))
	}},
	{"price-eu", "total", func(g *gen, lang string) string {
		v := groupThousands(1+g.r.IntN(9999999), ".") + fmt.Sprintf(",%02d", g.r.IntN(100))
		if g.r.IntN(2) == 0 {
			return v + " €"
		}
		return "EUR " + v
	}},
	{"postcode", "postcode", func(g *gen, lang string) string {
		switch lang {
		case "en":
			switch g.r.IntN(3) {
			case 0:
				return randDigits(g.r, 5)
			case 1:
				return randDigits(g.r, 5) + "-" + randDigits(g.r, 4)
			}
			return pick(g.r, []string{"SW1A", "EC1A", "M1", "B33", "LS1"}) + " " + strconv.Itoa(g.r.IntN(10)) + randFrom(g.r, "ABDEFGHJLNPQRSTUWXYZ", 2)
		case "nl":
			return strconv.Itoa(1000+g.r.IntN(9000)) + " " + randFrom(g.r, "ABCDEGHJKLMNPRSTVWXZ", 2)
		case "pt":
			return strconv.Itoa(1000+g.r.IntN(9000)) + "-" + randDigits(g.r, 3)
		}
		return randDigits(g.r, 5)
	}},
	{"isbn", "isbn", func(g *gen, lang string) string {
		for {
			body := pick(g.r, []string{"978", "979"}) + randDigits(g.r, 9)
			sum := 0
			for i := 0; i < 12; i++ {
				w := 1
				if i%2 == 1 {
					w = 3
				}
				sum += int(body[i]-'0') * w
			}
			s := body + strconv.Itoa((10-sum%10)%10)
			if Luhn(s) {
				continue
			}
			if g.r.IntN(2) == 0 {
				return s
			}
			return s[:3] + "-" + s[3:4] + "-" + s[4:7] + "-" + s[7:12] + "-" + s[12:]
		}
	}},
	{"coordinates", "coords", func(g *gen, lang string) string {
		lat, lon := 35+g.r.Float64()*25, -10+g.r.Float64()*35
		if g.r.IntN(2) == 0 {
			return fmt.Sprintf("%.4f, %.4f", lat, lon)
		}
		ew := "E"
		if lon < 0 {
			ew, lon = "W", -lon
		}
		return fmt.Sprintf("%.4f° N, %.4f° %s", lat, lon, ew)
	}},
	{"percentage", "rate", func(g *gen, lang string) string {
		v := fmt.Sprintf("%d.%d", g.r.IntN(100), g.r.IntN(10))
		if lang == "en" {
			return v + "%"
		}
		return strings.Replace(v, ".", ",", 1) + " %"
	}},
	{"time", "time", func(g *gen, lang string) string {
		if g.r.IntN(2) == 0 {
			return fmt.Sprintf("%02d:%02d", 7+g.r.IntN(12), 5*g.r.IntN(12))
		}
		return fmt.Sprintf("%02d:%02d:%02d", g.r.IntN(24), g.r.IntN(60), g.r.IntN(60))
	}},
	{"score", "score", func(g *gen, lang string) string {
		switch g.r.IntN(3) {
		case 0:
			return fmt.Sprintf("%d-%d", g.r.IntN(6), g.r.IntN(6))
		case 1:
			return fmt.Sprintf("%d:%d", g.r.IntN(6), g.r.IntN(6))
		}
		return fmt.Sprintf("%d-%d", 80+g.r.IntN(50), 80+g.r.IntN(50))
	}},
	{"phone-extension", "ext", func(g *gen, lang string) string {
		n := strconv.Itoa(1 + g.r.IntN(9999))
		switch g.r.IntN(3) {
		case 0:
			return "ext. " + n
		case 1:
			return "x" + n
		}
		return "-" + n
	}},
	{"port", "port", func(g *gen, lang string) string {
		p := pick(g.r, []int{22, 80, 443, 3000, 5432, 6379, 8080, 8443, 9090, 27017})
		if g.r.IntN(2) == 0 {
			return fmt.Sprintf("localhost:%d", p)
		}
		return strconv.Itoa(p)
	}},
	{"ssn-invalid", "formcode", func(g *gen, lang string) string { return genBadSSN(g.r) }},
	{"nine-digit", "batch", func(g *gen, lang string) string { return strconv.Itoa(100000000 + g.r.IntN(900000000)) }},
	{"at-dot-prose", "", func(g *gen, lang string) string { return pick(g.r, atDotProse[lang]) }},
	{"product-code", "product", func(g *gen, lang string) string {
		return fmt.Sprintf("%s%02d-%s", pick(g.r, []string{"DE", "FR", "GB", "NL", "ES", "IT", "AT"}), 10+g.r.IntN(90),
			pick(g.r, []string{"XL", "M", "S-BLK", "KIT-4", "XXL", "L-RED", "PRO"}))
	}},
}

// cleanDigits returns n digits; runs of 13 to 19 digits fail Luhn so that
// they are not card numbers.
func cleanDigits(g *gen, n int) string {
	s := strconv.Itoa(1+g.r.IntN(9)) + randDigits(g.r, n-1)
	if n >= 13 && n <= 19 && Luhn(s) {
		s = s[:n-1] + strconv.Itoa((int(s[n-1]-'0')+1)%10)
	}
	return s
}

func randTime(g *gen) time.Time {
	return time.Unix(1420070400+g.r.Int64N(15*365*86400), int64(g.r.IntN(1000))*1e6).UTC()
}

func groupThousands(n int, sep string) string {
	s := strconv.Itoa(n)
	var parts []string
	for len(s) > 3 {
		parts = append([]string{s[len(s)-3:]}, parts...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, parts...), sep)
}

func (g *gen) clean(k cleanKind) {
	for rep := 0; rep < 2; rep++ {
		for _, lang := range Languages {
			v := k.gen(g, lang)
			for tries := 0; luhnSpan(v) && tries < 100; tries++ {
				v = k.gen(g, lang)
			}
			pl := payload{kind: plainPayload, param: "reference"}
			if k.noun == "" {
				pl.text = v
			} else {
				tpl := pick(g.r, cleanTemplates[lang])
				pl.text = fill(tpl, cleanNouns[k.noun][langIndex(lang)], v)
				pl.value = v
				if url.QueryEscape(v) == v {
					pl.url = imageBase + "?ref=" + v
				}
			}
			p := g.choosePlace("", pl)
			g.add(item{Case: Case{
				Format:   k.format,
				Language: lang,
				Place:    p.name,
				Op:       p.op,
				Body:     g.body(p, lang, pl),
			}, value: v})
		}
	}
}
