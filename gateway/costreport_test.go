package gateway_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

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
		Dimensions map[string][]string `json:"dimensions"`
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
