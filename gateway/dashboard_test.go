package gateway_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
)

func dashboardGet(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// The page and its assets are served with their types, a strict CSP and
// no inline script; the data behind it still needs the admin key.
func TestDashboardHTTP(t *testing.T) {
	admin := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
	base, _ := startGateway(t, gatewayConfig(t, admin))
	root := strings.TrimSuffix(base, "/v1")

	resp, body := dashboardGet(t, root+"/dashboard")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'self'")
	assert.Contains(t, csp, "script-src 'self'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.NotContains(t, csp, "unsafe-eval")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	html := string(body)
	assert.Contains(t, html, `<script src="/dashboard/dashboard.js" defer></script>`)
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		assert.Contains(t, tag, ` src="`, "no inline script: %s", tag)
	}
	assert.NotRegexp(t, `<style|\sstyle=|\son[a-z]+=`, html, "no inline style or handler")

	resp2, _ := dashboardGet(t, root+"/dashboard/")
	assert.Equal(t, 200, resp2.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp2.Header.Get("Content-Type"))

	total := len(body)
	for path, ctype := range map[string]string{
		"/dashboard/dashboard.js":             "text/javascript; charset=utf-8",
		"/dashboard/dashboard.css":            "text/css; charset=utf-8",
		"/dashboard/vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
		"/dashboard/vendor/uPlot.min.css":     "text/css; charset=utf-8",
		"/dashboard/vendor/uPlot.LICENSE":     "text/plain; charset=utf-8",
	} {
		resp, b := dashboardGet(t, root+path)
		require.Equal(t, 200, resp.StatusCode, path)
		assert.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		assert.NotEmpty(t, resp.Header.Get("Content-Security-Policy"), path)
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), path)
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag, path)
		resp, _ = dashboardGet(t, root+path, "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, resp.StatusCode, path)
		total += len(b)
	}
	assert.Less(t, total, 300<<10, "the dashboard's assets stay small")

	js, err := os.ReadFile("dashboard/dashboard.js")
	require.NoError(t, err)
	assert.NotContains(t, string(js), "innerHTML", "API text is inserted with textContent only")

	for _, p := range []string{"/dashboard/nope.js", "/dashboard/../costs.go", "/dashboard/vendor"} {
		resp, _ := dashboardGet(t, root+p)
		assert.Equal(t, 404, resp.StatusCode, p)
	}

	resp, _ = dashboardGet(t, base+"/switchyard/costs")
	assert.Equal(t, 401, resp.StatusCode, "the data needs a key")
	resp, _ = dashboardGet(t, base+"/switchyard/costs", "Authorization", "Bearer "+testKey)
	assert.Equal(t, 401, resp.StatusCode, "a virtual key cannot read the ledger")
	resp, _ = dashboardGet(t, base+"/switchyard/costs", "Authorization", "Bearer "+adminKey)
	assert.Equal(t, 200, resp.StatusCode)
}

// chromiumOrSkip is the chromium binary, or skips the test without one
// unless SWITCHYARD_REQUIRE_CHROMIUM=1.
func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("SWITCHYARD_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SWITCHYARD_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("SWITCHYARD_REQUIRE_CHROMIUM=1 but chromium is not installed (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium, or set SWITCHYARD_CHROMIUM")
	return ""
}

func postAs(t *testing.T, base, key, model string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", b)
}

type apiTotal struct {
	Group    string `json:"group"`
	Requests int64  `json:"requests"`
	CostUSD  string `json:"cost_usd"`
}

func costTotals(t *testing.T, base, groupBy string) []apiTotal {
	t.Helper()
	resp, body := adminGet(t, base+"/switchyard/costs?group_by="+groupBy, adminKey)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	var v struct {
		Totals []apiTotal `json:"totals"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	return v.Totals
}

// pageProbe records, from before the page's own scripts run, any CSP
// violation and uncaught error.
const pageProbe = `window.__probe = [];
document.addEventListener('securitypolicyviolation', (e) => window.__probe.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('error', (e) => window.__probe.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.__probe.push('rejection: ' + e.reason));`

// The dashboard in a real browser: no data without a key, the totals of
// the ledger with one, regrouping, and the CSV export.
func TestDashboardBrowser(t *testing.T) {
	chromium := chromiumOrSkip(t)

	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Model string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		prompt := 1000
		if body.Model == "coder" {
			prompt = 3000
		}
		writeJSON(w, 200, chatCompletion(body.Model, "hi", prompt, 200, 100))
	})
	const adsKey = "sk-ads-key"
	extra := "  - {id: ads, sha256: " + gateway.HashKey(adsKey) + ", tenant: acme, team: ads}\n" +
		"admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
	base, _ := startGateway(t, gatewayConfig(t, extra,
		route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}},
		route{name: "code", upstream: "coder", backends: []string{up.URL + "/v1"}}))
	root := strings.TrimSuffix(base, "/v1")

	// Two teams, two models: search uses chat three times and code once,
	// ads uses code twice.
	for _, r := range []struct{ key, model string }{
		{testKey, "chat"}, {testKey, "chat"}, {testKey, "chat"}, {testKey, "code"}, {adsKey, "code"}, {adsKey, "code"},
	} {
		postAs(t, base, r.key, r.model)
	}
	var all []apiTotal
	require.Eventually(t, func() bool {
		all = costTotals(t, base, "")
		return len(all) == 1 && all[0].Requests == 6
	}, 5*time.Second, 20*time.Millisecond)
	groups := func(ts []apiTotal) []string {
		var g []string
		for _, x := range ts {
			g = append(g, x.Group)
		}
		return g
	}
	teams, models := groups(costTotals(t, base, "team")), groups(costTotals(t, base, "model"))
	require.ElementsMatch(t, []string{"search", "ads"}, teams)
	require.ElementsMatch(t, []string{"chat", "code"}, models)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&chromeOut),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	defer func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", chromeOut.String())
		}
	}()

	run := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(bctx, steps...))
	}
	eval := func(expr string, v any) {
		t.Helper()
		r, err := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](expr))
		require.NoError(t, err, expr)
		require.NoError(t, json.Unmarshal(r, v), expr)
	}
	waitFor := func(expr string) {
		t.Helper()
		_, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "waiting for %s", expr)
	}
	rows := func() []string {
		t.Helper()
		var g []string
		eval(`Array.from(document.querySelectorAll('#totals tbody tr')).map((r) => r.dataset.group)`, &g)
		return g
	}

	// Without a key: the prompt and no data.
	run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageProbe})
		return err
	}), chromedp.Navigate(root+"/dashboard"), chromedp.WaitVisible(chromedp.ID("login-form")))
	waitFor(`document.body.dataset.state === 'login'`)
	var hidden bool
	eval(`document.getElementById('app').hidden`, &hidden)
	assert.True(t, hidden, "no dashboard without a key")
	assert.Empty(t, rows())
	var cost string
	eval(`document.getElementById('card-cost').textContent`, &cost)
	assert.Equal(t, "–", cost)

	// A wrong key brings the prompt back with a message, and is not kept.
	run(chromedp.SendKeys(chromedp.ID("key"), "sk-wrong"), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	waitFor(`document.body.dataset.state === 'login' && !document.getElementById('login-message').hidden`)
	var msg string
	eval(`document.getElementById('login-message').textContent`, &msg)
	assert.Contains(t, msg, "admin key")
	var stored bool
	eval(`sessionStorage.getItem('switchyard.adminKey') !== null`, &stored)
	assert.False(t, stored)
	assert.Empty(t, rows())

	// The admin key: the totals by team, a chart, the API's exact cost.
	run(chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'team'`)
	assert.ElementsMatch(t, teams, rows())
	var canvases int
	eval(`document.querySelectorAll('#chart canvas').length`, &canvases)
	assert.Equal(t, 1, canvases, "the chart renders")
	var exact string
	eval(`document.getElementById('card-cost').dataset.exact`, &exact)
	assert.Equal(t, all[0].CostUSD, exact, "the cost card is the API's total")
	eval(`document.getElementById('card-cost').textContent`, &cost)
	assert.Equal(t, "$"+all[0].CostUSD, cost)
	var requests, local string
	eval(`document.getElementById('card-requests').textContent`, &requests)
	eval(`document.getElementById('card-local').textContent`, &local)
	assert.Equal(t, "6", requests)
	assert.Equal(t, "100%", local, "the test backends are self-hosted")

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	saveDashboardScreenshot(t, png)

	// Group by model.
	run(chromedp.Evaluate[chromedp.Void](
		`(() => { const s = document.getElementById('group'); s.value = 'model'; s.dispatchEvent(new Event('change')); })()`))
	waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'model'`)
	assert.ElementsMatch(t, models, rows())

	// The CSV export downloads the ledger's entries.
	dir := t.TempDir()
	dctx, dcancel := context.WithTimeout(bctx, 20*time.Second)
	defer dcancel()
	progress := chromedp.Events(dctx, browser.DownloadProgress)
	_, err = chromedp.Call(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true),
	})
	require.NoError(t, err)
	run(chromedp.Click(chromedp.ID("csv")))
	for ev, err := range progress {
		require.NoError(t, err, "waiting for the CSV download")
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
		require.NotEqual(t, browser.DownloadProgressStateCanceled, ev.State, "the download was canceled")
	}
	files, err := filepath.Glob(filepath.Join(dir, "switchyard-costs-*.csv"))
	require.NoError(t, err)
	require.Len(t, files, 1, "one CSV file in %s", dir)
	f, err := os.Open(files[0])
	require.NoError(t, err)
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	assert.Len(t, records, 1+6, "a header and the six requests")

	// The key survives a reload of the tab; signing out forgets it.
	run(chromedp.Navigate(root + "/dashboard"))
	waitFor(`document.body.dataset.state === 'ready' && document.body.dataset.rendered === 'team'`)
	run(chromedp.Click(chromedp.ID("logout")))
	waitFor(`document.body.dataset.state === 'login'`)
	assert.Empty(t, rows())
	eval(`sessionStorage.getItem('switchyard.adminKey') !== null`, &stored)
	assert.False(t, stored)

	var probe []string
	eval(`window.__probe`, &probe)
	assert.Empty(t, probe, "no CSP violation or script error")
}

var screenshotOnce sync.Once

// saveDashboardScreenshot keeps the screenshot as a test artifact, in
// $SWITCHYARD_ARTIFACTS or the test's temporary directory, and, with
// SWITCHYARD_UPDATE_SCREENSHOT=1, as docs/dashboard.png for the README.
func saveDashboardScreenshot(t *testing.T, png []byte) {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "dashboard.png")
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
	if os.Getenv("SWITCHYARD_UPDATE_SCREENSHOT") == "1" {
		screenshotOnce.Do(func() {
			require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644))
		})
	}
}
