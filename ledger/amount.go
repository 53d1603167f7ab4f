package ledger

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

const picoPerUSD = 1_000_000_000_000

// FormatUSD formats an amount of pico-USD as an exact decimal number of
// USD, with no trailing zeros and no exponent: 906_000_000 is "0.000906",
// 1 is "0.000000000001", 0 is "0", -1.5e12 is "-1.5". No float is
// involved, so every int64 prints exactly.
func FormatUSD(pico int64) string {
	u := uint64(pico)
	neg := pico < 0
	if neg {
		u = -u // two's complement: right for math.MinInt64 too
	}
	whole, frac := u/picoPerUSD, u%picoPerUSD
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(strconv.FormatUint(whole, 10))
	if frac != 0 {
		f := strconv.FormatUint(frac, 10)
		b.WriteByte('.')
		b.WriteString(strings.Repeat("0", 12-len(f)))
		b.WriteString(strings.TrimRight(f, "0"))
	}
	return b.String()
}

// ErrBadAmount is returned (wrapped) by ParseUSD.
var ErrBadAmount = errors.New("ledger: bad USD amount")

// ParseUSD is the inverse of FormatUSD: it reads a decimal number of USD
// with at most twelve decimals ("0.000906", "-1.5", "12") as pico-USD,
// exactly. Exponents, more than twelve decimals and amounts that do not
// fit an int64 are errors wrapping ErrBadAmount.
func ParseUSD(s string) (int64, error) {
	bad := func(why string) (int64, error) { return 0, fmt.Errorf("%w %q: %s", ErrBadAmount, s, why) }
	t := s
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" && frac == "" {
		return bad("no digits")
	}
	if dot && frac == "" {
		return bad("no digits after the point")
	}
	if len(frac) > 12 {
		return bad("more than twelve decimals")
	}
	for _, p := range []string{whole, frac} {
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return bad("not a decimal number")
			}
		}
	}
	var w uint64
	if whole != "" {
		var err error
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil {
			return bad("out of range")
		}
	}
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 12-len(frac)), 10, 64)
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	if w > (limit-f)/picoPerUSD {
		return bad("out of range")
	}
	u := w*picoPerUSD + f
	if neg {
		return int64(-u), nil
	}
	return int64(u), nil
}
