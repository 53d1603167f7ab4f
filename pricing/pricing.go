// Package pricing turns token usage into exact costs.
//
// Prices are held as integer micro-USD per million tokens, so a cost is an
// integer number of pico-USD (1e-12 USD): tokens × micro-USD/Mtok = pico-USD.
// Every price with up to six decimal places in USD per million tokens is
// represented exactly, and no float rounding creeps into sums.
package pricing

import (
	"math"
	"strconv"
	"strings"
)

// Price is a price list in micro-USD per million tokens.
type Price struct {
	Input       int64 // prompt tokens neither read from nor written to a cache
	Output      int64 // completion tokens
	CachedInput int64 // prompt tokens read from the provider's cache
	CacheWrite  int64 // prompt tokens written to the provider's cache
}

// FromUSDPerMTok converts USD per million tokens, as written in config, to
// a Price.
func FromUSDPerMTok(input, output, cachedInput, cacheWrite float64) Price {
	return Price{Input: micro(input), Output: micro(output), CachedInput: micro(cachedInput), CacheWrite: micro(cacheWrite)}
}

func micro(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

// Cost is an amount in pico-USD.
type Cost int64

// Tokens is a request's usage. Prompt counts every input token; Cached and
// CacheWrite are the parts of it read from and written to a cache.
type Tokens struct {
	Prompt, Cached, CacheWrite, Completion int64
}

// Cost prices a request: cached prompt tokens at the cached rate,
// cache-written ones at the cache-write rate, the rest of the prompt at the
// input rate, completion tokens at the output rate. Cached and CacheWrite
// are clamped into the prompt, so no token is billed twice.
func (p Price) Cost(t Tokens) Cost {
	prompt := max(t.Prompt, 0)
	cached := min(max(t.Cached, 0), prompt)
	written := min(max(t.CacheWrite, 0), prompt-cached)
	plain := prompt - cached - written
	return Cost(plain*p.Input + cached*p.CachedInput + written*p.CacheWrite + max(t.Completion, 0)*p.Output)
}

// USD returns the cost in dollars, for display and metrics.
func (c Cost) USD() float64 { return float64(c) / 1e12 }

// String formats the cost in USD with up to twelve decimals and no trailing
// zeros: "0.000123", "0".
func (c Cost) String() string {
	neg := c < 0
	if neg {
		c = -c
	}
	whole, frac := int64(c)/1e12, int64(c)%1e12
	s := strconv.FormatInt(whole, 10)
	if frac != 0 {
		f := strconv.FormatInt(frac, 10)
		s += "." + strings.TrimRight(strings.Repeat("0", 12-len(f))+f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}
