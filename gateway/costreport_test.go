package gateway_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/pricing"
)

// The report API the dashboard reads: requests the gateway served show up
// in its total, series, top spenders, local share, savings and budget;
// its parameters are checked; only admin keys read it.
func TestCostReportAPI(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("qwen", "hi", 1000, 200, 0))
	})
	extra := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n" +
		"quotas:\n  limits:\n    - {scope: team, usd_per_month: 2}\n"
	base, _ := startGateway(t, gatewayConfig(t, extra, route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}}))
	var sum pricing.Cost
	for range 3 {
		resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		c, err := parseCost(resp.Header.Get("X-Switchyard-Cost-Usd"))
		require.NoError(t, err)
		sum += c
	}
	type total struct {
		Group    string `json:"group"`
		Requests int64  `json:"requests"`
		CostUSD  string `json:"cost_usd"`
	}
	var rep struct {
		Interval string      `json:"interval"`
		Total    total       `json:"total"`
		Buckets  []time.Time `json:"buckets"`
		Series   []struct {
			Group  string `json:"group"`
			Points []struct {
				Requests int64  `json:"requests"`
				CostUSD  string `json:"cost_usd"`
			} `json:"points"`
		} `json:"series"`
		Top        map[string][]total `json:"top"`
		LocalShare struct {
			Tokens   *float64 `json:"tokens"`
			Requests *float64 `json:"requests"`
		} `json:"local_share"`
		Savings struct {
			Formula string `json:"formula"`
			Teams   []struct {
				Team           string `json:"team"`
				ReferenceModel string `json:"reference_model"`
			} `json:"teams"`
		} `json:"savings"`
		Budgets []struct {
			Scope, ID, Period string
			SpentUSD          string `json:"spent_usd"`
			LimitUSD          string `json:"limit_usd"`
		} `json:"budgets"`
		BudgetsConfigured int                 `json:"budgets_configured"`
		Dimensions        map[string][]string `json:"dimensions"`
	}
	report := base + "/switchyard/costs/report"
	require.Eventually(t, func() bool {
		resp, body := adminGet(t, report+"?stack_by=model", adminKey)
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		require.NoError(t, json.Unmarshal(body, &rep))
		return rep.Total.Requests == 3
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, sum.String(), rep.Total.CostUSD)
	assert.Equal(t, "day", rep.Interval, "a month is shown per day")
	require.Len(t, rep.Series, 1)
	assert.Equal(t, "chat", rep.Series[0].Group)
	require.Len(t, rep.Series[0].Points, len(rep.Buckets))
	last := rep.Series[0].Points[len(rep.Buckets)-1]
	assert.Equal(t, int64(3), last.Requests, "today's bucket")
	assert.Equal(t, sum.String(), last.CostUSD)
	assert.Equal(t, []total{{"search", 3, sum.String()}}, rep.Top["team"])
	assert.Equal(t, "test", rep.Top["key"][0].Group)
	require.NotNil(t, rep.LocalShare.Tokens)
	assert.Equal(t, 1.0, *rep.LocalShare.Tokens, "the test backend is self-hosted")
	assert.Equal(t, "gpt-4o-mini", rep.Savings.Teams[0].ReferenceModel)
	assert.Contains(t, rep.Savings.Formula, "reference model")
	require.Len(t, rep.Budgets, 1)
	assert.Equal(t, "team", rep.Budgets[0].Scope)
	assert.Equal(t, "search", rep.Budgets[0].ID)
	assert.Equal(t, "month", rep.Budgets[0].Period)
	assert.Equal(t, "2", rep.Budgets[0].LimitUSD)
	assert.Equal(t, sum.String(), rep.Budgets[0].SpentUSD)
	assert.Equal(t, 1, rep.BudgetsConfigured)
	assert.Equal(t, []string{"search"}, rep.Dimensions["team"])

	// Today, by the hour; a filter that matches nothing.
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour).Format("2006-01-02")
	_, body := adminGet(t, report+"?from="+today+"&to="+now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339), adminKey)
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.Equal(t, "hour", rep.Interval)
	assert.Equal(t, now.Hour()+1, len(rep.Buckets))
	_, body = adminGet(t, report+"?team=ads", adminKey)
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.Zero(t, rep.Total.Requests)
	assert.Empty(t, rep.Series)
	assert.Equal(t, []string{"search"}, rep.Dimensions["team"], "the filters' choices ignore the filter")
	// A tenant filter hides the team budget, which is still configured.
	_, body = adminGet(t, report+"?tenant=acme", adminKey)
	rep.Budgets = nil
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.Empty(t, rep.Budgets)
	assert.Equal(t, 1, rep.BudgetsConfigured, "budgets exist: none applies to the selection")

	// The CSV is the series as shown.
	resp, body := adminGet(t, report+"?format=csv&stack_by=team&interval=day&from="+today, adminKey)
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/csv")
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, []string{"bucket_start", "team", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "savings_usd"}, rows[0])
	require.Len(t, rows, 2, "one day, one team")
	assert.Equal(t, []string{today + "T00:00:00Z", "search", "3", "3000", "600", sum.String()}, rows[1][:6])

	for _, c := range []struct{ query, param string }{
		{"interval=minute", "interval"},
		{"stack_by=colour", "stack_by"},
		{"from=yesterday", "from"},
		{"from=2026-02-01&to=2026-01-01", "to"},
		{"from=2020-01-01&to=2026-01-01&interval=hour", "interval"},
	} {
		resp, body := adminGet(t, report+"?"+c.query, adminKey)
		assert.Equal(t, 400, resp.StatusCode, c.query)
		var e struct {
			Error struct{ Param, Message string }
		}
		require.NoError(t, json.Unmarshal(body, &e), c.query)
		assert.Equal(t, c.param, e.Error.Param, c.query)
		assert.NotEmpty(t, e.Error.Message)
	}
	resp, _ = adminGet(t, report, testKey)
	assert.Equal(t, 401, resp.StatusCode, "a virtual key cannot read the ledger")
	resp, _ = adminGet(t, report+"?"+url.Values{"team": {"search"}}.Encode(), "")
	assert.Equal(t, 401, resp.StatusCode)
}

// The report's parameters over any range: a range of more intervals than
// the report draws is a 400 whatever its length (QA: 1900 to 2200 and
// year 1 to 9999 used to panic making the buckets), with advice that
// fits the interval asked for; format is json or csv, in any case.
func TestCostReportParams(t *testing.T) {
	admin := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
	base, _ := startGateway(t, gatewayConfig(t, admin))
	report := base + "/switchyard/costs/report"
	const (
		useDay   = "choose interval=day or a shorter range"
		shorter  = "choose a shorter range"
		notJSON  = "format must be json or csv"
		tooMany  = "more than 1500"
		tooManyH = "more than 1500 hourly intervals"
	)
	for _, c := range []struct {
		query, param string
		want, not    string // in the message, not in it
	}{
		{"from=1900-01-01&to=2200-01-01", "interval", tooMany + " daily intervals: " + shorter, "interval=day or"},
		{"from=1900-01-01&to=2200-01-01&interval=day", "interval", tooMany + " daily intervals: " + shorter, "interval=day or"},
		{"from=1900-01-01&to=2200-01-01&interval=hour", "interval", shorter + " (at most 1500 days, with interval=day)", useDay},
		{"from=1900-01-01&to=2200-01-01&interval=auto&format=csv", "interval", shorter, "interval=day or"},
		{"from=1900-01-01&to=2200-01-01&interval=hour&format=csv", "interval", shorter, useDay},
		{"from=0001-01-01&to=9999-12-31", "interval", shorter, "interval=day or"},
		{"from=0001-01-01&to=9999-12-31&interval=day", "interval", shorter, "interval=day or"},
		{"from=0001-01-01&to=9999-12-31&interval=hour", "interval", shorter, useDay},
		{"from=0001-01-01&to=9999-12-31&format=csv", "interval", shorter, "interval=day or"},
		{"from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z&interval=day&format=CSV", "interval", shorter, "interval=day or"},
		{"from=2020-01-01&to=2026-01-01&interval=day", "interval", tooMany + " daily intervals", "interval=day or"},
		{"from=2026-01-01&to=2026-04-01&interval=hour", "interval", tooManyH + ": " + useDay, ""},
		{"from=2026-01-01&to=2026-04-01&interval=hour&format=csv", "interval", useDay, ""},
		{"format=xml", "format", notJSON, ""},
		{"format=xml&from=1900-01-01&to=2200-01-01", "format", notJSON, ""},
		{"format=json2", "format", notJSON, ""},
		{"format=%20csv", "format", notJSON, ""},
		{"from=2026-12-05&to=2026-12-01", "to", "after from", ""},
		{"from=2026-12-05&to=2026-12-05", "to", "after from", ""},
	} {
		resp, body := adminGet(t, report+"?"+c.query, adminKey)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", c.query, body)
		var e struct {
			Error struct{ Type, Code, Param, Message string }
		}
		require.NoError(t, json.Unmarshal(body, &e), c.query)
		assert.Equal(t, "invalid_request_error", e.Error.Type, c.query)
		assert.Equal(t, "invalid_value", e.Error.Code, c.query)
		assert.Equal(t, c.param, e.Error.Param, c.query)
		assert.Contains(t, e.Error.Message, c.want, c.query)
		if c.not != "" {
			assert.NotContains(t, e.Error.Message, c.not, c.query)
		}
	}
	for _, c := range []struct{ query, ctype string }{
		{"", "application/json"},
		{"format=json", "application/json"},
		{"format=JSON", "application/json"},
		{"format=Json&interval=hour&from=2026-01-01&to=2026-01-02", "application/json"},
		{"format=csv", "text/csv"},
		{"format=CSV&interval=day&from=2022-01-01&to=2026-02-08", "text/csv"}, // 1499 days
		{"from=2026-01-01&to=2026-03-03&interval=hour", "application/json"},   // 1488 hours
	} {
		resp, body := adminGet(t, report+"?"+c.query, adminKey)
		require.Equal(t, 200, resp.StatusCode, "%s: %s", c.query, body)
		assert.Contains(t, resp.Header.Get("Content-Type"), c.ctype, c.query)
	}
}

// The dashboard's budget panel tells why it shows no budget: none is
// configured; a team, tenant or key filter leaves none of those that are
// (QA: Tenant = one without a budget said "No USD budget is configured");
// or the budgets are per team, tenant or key and nobody spent yet.
func TestDashboardBudgetsFiltered(t *testing.T) {
	admin := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("qwen", "hi", 1000, 200, 0))
	})
	chat := route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}}
	withBudget, _ := startGateway(t, gatewayConfig(t, admin+"quotas:\n  limits:\n    - {scope: team, id: search, usd_per_month: 2}\n", chat))
	resp := post(t, withBudget, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	perTeam, _ := startGateway(t, gatewayConfig(t, admin+"quotas:\n  limits:\n    - {scope: team, usd_per_day: 1, usd_per_month: 5}\n"))
	none, _ := startGateway(t, gatewayConfig(t, admin))

	b := newBrowser(t)
	open := func(base string) {
		b.run(chromedp.Navigate(strings.TrimSuffix(base, "/v1")+"/dashboard"), chromedp.WaitVisible(chromedp.ID("login-form")))
		b.run(chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
		b.waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'team'`)
	}
	panel := func() (state, text string, hidden bool, rows int) {
		b.eval(`document.getElementById('budgets-empty').dataset.state`, &state)
		b.eval(`document.getElementById('budgets-empty').hidden`, &hidden)
		b.eval(`document.querySelectorAll('#budgets tbody tr').length`, &rows)
		return state, b.text("#budgets-empty"), hidden, rows
	}

	open(withBudget)
	require.Eventually(t, func() bool {
		b.set("range", "today") // until the request's entry is in
		var n int
		b.eval(`document.querySelectorAll('#totals tbody tr').length`, &n)
		return n == 1
	}, 5*time.Second, 50*time.Millisecond)
	state, _, hidden, rows := panel()
	assert.Equal(t, "shown", state)
	assert.True(t, hidden)
	assert.Equal(t, 1, rows, "team search's budget")

	b.set("f-tenant", "acme")
	state, text, hidden, rows := panel()
	assert.Equal(t, "filtered", state)
	assert.False(t, hidden)
	assert.Zero(t, rows)
	assert.Contains(t, text, "No budget applies to this selection")
	assert.Contains(t, text, "One USD budget is configured")
	assert.NotContains(t, text, "No USD budget is configured")

	b.set("f-tenant", "")
	b.set("f-team", "search")
	state, _, hidden, rows = panel()
	assert.Equal(t, "shown", state, "the team's own budget")
	assert.True(t, hidden)
	assert.Equal(t, 1, rows)
	b.set("f-team", "")
	b.set("f-model", "chat")
	state, _, _, rows = panel()
	assert.Equal(t, "shown", state, "a model filter does not hide budgets")
	assert.Equal(t, 1, rows)

	open(perTeam)
	state, text, hidden, _ = panel()
	assert.Equal(t, "unspent", state)
	assert.False(t, hidden)
	assert.Contains(t, text, "2 USD budgets are configured")
	assert.NotContains(t, text, "No USD budget is configured")

	open(none)
	state, text, hidden, _ = panel()
	assert.Equal(t, "none", state)
	assert.False(t, hidden)
	assert.Contains(t, text, "No USD budget is configured")
}
