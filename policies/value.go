package policies

import (
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue builds the input document as an OPA value directly.
// ast.InterfaceToValue would round-trip the struct through JSON, which was
// about 36 µs of a 200 µs evaluation. TestInputValueMatchesJSON keeps the
// two identical.
func inputValue(in *Input) ast.Value {
	r := in.Request
	request := ast.NewObject(
		item("id", ast.StringTerm(r.ID)),
		item("operation", ast.StringTerm(r.Operation)),
		item("model", ast.StringTerm(r.Model)),
		item("stream", ast.BooleanTerm(r.Stream)),
		item("estimated_input_tokens", ast.IntNumberTerm(int(r.EstimatedInputTokens))),
		item("max_output_tokens", ast.IntNumberTerm(int(r.MaxOutputTokens))),
		item("data_class", ast.StringTerm(r.DataClass)),
		item("entities", countsTerm(r.Entities)),
		item("weak_entities", countsTerm(r.WeakEntities)),
		item("categories", stringsTerm(r.Categories)),
		item("origin_region", ast.StringTerm(r.OriginRegion)),
		item("latency_slo_ms", ast.IntNumberTerm(int(r.LatencySLOMs))),
	)
	s := in.Subject
	subject := ast.NewObject(
		item("tenant", ast.StringTerm(s.Tenant)),
		item("team", ast.StringTerm(s.Team)),
		item("user", ast.StringTerm(s.User)),
		item("key_id", ast.StringTerm(s.KeyID)),
	)
	budget := ast.NewObject()
	if b := in.Budget.KeyRemainingUSD; b != nil {
		budget.Insert(ast.StringTerm("key_remaining_usd"), ast.FloatNumberTerm(*b))
	}
	if b := in.Budget.TeamRemainingUSD; b != nil {
		budget.Insert(ast.StringTerm("team_remaining_usd"), ast.FloatNumberTerm(*b))
	}
	if b := in.Budget.KeyRemainingTokens; b != nil {
		budget.Insert(ast.StringTerm("key_remaining_tokens"), ast.IntNumberTerm(int(*b)))
	}
	if b := in.Budget.TeamRemainingTokens; b != nil {
		budget.Insert(ast.StringTerm("team_remaining_tokens"), ast.IntNumberTerm(int(*b)))
	}
	cache := ast.NewObject(
		item("enabled", ast.BooleanTerm(in.Cache.Enabled)),
		item("available", ast.BooleanTerm(in.Cache.Available)),
	)
	if in.Cache.Mode != "" {
		cache.Insert(ast.StringTerm("mode"), ast.StringTerm(in.Cache.Mode))
	}
	if in.Cache.Match != "" {
		cache.Insert(ast.StringTerm("match"), ast.StringTerm(in.Cache.Match))
	}
	if in.Cache.Similarity != 0 {
		cache.Insert(ast.StringTerm("similarity"), ast.FloatNumberTerm(in.Cache.Similarity))
	}
	candidates := ast.NullTerm() // as JSON writes a nil slice
	cands := make([]*ast.Term, len(in.Candidates))
	for i, c := range in.Candidates {
		cands[i] = ast.NewTerm(ast.NewObject(
			item("id", ast.StringTerm(c.ID)),
			item("backend", ast.StringTerm(c.Backend)),
			item("provider", ast.StringTerm(c.Provider)),
			item("kind", ast.StringTerm(c.Kind)),
			item("region", ast.StringTerm(c.Region)),
			item("jurisdiction", ast.StringTerm(c.Jurisdiction)),
			item("healthy", ast.BooleanTerm(c.Healthy)),
			item("p95_latency_ms", ast.FloatNumberTerm(c.P95LatencyMs)),
			item("ttft_ms", ast.FloatNumberTerm(c.TTFTMs)),
			item("est_cost_usd", ast.FloatNumberTerm(c.EstCostUSD)),
			item("context_window", ast.IntNumberTerm(int(c.ContextWindow))),
			item("zero_data_retention", ast.BooleanTerm(c.ZeroDataRetention)),
		))
	}
	if in.Candidates != nil {
		candidates = ast.ArrayTerm(cands...)
	}
	return ast.NewObject(
		item("request", ast.NewTerm(request)),
		item("subject", ast.NewTerm(subject)),
		item("budget", ast.NewTerm(budget)),
		item("cache", ast.NewTerm(cache)),
		item("candidates", candidates),
	)
}

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

func countsTerm(m map[string]int) *ast.Term {
	if m == nil {
		return ast.NullTerm()
	}
	o := ast.NewObject()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o.Insert(ast.StringTerm(k), ast.IntNumberTerm(m[k]))
	}
	return ast.NewTerm(o)
}

func stringsTerm(m map[string]string) *ast.Term {
	if m == nil {
		return ast.NullTerm()
	}
	o := ast.NewObject()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o.Insert(ast.StringTerm(k), ast.StringTerm(m[k]))
	}
	return ast.NewTerm(o)
}
