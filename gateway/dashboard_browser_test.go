package gateway_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/ledger"
)

// dashboardRedisDB is the Redis database the dashboard test fills with a
// month of ledger entries; no other test uses it.
const dashboardRedisDB = 11

// monthOfTraffic appends a month of generated ledger entries (up to now)
// across three teams in two tenants, five keys and four models of every
// backend kind, the way the gateway records them (ledger "sy" in Redis).
// The generator is seeded: every run writes the same mix.
func monthOfTraffic(t *testing.T, rdb redis.UniversalClient, now time.Time) int {
	t.Helper()
	type model struct {
		name, backend, kind, provider string
		in, out                       int64 // pico-USD per token
	}
	// The teams' reference models (ledger.reference_models in the test's
	// config): search and ads would otherwise use gpt-4o, research
	// gpt-4o-mini (the default), so research's Claude requests cost more.
	refs := map[string][2]int64{"search": {2_500_000, 10_000_000}, "ads": {2_500_000, 10_000_000}, "research": {150_000, 600_000}}
	models := map[string]model{
		"chat":   {"chat", "engine", "local", "llamacpp", 0, 0},
		"coder":  {"coder", "vllm", "selfhosted", "vllm", 20_000, 40_000},
		"gpt-4o": {"gpt-4o", "openai", "proprietary", "openai", 2_500_000, 10_000_000},
		"claude": {"claude-sonnet-4-5", "anthropic", "proprietary", "anthropic", 3_000_000, 15_000_000},
	}
	type caller struct {
		tenant, team string
		keys         []string
		models       []string
	}
	callers := []caller{
		{"acme", "search", []string{"k-search-web", "k-search-batch"}, []string{"chat", "chat", "chat", "gpt-4o"}},
		{"acme", "ads", []string{"k-ads"}, []string{"coder", "coder", "gpt-4o"}},
		{"globex", "research", []string{"k-research", "k-research-ci"}, []string{"claude"}},
	}
	store := ledger.NewRedis(rdb, "sy", 0)
	rng := rand.New(rand.NewPCG(17, 3))
	ctx := context.Background()
	n := 0
	for h := 30 * 24; h >= 0; h-- {
		hour := now.Truncate(time.Hour).Add(-time.Duration(h) * time.Hour)
		for range rng.IntN(4) {
			at := hour.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			if !at.Before(now) {
				continue
			}
			c := callers[rng.IntN(len(callers))]
			m := models[c.models[rng.IntN(len(c.models))]]
			prompt, completion := 200+rng.Int64N(4000), 50+rng.Int64N(800)
			cost := prompt*m.in + completion*m.out
			e := ledger.Entry{
				ID: ledger.NewID(), Time: at, RequestID: fmt.Sprintf("req-%d", n),
				Tenant: c.tenant, Team: c.team, KeyID: c.keys[rng.IntN(len(c.keys))],
				Model: m.name, Backend: m.backend, Kind: m.kind, Provider: m.provider, UpstreamModel: m.name,
				PromptTokens: prompt, CompletionTokens: completion,
				CostPicoUSD: cost, SavingsPicoUSD: prompt*refs[c.team][0] + completion*refs[c.team][1] - cost,
			}
			require.NoError(t, store.Append(ctx, e))
			n++
		}
	}
	return n
}

// ledgerTotals are the ledger's own totals (ledger.Totals) by group.
func ledgerTotals(t *testing.T, s ledger.Store, from, to time.Time, by ledger.Group) map[string]ledger.Total {
	t.Helper()
	ts, err := ledger.Totals(context.Background(), s, from, to, by)
	require.NoError(t, err)
	out := map[string]ledger.Total{}
	for _, x := range ts {
		out[x.Group] = x
	}
	return out
}

// browserSession drives one headless Chromium tab.
type browserSession struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browserSession {
	chromium := chromiumOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	var chromeOut syncBuffer
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
		chromedp.CombinedOutput(&chromeOut),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", chromeOut.String())
		}
	})
	return &browserSession{t: t, ctx: bctx}
}

func (b *browserSession) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, steps...))
}

func (b *browserSession) eval(expr string, v any) {
	b.t.Helper()
	r, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](expr))
	require.NoError(b.t, err, expr)
	require.NoError(b.t, json.Unmarshal(r, v), expr)
}

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(`document.querySelector(`+strconv.Quote(sel)+`).textContent`, &s)
	return s
}

func (b *browserSession) waitFor(expr string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(b.t, err, "waiting for %s", expr)
}

// set changes a select's value as a user would, then waits for the
// page's next render.
func (b *browserSession) set(id, value string) {
	b.t.Helper()
	var seq string
	b.eval(`document.body.dataset.seq || ''`, &seq)
	b.run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event('change')); })()`, id, value)))
	b.waitFor(fmt.Sprintf(`document.body.dataset.state === 'ready' && document.body.dataset.seq !== %q`, seq))
}

// rows are a table's body rows: data-group and, per cell, the exact
// amount (data-exact) or else the text.
func (b *browserSession) rows(table string) map[string][]string {
	b.t.Helper()
	var rs [][]string
	b.eval(`Array.from(document.querySelectorAll('#`+table+` tbody tr')).map((r) =>
		[r.dataset.group || r.dataset.budget].concat(Array.from(r.cells).map((c) => c.dataset.exact !== undefined ? c.dataset.exact : c.textContent)))`, &rs)
	out := map[string][]string{}
	for _, r := range rs {
		out[r[0]] = r[1:]
	}
	return out
}

func (b *browserSession) order(table string) []string {
	b.t.Helper()
	var g []string
	b.eval(`Array.from(document.querySelectorAll('#`+table+` tbody tr')).map((r) => r.dataset.group)`, &g)
	return g
}

// download clicks a button and returns the CSV file it saved.
func (b *browserSession) download(button string) [][]string {
	b.t.Helper()
	dir := b.t.TempDir()
	dctx, dcancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer dcancel()
	progress := chromedp.Events(dctx, browser.DownloadProgress)
	_, err := chromedp.Call(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true),
	})
	require.NoError(b.t, err)
	b.run(chromedp.Click(chromedp.ID(button)))
	for ev, err := range progress {
		require.NoError(b.t, err, "waiting for the CSV download")
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
		require.NotEqual(b.t, browser.DownloadProgressStateCanceled, ev.State, "the download was canceled")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	require.NoError(b.t, err)
	require.Len(b.t, files, 1, "one CSV file in %s", dir)
	f, err := os.Open(files[0])
	require.NoError(b.t, err)
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	require.NoError(b.t, err)
	return records
}

func (b *browserSession) screenshot(name, sel string) {
	b.t.Helper()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	require.NoError(b.t, err)
	saveScreenshot(b.t, name, png)
}

func pct1(v float64) string { return strconv.FormatFloat(math.Round(v*1000)/10, 'f', -1, 64) + "%" }

// The cost dashboard in a real browser over a ledger holding a month of
// generated traffic: every figure on the page is the ledger's own total
// (spend, series, top spenders, savings, local share, budgets with their
// forecast), filters and stacking change them as the ledger says, both
// CSV exports hold what is shown, and no data shows without an admin
// key. Screenshots go to the artifacts (docs/ with
// SWITCHYARD_UPDATE_SCREENSHOT=1).
func TestDashboardMonth(t *testing.T) {
	addr := redisOrSkip(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: dashboardRedisDB})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.FlushDB(context.Background()).Err())
	now := time.Now().UTC()
	n := monthOfTraffic(t, rdb, now)
	t.Logf("%d ledger entries over 30 days", n)
	store := ledger.NewRedis(rdb, "sy", 0)

	extra := fmt.Sprintf("admin:\n  keys:\n    - {id: ops, sha256: %s}\n", gateway.HashKey(adminKey)) +
		fmt.Sprintf("data_dir: %s\nledger: {store: redis, reference_models: {search: gpt-4o, ads: gpt-4o, default: gpt-4o-mini}}\n", t.TempDir()) +
		fmt.Sprintf("quotas:\n  store: redis\n  redis: {addrs: [%s], db: %d}\n", addr, dashboardRedisDB) +
		"  limits:\n" +
		"    - {scope: team, usd_per_month: 4}\n" +
		"    - {scope: tenant, id: acme, usd_per_month: 1}\n" +
		"    - {scope: team, id: search, usd_per_day: 0.05}\n"
	base, _ := startGateway(t, gatewayConfig(t, extra))
	root := strings.TrimSuffix(base, "/v1")

	// The page's "Last 30 days": 30 UTC days up to the end of today.
	today := now.Truncate(24 * time.Hour)
	from, to := today.AddDate(0, 0, -29), today.AddDate(0, 0, 1)
	all := ledgerTotals(t, store, from, to, ledger.ByNothing)[""]
	require.Positive(t, all.Requests)
	teams := ledgerTotals(t, store, from, to, ledger.ByTeam)
	kinds := ledgerTotals(t, store, from, to, ledger.ByKind)
	require.Len(t, kinds, 3, "every backend kind has traffic")

	b := newBrowser(t)
	b.run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageProbe})
		return err
	}), chromedp.Navigate(root+"/dashboard"), chromedp.WaitVisible(chromedp.ID("login-form")))

	// No key: the prompt and no data. A wrong key: a message, not kept.
	b.waitFor(`document.body.dataset.state === 'login'`)
	var hidden bool
	b.eval(`document.getElementById('app').hidden`, &hidden)
	assert.True(t, hidden, "no dashboard without a key")
	assert.Empty(t, b.order("totals"))
	assert.Equal(t, "–", b.text("#card-cost"))
	b.run(chromedp.SendKeys(chromedp.ID("key"), testKey), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	b.waitFor(`document.body.dataset.state === 'login' && !document.getElementById('login-message').hidden`)
	assert.Contains(t, b.text("#login-message"), "admin key", "a virtual key does not read the ledger")
	var stored bool
	b.eval(`sessionStorage.getItem('switchyard.adminKey') !== null`, &stored)
	assert.False(t, stored)

	// The admin key, then the last 30 days.
	b.run(chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	b.waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'team'`)
	b.set("range", "30d")

	t.Run("totals", func(t *testing.T) {
		var exact string
		b.eval(`document.getElementById('card-cost').dataset.exact`, &exact)
		assert.Equal(t, all.CostUSD, exact, "the cost card is the ledger's total")
		b.eval(`document.getElementById('card-savings').dataset.exact`, &exact)
		assert.Equal(t, all.SavingsUSD, exact)
		assert.Equal(t, strconv.FormatInt(all.Requests, 10), strings.ReplaceAll(b.text("#card-requests"), ",", ""))
		assert.Equal(t, strconv.FormatInt(all.PromptTokens+all.CompletionTokens, 10), strings.ReplaceAll(b.text("#card-tokens"), ",", ""))
		local := kinds["local"].PromptTokens + kinds["local"].CompletionTokens + kinds["selfhosted"].PromptTokens + kinds["selfhosted"].CompletionTokens
		assert.Equal(t, pct1(float64(local)/float64(all.PromptTokens+all.CompletionTokens)), b.text("#card-local"), "local share of tokens")
		assert.Contains(t, b.text("#card-local-detail"),
			pct1(float64(kinds["local"].Requests+kinds["selfhosted"].Requests)/float64(all.Requests))+" of requests")
	})

	t.Run("spend over time by team", func(t *testing.T) {
		rows := b.rows("totals")
		require.Len(t, rows, len(teams))
		for team, want := range teams {
			require.Contains(t, rows, team)
			assert.Equal(t, strconv.FormatInt(want.Requests, 10), strings.ReplaceAll(rows[team][1], ",", ""), team)
			assert.Equal(t, want.CostUSD, rows[team][4], team)
			assert.Equal(t, want.SavingsUSD, rows[team][5], team)
		}
		var bars int
		b.eval(`document.querySelectorAll('#chart canvas').length`, &bars)
		assert.Equal(t, 1, bars, "the stacked chart renders")
		assert.Contains(t, b.text("#interval-name"), "per day")
	})

	t.Run("top spenders", func(t *testing.T) {
		keys, err := ledger.Totals(context.Background(), store, from, to, ledger.ByKey)
		require.NoError(t, err)
		b.run(chromedp.Evaluate[chromedp.Void](
			`(() => { const s = document.getElementById('top-by'); s.value = 'key'; s.dispatchEvent(new Event('change')); })()`))
		b.waitFor(`document.getElementById('top-col').textContent === 'Key'`)
		var want []string
		for _, k := range keys {
			want = append(want, k.Group)
		}
		assert.Equal(t, want, b.order("top"), "most expensive key first")
		assert.Equal(t, keys[0].CostUSD, b.rows("top")[keys[0].Group][3])
	})

	t.Run("savings explained", func(t *testing.T) {
		assert.Contains(t, b.text("#savings-formula"), "reference model")
		rows := b.rows("savings")
		require.Len(t, rows, len(teams))
		var negative, positive bool
		refs := map[string]string{"search": "gpt-4o", "ads": "gpt-4o", "research": "gpt-4o-mini"}
		for team, want := range teams {
			r := rows[team]
			assert.Equal(t, refs[team], r[1], "the team's reference model, or the default")
			assert.Equal(t, want.CostUSD, r[3], team)
			assert.Equal(t, ledger.FormatUSD(want.CostPicoUSD+want.SavingsPicoUSD), r[4], team)
			assert.Equal(t, want.SavingsUSD, r[5], team)
			if want.SavingsPicoUSD < 0 {
				negative = true
				assert.Regexp(t, `^cost \$[0-9.,]+ more$`, r[6], "a negative saving says so")
			} else {
				positive = true
				assert.Regexp(t, `^saved \$[0-9.,]+$`, r[6], team)
			}
		}
		assert.True(t, negative, "research's Claude requests cost more than the reference")
		assert.True(t, positive, "search's local requests saved")
		var sign string
		b.eval(`document.getElementById('savings-summary').dataset.sign`, &sign)
		assert.Equal(t, map[bool]string{true: "saved", false: "cost-more"}[all.SavingsPicoUSD > 0], sign)
	})

	t.Run("local share", func(t *testing.T) {
		rows := b.rows("kinds")
		require.Len(t, rows, 3)
		for kind, want := range kinds {
			assert.Equal(t, strconv.FormatInt(want.Requests, 10), strings.ReplaceAll(rows[kind][1], ",", ""), kind)
			assert.Equal(t, want.CostUSD, rows[kind][4], kind)
		}
	})

	t.Run("budgets", func(t *testing.T) {
		monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		month := ledgerTotals(t, store, monthStart, now.Add(time.Minute), ledger.ByTeam)
		tenants := ledgerTotals(t, store, monthStart, now.Add(time.Minute), ledger.ByTenant)
		daily := ledgerTotals(t, store, today, now.Add(time.Minute), ledger.ByTeam)
		rows := b.rows("budgets")
		for team, want := range month {
			r, ok := rows["team:"+team+":month"]
			require.True(t, ok, "a monthly budget row for %s in %v", team, rows)
			assert.Equal(t, "4", r[2])
			assert.Equal(t, want.CostUSD, r[3], team)
			assert.Equal(t, ledger.FormatUSD(max(4_000_000_000_000-want.CostPicoUSD, 0)), r[4], team)
			// The forecast continues the month's rate to its end.
			elapsed := now.Sub(monthStart).Seconds()
			length := monthStart.AddDate(0, 1, 0).Sub(monthStart).Seconds()
			forecast, err := strconv.ParseFloat(r[6], 64)
			require.NoError(t, err)
			assert.InEpsilon(t, float64(want.CostPicoUSD)/1e12*length/elapsed, forecast, 0.01, team)
		}
		require.Contains(t, rows, "tenant:acme:month")
		assert.Equal(t, tenants["acme"].CostUSD, rows["tenant:acme:month"][3])
		require.Contains(t, rows, "team:search:day")
		assert.Equal(t, daily["search"].CostUSD, rows["team:search:day"][3])
		var charts int
		b.eval(`document.querySelectorAll('#burn canvas').length`, &charts)
		assert.Equal(t, len(rows), charts, "a burn-down chart per budget")
		b.screenshot("dashboard-budgets.png", "#budgets-panel")
	})

	t.Run("CSV of this view", func(t *testing.T) {
		records := b.download("csv")
		require.Greater(t, len(records), 1)
		assert.Equal(t, []string{"bucket_start", "team", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "savings_usd"}, records[0])
		assert.Len(t, records, 1+30*len(teams), "a row per day and team")
		var cost int64
		var reqs int64
		for _, r := range records[1:] {
			c, err := ledger.ParseUSD(r[5])
			require.NoError(t, err)
			cost += c
			n, err := strconv.ParseInt(r[2], 10, 64)
			require.NoError(t, err)
			reqs += n
		}
		assert.Equal(t, all.CostUSD, ledger.FormatUSD(cost), "the rows add up to the ledger's total")
		assert.Equal(t, all.Requests, reqs)
		entries := b.download("csv-entries")
		assert.Len(t, entries, 1+int(all.Requests), "a header and every entry of the period")
	})

	b.screenshot("dashboard.png", "")

	t.Run("filter and stack", func(t *testing.T) {
		b.set("f-team", "ads")
		models := map[string]ledger.Total{}
		var cost int64
		require.NoError(t, store.Range(context.Background(), from, to, func(e ledger.Entry) error {
			if e.Team == "ads" {
				cost += e.CostPicoUSD
				m := models[e.Model]
				m.Requests++
				m.CostPicoUSD += e.CostPicoUSD
				models[e.Model] = m
			}
			return nil
		}))
		var exact string
		b.eval(`document.getElementById('card-cost').dataset.exact`, &exact)
		assert.Equal(t, ledger.FormatUSD(cost), exact, "the filtered total")
		assert.Equal(t, []string{"ads"}, b.order("totals"))
		b.set("group", "model")
		rows := b.rows("totals")
		require.Len(t, rows, len(models))
		for m, want := range models {
			assert.Equal(t, ledger.FormatUSD(want.CostPicoUSD), rows[m][4], m)
		}
		assert.Contains(t, b.text("#range-label"), "team ads")
		b.set("f-team", "")
		b.set("group", "kind")
		assert.ElementsMatch(t, []string{"local", "selfhosted", "proprietary"}, b.order("totals"))
		b.set("range", "today")
		assert.Contains(t, b.text("#interval-name"), "per hour")
	})

	// The key survives a reload of the tab; signing out forgets it.
	b.run(chromedp.Navigate(root + "/dashboard"))
	b.waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'team'`)
	b.run(chromedp.Click(chromedp.ID("logout")))
	b.waitFor(`document.body.dataset.state === 'login'`)
	assert.Empty(t, b.order("totals"))
	b.eval(`sessionStorage.getItem('switchyard.adminKey') !== null`, &stored)
	assert.False(t, stored)

	var probe []string
	b.eval(`window.__probe`, &probe)
	assert.Empty(t, probe, "no CSP violation or script error")
}
