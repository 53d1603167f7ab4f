package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

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

type apiTotal struct {
	Group    string `json:"group"`
	Requests int64  `json:"requests"`
	CostUSD  string `json:"cost_usd"`
}

// pageProbe records, from before the page's own scripts run, any CSP
// violation and uncaught error.
const pageProbe = `window.__probe = [];
document.addEventListener('securitypolicyviolation', (e) => window.__probe.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('error', (e) => window.__probe.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.__probe.push('rejection: ' + e.reason));`

// saveScreenshot keeps a screenshot as a test artifact, in
// $SWITCHYARD_ARTIFACTS or the test's temporary directory, and, with
// SWITCHYARD_UPDATE_SCREENSHOT=1, in docs/ for the documentation.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
	if os.Getenv("SWITCHYARD_UPDATE_SCREENSHOT") == "1" {
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", name), png, 0o644))
	}
}

// An admin key on a path or method the admin API does not have learns
// that, not that it is not a virtual key; other keys still get 401.
func TestAdminUnknownPath(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	cfg := gatewayConfig(t, fmt.Sprintf("admin:\n  keys:\n    - {id: ops, sha256: %s}\n", gateway.HashKey(adminKey)), route{name: "chat", backends: []string{up.URL + "/v1"}})
	base, _ := startGateway(t, cfg)
	root := strings.TrimSuffix(base, "/v1")
	for _, tc := range []struct {
		method, path, key string
		status            int
		allow             string
	}{
		{"POST", "/v1/switchyard/costs/report", adminKey, 405, "GET"},
		{"GET", "/v1/switchyard/cache", adminKey, 405, "DELETE"},
		{"GET", "/v1/switchyard/nope", adminKey, 404, ""},
		{"GET", "/v1/switchyard/nope", testKey, 401, ""},
		{"GET", "/v1/switchyard/nope", "", 401, ""},
	} {
		req, _ := http.NewRequest(tc.method, root+tc.path, nil)
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, "%s %s: %s", tc.method, tc.path, body)
		assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		assert.True(t, gjson.GetBytes(body, "error.message").Exists(), "%s", body)
	}
}
