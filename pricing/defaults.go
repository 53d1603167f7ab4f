package pricing

import (
	"sort"
	"strings"
)

// USD is a price list in USD per million tokens, as providers publish it.
type USD struct {
	Input, Output, CachedInput, CacheWrite float64
}

// Price converts the list to micro-USD.
func (u USD) Price() Price {
	return FromUSDPerMTok(u.Input, u.Output, u.CachedInput, u.CacheWrite)
}

// Defaults are list prices of current proprietary models, per million
// tokens, as the providers published them when this table was written;
// they are what a proprietary backend is billed at when its config sets no
// price. Keys are model-name prefixes: "claude-sonnet-4-5" also prices
// "claude-sonnet-4-5-20250929". Check them against your contract and
// override in config.yaml (a backend's or a deployment's price).
var Defaults = map[string]USD{
	// OpenAI (cached input 25-50% of input; no cache-write surcharge).
	"gpt-5":                  {1.25, 10, 0.125, 1.25},
	"gpt-5-mini":             {0.25, 2, 0.025, 0.25},
	"gpt-5-nano":             {0.05, 0.40, 0.005, 0.05},
	"gpt-4.1":                {2, 8, 0.50, 2},
	"gpt-4.1-mini":           {0.40, 1.60, 0.10, 0.40},
	"gpt-4.1-nano":           {0.10, 0.40, 0.025, 0.10},
	"gpt-4o":                 {2.50, 10, 1.25, 2.50},
	"gpt-4o-mini":            {0.15, 0.60, 0.075, 0.15},
	"o3":                     {2, 8, 0.50, 2},
	"o4-mini":                {1.10, 4.40, 0.275, 1.10},
	"text-embedding-3-small": {0.02, 0, 0.02, 0.02},
	"text-embedding-3-large": {0.13, 0, 0.13, 0.13},
	// Anthropic (cache reads 0.1x input, 5-minute cache writes 1.25x).
	"claude-opus-4-5":   {5, 25, 0.50, 6.25},
	"claude-opus-4-1":   {15, 75, 1.50, 18.75},
	"claude-opus-4":     {15, 75, 1.50, 18.75},
	"claude-sonnet-4-5": {3, 15, 0.30, 3.75},
	"claude-sonnet-4":   {3, 15, 0.30, 3.75},
	"claude-3-7-sonnet": {3, 15, 0.30, 3.75},
	"claude-3-5-sonnet": {3, 15, 0.30, 3.75},
	"claude-haiku-4-5":  {1, 5, 0.10, 1.25},
	"claude-3-5-haiku":  {0.80, 4, 0.08, 1},
	// Google Gemini (prompts up to 200k tokens; cached input 25% of input).
	"gemini-2.5-pro":        {1.25, 10, 0.3125, 1.25},
	"gemini-2.5-flash":      {0.30, 2.50, 0.075, 0.30},
	"gemini-2.5-flash-lite": {0.10, 0.40, 0.025, 0.10},
	"gemini-2.0-flash":      {0.10, 0.40, 0.025, 0.10},
	"gemini-embedding-001":  {0.15, 0, 0.15, 0.15},
	// Mistral, Groq, DeepSeek (OpenAI-compatible presets).
	"mistral-large":           {2, 6, 2, 2},
	"mistral-medium":          {0.40, 2, 0.40, 0.40},
	"mistral-small":           {0.10, 0.30, 0.10, 0.10},
	"codestral":               {0.30, 0.90, 0.30, 0.30},
	"llama-3.3-70b-versatile": {0.59, 0.79, 0.59, 0.59},
	"llama-3.1-8b-instant":    {0.05, 0.08, 0.05, 0.05},
	"deepseek-chat":           {0.27, 1.10, 0.07, 0.27},
	"deepseek-reasoner":       {0.55, 2.19, 0.14, 0.55},
}

// vendors prefix Bedrock model ids ("us.anthropic.claude-…-v1:0").
var vendors = []string{"anthropic.", "meta.", "amazon.", "mistral.", "cohere.", "deepseek.", "ai21."}

// Lookup finds the default price of a model: the longest Defaults key that
// prefixes the model name, after dropping a provider path ("models/",
// "openai/") and a Bedrock region and vendor prefix.
func Lookup(model string) (USD, bool) {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	for _, v := range vendors {
		if i := strings.Index(m, v); i >= 0 {
			m = m[i+len(v):]
			break
		}
	}
	keys := make([]string, 0, len(Defaults))
	for k := range Defaults {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		if strings.HasPrefix(m, k) {
			return Defaults[k], true
		}
	}
	return USD{}, false
}
