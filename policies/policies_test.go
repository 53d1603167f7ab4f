package policies

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShippedBundleRegoTests(t *testing.T) {
	b, err := LoadBundle(Shipped())
	require.NoError(t, err)
	rep, err := Test(context.Background(), b)
	require.NoError(t, err)
	for _, r := range rep.Results {
		assert.True(t, r.Pass, "%s failed: %s %s", r.Name, r.Error, r.Output)
	}
	assert.GreaterOrEqual(t, len(rep.Results), 15)
	assert.True(t, rep.Passed())
	assert.GreaterOrEqual(t, rep.Coverage, 90.0, "coverage of the shipped bundle")
	t.Logf("%d Rego tests, coverage %.1f%%", len(rep.Results), rep.Coverage)
}

func candidates() []Candidate {
	return []Candidate{
		{ID: "ollama/llama3.2", Backend: "ollama", Kind: "selfhosted", Jurisdiction: "EU", Healthy: true, P95LatencyMs: 800},
		{ID: "openai/gpt-4o-mini", Backend: "openai", Kind: "proprietary", Jurisdiction: "US", Healthy: true, EstCostUSD: 0.001, P95LatencyMs: 300},
	}
}

func TestDecide(t *testing.T) {
	e, err := New(context.Background(), "", nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		in       Input
		allow    bool
		routes   []string
		excluded map[string]string // id -> first code
		deny     string
		redact   []string
	}{
		{"public", Input{Subject: Subject{Tenant: "t"}, Request: Request{Model: "default"}}, true,
			[]string{"ollama/llama3.2", "openai/gpt-4o-mini"}, nil, "", nil},
		{"card number stays local", Input{Subject: Subject{Tenant: "t"}, Request: Request{Model: "default", Entities: map[string]int{"CREDIT_CARD": 1}}}, true,
			[]string{"ollama/llama3.2"}, map[string]string{"openai/gpt-4o-mini": "LOCAL_ONLY"}, "", nil},
		{"EU pinned", Input{Subject: Subject{Tenant: "eu-bank"}, Request: Request{Model: "default"}}, true,
			[]string{"ollama/llama3.2"}, map[string]string{"openai/gpt-4o-mini": "DATA_RESIDENCY"}, "", nil},
		{"redacting tenant", Input{Subject: Subject{Tenant: "acme"}, Request: Request{Model: "default", Entities: map[string]int{"EMAIL": 1}}}, true,
			[]string{"ollama/llama3.2", "openai/gpt-4o-mini"}, nil, "", []string{"EMAIL"}},
		{"slow backend excluded", Input{Subject: Subject{Tenant: "t"}, Request: Request{Model: "default", LatencySLOMs: 500}}, true,
			[]string{"openai/gpt-4o-mini"}, map[string]string{"ollama/llama3.2": "LATENCY_SLO"}, "", nil},
		{"model not allowed", Input{Subject: Subject{Tenant: "t", Team: "interns"}, Request: Request{Model: "gpt-4o"}}, false,
			[]string{"ollama/llama3.2", "openai/gpt-4o-mini"}, nil, "MODEL_NOT_ALLOWED", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Candidates = candidates()
			d, err := e.Decide(context.Background(), &tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.allow, d.Allow)
			assert.Equal(t, tc.routes, d.Routes)
			for id, code := range tc.excluded {
				require.NotEmpty(t, d.Excluded[id], id)
				assert.Equal(t, code, d.Excluded[id][0].Code)
			}
			if tc.deny != "" {
				require.NotEmpty(t, d.Deny)
				assert.Equal(t, tc.deny, d.Deny[0].Code)
			}
			if tc.redact == nil {
				tc.redact = []string{}
			}
			assert.Equal(t, tc.redact, d.Redact["proprietary"])
			assert.NotEmpty(t, d.Revision)
		})
	}
}

// copyShipped writes the shipped bundle to a temporary directory.
func copyShipped(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := LoadBundle(Shipped())
	require.NoError(t, err)
	for p, src := range b.Modules {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(src), 0o644))
	}
	data, err := os.ReadFile("bundle/data.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.json"), data, 0o644))
	return dir
}

func TestReloadKeepsLastGoodBundle(t *testing.T) {
	dir := copyShipped(t)
	e, err := New(context.Background(), dir, nil)
	require.NoError(t, err)
	good := e.Status().Revision
	in := &Input{Subject: Subject{Tenant: "t"}, Request: Request{Model: "default"}, Candidates: candidates()}

	// A rule with an unused variable fails strict compilation.
	broken := filepath.Join(dir, "broken.rego")
	require.NoError(t, os.WriteFile(broken, []byte("package switchyard\n\nimport rego.v1\n\nunused if { x := 1; true }\n"), 0o644))
	require.Error(t, e.Reload(context.Background()))
	st := e.Status()
	assert.Equal(t, good, st.Revision, "the last good bundle stays in force")
	assert.Contains(t, st.LastError, "assigned var x unused")
	assert.EqualValues(t, 1, st.LoadErrors)
	d, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.Len(t, d.Routes, 2)

	// The fix, plus a change in the data: now tenant t is pinned to the EU.
	require.NoError(t, os.Remove(broken))
	data, err := os.ReadFile(filepath.Join(dir, "data.json"))
	require.NoError(t, err)
	data = []byte(strings.Replace(string(data), `"acme": {"pii_mode": "redact"}`, `"acme": {"pii_mode": "redact"}, "t": {"jurisdiction": "EU"}`, 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.json"), data, 0o644))
	require.NoError(t, e.Reload(context.Background()))
	st = e.Status()
	assert.NotEqual(t, good, st.Revision)
	assert.Empty(t, st.LastError)
	d, err = e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, []string{"ollama/llama3.2"}, d.Routes)
}

func TestWatchPicksUpChanges(t *testing.T) {
	dir := copyShipped(t)
	e, err := New(context.Background(), dir, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx, 20*time.Millisecond) }()
	before := e.Status().Revision

	// Watch registers asynchronously: keep touching a file until a reload
	// shows, instead of sleeping for a guess.
	extra := filepath.Join(dir, "extra.rego")
	i := 0
	require.Eventually(t, func() bool {
		i++
		src := "package switchyard.extra\n\nimport rego.v1\n\nn := " + strconv.Itoa(i) + "\n"
		_ = os.WriteFile(extra, []byte(src), 0o644)
		return e.Status().Revision != before
	}, 5*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestShippedBundleIsStrictClean(t *testing.T) {
	b, err := LoadBundle(Shipped())
	require.NoError(t, err)
	require.NoError(t, Check(b))
}

func TestExplainNamesTheRulesThatFired(t *testing.T) {
	e, err := New(context.Background(), "", nil)
	require.NoError(t, err)
	x, err := e.Explain(context.Background(), &Input{
		Subject:    Subject{Tenant: "eu-bank"},
		Request:    Request{Model: "default", Entities: map[string]int{"EMAIL": 1}},
		Candidates: candidates(),
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"ollama/llama3.2"}, x.Decision.Routes)
	fired := strings.Join(x.Fired, "\n")
	assert.Contains(t, fired, "routing.rego:")
	assert.Contains(t, fired, "exclusion")
	assert.Contains(t, fired, "sensitive_reason")
	assert.NotContains(t, fired, "too_slow", "no SLO, so the latency rule did not fire")
}

func TestInputSchemaCatchesMisspelledFields(t *testing.T) {
	b, err := LoadBundle(Shipped())
	require.NoError(t, err)
	b.Modules["typo.rego"] = "package switchyard.typo\n\nimport rego.v1\n\nslow if input.request.latency_slo > 0\n"
	err = Check(b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "latency_slo")
	_, err = prepare(context.Background(), b)
	assert.Error(t, err, "the serving compile checks the schema too")
}

func TestDecisionsAreReusedPerRevision(t *testing.T) {
	dir := copyShipped(t)
	e, err := New(context.Background(), dir, nil)
	require.NoError(t, err)
	in := &Input{Subject: Subject{Tenant: "t"}, Request: Request{ID: "req_1", Model: "default"}, Candidates: candidates()}
	first, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.False(t, first.Reused)

	in.Request.ID = "req_2" // another request, same facts
	again, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.True(t, again.Reused)
	assert.Equal(t, first.Routes, again.Routes)

	in.Candidates[0].Healthy = false // a changed fact is a new decision
	changed, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.False(t, changed.Reused)

	// A new bundle revision never reuses the old decisions.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.rego"), []byte("package switchyard.extra\n\nimport rego.v1\n\nn := 1\n"), 0o644))
	require.NoError(t, e.Reload(context.Background()))
	in.Candidates[0].Healthy = true
	fresh, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.False(t, fresh.Reused)
	assert.NotEqual(t, first.Revision, fresh.Revision)
}

// TestCacheKeyCoversEveryField guards the hand-built key: changing any
// field of the input but the request id must change the key.
func TestCacheKeyCoversEveryField(t *testing.T) {
	f, i := 1.5, int64(3)
	base := func() *Input {
		return &Input{
			Request:    Request{ID: "a", Operation: "chat", Model: "m", EstimatedInputTokens: 10, MaxOutputTokens: 5, DataClass: "x", Entities: map[string]int{"EMAIL": 1}, WeakEntities: map[string]int{"US_SSN": 1}, OriginRegion: "r", LatencySLOMs: 7},
			Subject:    Subject{Tenant: "t", Team: "tm", User: "u", KeyID: "k"},
			Budget:     Budget{KeyRemainingUSD: &f, TeamRemainingUSD: &f, KeyRemainingTokens: &i, TeamRemainingTokens: &i},
			Candidates: []Candidate{{ID: "c", Backend: "b", Provider: "p", Kind: "local", Region: "r", Jurisdiction: "j", Healthy: true, P95LatencyMs: 1, TTFTMs: 2, EstCostUSD: 3, ContextWindow: 4, ZeroDataRetention: true}},
		}
	}
	key := func(in *Input) string { k, err := cacheKey("rev", in); require.NoError(t, err); return k }
	ref := key(base())
	same := base()
	same.Request.ID = "b"
	assert.Equal(t, ref, key(same), "the request id is not part of the key")

	f2, i2 := 2.5, int64(4)
	for name, mutate := range map[string]func(*Input){
		"operation": func(in *Input) { in.Request.Operation = "x" }, "model": func(in *Input) { in.Request.Model = "x" },
		"stream": func(in *Input) { in.Request.Stream = true }, "input tokens": func(in *Input) { in.Request.EstimatedInputTokens++ },
		"max output": func(in *Input) { in.Request.MaxOutputTokens++ }, "data class": func(in *Input) { in.Request.DataClass = "y" },
		"entities": func(in *Input) { in.Request.Entities["EMAIL"] = 2 }, "new entity": func(in *Input) { in.Request.Entities["IBAN"] = 1 },
		"weak entities": func(in *Input) { in.Request.WeakEntities["US_SSN"] = 2 }, "new weak entity": func(in *Input) { in.Request.WeakEntities["IBAN"] = 1 },
		"origin": func(in *Input) { in.Request.OriginRegion = "x" }, "slo": func(in *Input) { in.Request.LatencySLOMs++ },
		"tenant": func(in *Input) { in.Subject.Tenant = "x" }, "team": func(in *Input) { in.Subject.Team = "x" },
		"user": func(in *Input) { in.Subject.User = "x" }, "key id": func(in *Input) { in.Subject.KeyID = "x" },
		"key usd": func(in *Input) { in.Budget.KeyRemainingUSD = &f2 }, "team usd": func(in *Input) { in.Budget.TeamRemainingUSD = nil },
		"key tokens": func(in *Input) { in.Budget.KeyRemainingTokens = &i2 }, "team tokens": func(in *Input) { in.Budget.TeamRemainingTokens = nil },
		"candidate id": func(in *Input) { in.Candidates[0].ID = "x" }, "backend": func(in *Input) { in.Candidates[0].Backend = "x" },
		"provider": func(in *Input) { in.Candidates[0].Provider = "x" }, "kind": func(in *Input) { in.Candidates[0].Kind = "x" },
		"region": func(in *Input) { in.Candidates[0].Region = "x" }, "jurisdiction": func(in *Input) { in.Candidates[0].Jurisdiction = "x" },
		"healthy": func(in *Input) { in.Candidates[0].Healthy = false }, "p95": func(in *Input) { in.Candidates[0].P95LatencyMs++ },
		"ttft": func(in *Input) { in.Candidates[0].TTFTMs++ }, "cost": func(in *Input) { in.Candidates[0].EstCostUSD++ },
		"context": func(in *Input) { in.Candidates[0].ContextWindow++ }, "zdr": func(in *Input) { in.Candidates[0].ZeroDataRetention = false },
		"more candidates": func(in *Input) { in.Candidates = append(in.Candidates, in.Candidates[0]) },

		// The same label as a weak signal rather than a strong one.
		"strong made weak": func(in *Input) { in.Request.Entities = map[string]int{}; in.Request.WeakEntities["EMAIL"] = 1 },
	} {
		in := base()
		mutate(in)
		assert.NotEqual(t, ref, key(in), name)
	}
}

func TestBundleSkipsHiddenDirectories(t *testing.T) {
	// A Kubernetes ConfigMap mount: files are links into a hidden,
	// timestamped directory that must not be loaded a second time.
	dir := copyShipped(t)
	hidden := filepath.Join(dir, "..2026_11_28_08_00_00.1")
	require.NoError(t, os.Mkdir(hidden, 0o755))
	src, err := os.ReadFile(filepath.Join(dir, "routing.rego"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(hidden, "routing.rego"), src, 0o644))
	_, err = New(context.Background(), dir, nil)
	require.NoError(t, err)
}

func TestPinnedJurisdictions(t *testing.T) {
	b, err := LoadBundle(Shipped())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"eu-bank": "EU"}, b.PinnedJurisdictions())

	b = &Bundle{Data: map[string]any{"switchyard": map[string]any{"config": map[string]any{"tenants": map[string]any{
		"ch": map[string]any{"jurisdiction": "CH"}, "none": map[string]any{"pii_mode": "redact"},
		"num": map[string]any{"jurisdiction": 1.0}, "null": map[string]any{"jurisdiction": nil}, "odd": "not an object",
	}}}}}
	assert.Equal(t, map[string]string{"ch": "CH", "num": "1", "null": "null"}, b.PinnedJurisdictions())
	assert.Empty(t, (&Bundle{Data: map[string]any{}}).PinnedJurisdictions())
}
