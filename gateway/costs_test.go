package gateway_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/pricing"
)

func adminGet(t *testing.T, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// The ledger's totals equal the sum of the costs the responses reported,
// in memory and in Redis; only admin keys may read it.
func TestCostLedger(t *testing.T) {
	stores := map[string]string{"memory": ""}
	if addr := redisTestAddr(); addr != "" {
		stores["redis"] = "quotas: {redis: {addrs: [" + addr + "]}}\nledger: {store: redis}\n"
	}
	for name, extra := range stores {
		t.Run(name, func(t *testing.T) {
			extra += "data_dir: " + t.TempDir() + "\n" // the ledger's spool
			var n atomic.Int64
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, chatCompletion("qwen", "hi", 100+int(n.Add(1)), 20, 10))
			})
			admin := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
			base, _ := startGateway(t, gatewayConfig(t, admin+extra, route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}}))
			// Entries are stamped when settled, after this; no slack, so
			// that a previous run's (-count) against the same Redis
			// ledger stays out.
			start := time.Now().UTC()

			var sum pricing.Cost
			for range 5 {
				resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
				resp.Body.Close()
				require.Equal(t, 200, resp.StatusCode)
				c, err := parseCost(resp.Header.Get("X-Switchyard-Cost-Usd"))
				require.NoError(t, err)
				sum += c
			}
			from := start.Format(time.RFC3339Nano)
			var totals struct {
				Totals []struct {
					Group        string `json:"group"`
					Requests     int64  `json:"requests"`
					PromptTokens int64  `json:"prompt_tokens"`
					CostUSD      string `json:"cost_usd"`
				} `json:"totals"`
				Pending *struct {
					Entries *int64 `json:"entries"`
					Bytes   *int64 `json:"bytes"`
				} `json:"pending"`
			}
			require.Eventually(t, func() bool {
				resp, body := adminGet(t, base+"/switchyard/costs?group_by=team&from="+from, adminKey)
				require.Equal(t, 200, resp.StatusCode, "%s", body)
				require.NoError(t, json.Unmarshal(body, &totals))
				assert.Equal(t, "0", resp.Header.Get("X-Switchyard-Ledger-Pending"))
				return len(totals.Totals) == 1 && totals.Totals[0].Requests == 5
			}, 5*time.Second, 20*time.Millisecond)
			require.NotNil(t, totals.Pending, "always reported")
			require.NotNil(t, totals.Pending.Entries)
			require.NotNil(t, totals.Pending.Bytes)
			assert.Zero(t, *totals.Pending.Entries, "nothing spooled")
			assert.Zero(t, *totals.Pending.Bytes)
			tot := totals.Totals[0]
			assert.Equal(t, "search", tot.Group)
			assert.Equal(t, sum.String(), tot.CostUSD, "the ledger's total is the sum of the responses' costs")
			assert.EqualValues(t, 101+102+103+104+105, tot.PromptTokens)

			resp, body := adminGet(t, base+"/switchyard/costs?format=csv&from="+from, adminKey)
			require.Equal(t, 200, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("Content-Type"), "text/csv")
			assert.Equal(t, "0", resp.Header.Get("X-Switchyard-Ledger-Pending"))
			rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
			require.NoError(t, err)
			assert.Len(t, rows, 1+5)

			resp, _ = adminGet(t, base+"/switchyard/costs", testKey)
			assert.Equal(t, 401, resp.StatusCode, "a virtual key cannot read the ledger")
			resp, _ = adminGet(t, base+"/switchyard/costs?group_by=colour", adminKey)
			assert.Equal(t, 400, resp.StatusCode)
		})
	}
}

// redisTestAddr is the test redis-server, if there is one.
func redisTestAddr() string { return os.Getenv("SWITCHYARD_TEST_REDIS") }

// parseCost reads a decimal USD amount as pico-dollars, exactly.
func parseCost(s string) (pricing.Cost, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 12 {
		return 0, fmt.Errorf("too many decimals in %q", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 12-len(frac)), 10, 64); err != nil {
			return 0, err
		}
	}
	return pricing.Cost(w*1e12 + f), nil
}

// GET /v1/switchyard/costs checks its parameters as the report does:
// to after from, a bounded range (QA: to=9999-12-31 sent millions of XLEN
// to a Redis ledger), format json or csv; each error is a 400 naming the
// parameter, answered at once, with the memory and the Redis ledger.
func TestCostLedgerParams(t *testing.T) {
	stores := map[string]string{"memory": ""}
	if addr := redisTestAddr(); addr != "" {
		stores["redis"] = "quotas: {redis: {addrs: [" + addr + "]}}\nledger: {store: redis}\n"
		stores["redis, 8 shards"] = "quotas: {redis: {addrs: [" + addr + "]}}\nledger: {store: redis, shards: 8, retention: 438000h}\n" // 50 years
	}
	for name, extra := range stores {
		t.Run(name, func(t *testing.T) {
			extra += "data_dir: " + t.TempDir() + "\n"
			admin := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n"
			base, _ := startGateway(t, gatewayConfig(t, admin+extra))
			costs := base + "/switchyard/costs"
			for _, c := range []struct{ query, param, want string }{
				{"from=2026-12-05&to=2026-12-01", "to", "after from"},
				{"from=2026-12-05&to=2026-12-05", "to", "after from"},
				{"from=2026-12-05&to=2026-12-01&format=csv", "to", "after from"},
				{"from=2026-12-01&to=9999-12-31", "to", "shorter range"},
				{"from=2026-12-01&to=9999-12-31&format=csv", "to", "shorter range"},
				{"from=2026-12-01&to=9999-12-31&group_by=team", "to", "shorter range"},
				{"from=1900-01-01&to=2200-01-01", "to", "shorter range"},
				{"from=0001-01-01&to=9999-12-31", "to", "shorter range"},
				{"from=0001-01-01&to=9999-12-31&format=csv", "to", "shorter range"},
				{"from=1970-01-01&to=2070-06-01", "to", "it reads at most"},
				{"format=xml", "format", "format must be json or csv"},
				{"format=xml&from=2026-12-01&to=2026-12-02", "format", "format must be json or csv"},
				{"from=yesterday", "from", "RFC 3339"},
				{"to=tomorrow", "to", "RFC 3339"},
			} {
				start := time.Now()
				resp, body := adminGet(t, costs+"?"+c.query, adminKey)
				elapsed := time.Since(start)
				require.Equal(t, 400, resp.StatusCode, "%s: %s", c.query, body)
				var e struct {
					Error struct{ Type, Code, Param, Message string }
				}
				require.NoError(t, json.Unmarshal(body, &e), c.query)
				assert.Equal(t, "invalid_request_error", e.Error.Type, c.query)
				assert.Equal(t, c.param, e.Error.Param, c.query)
				assert.Contains(t, e.Error.Message, c.want, c.query)
				assert.Equal(t, "0", resp.Header.Get("X-Switchyard-Ledger-Pending"), c.query)
				assert.Less(t, elapsed, 500*time.Millisecond, "%s: refused without reading the ledger", c.query)
			}
			ok := []struct{ query, ctype string }{
				{"from=2026-12-01&to=2026-12-02", "application/json"},
				{"from=2026-12-01&to=2026-12-02&format=JSON", "application/json"},
				{"from=2026-12-01&to=2026-12-02&format=Csv", "text/csv"},
			}
			if name != "redis, 8 shards" {
				// A century; from before the epoch: the ledger's whole history.
				ok = append(ok, struct{ query, ctype string }{"from=1970-01-01&to=2070-01-01&format=csv", "text/csv"},
					struct{ query, ctype string }{"from=0001-01-01&to=2030-01-01", "application/json"})
			}
			for _, c := range ok {
				resp, body := adminGet(t, costs+"?"+c.query, adminKey)
				require.Equal(t, 200, resp.StatusCode, "%s: %s", c.query, body)
				assert.Contains(t, resp.Header.Get("Content-Type"), c.ctype, c.query)
			}
			if name == "redis, 8 shards" {
				// 8 streams a day: at most MaxRangeKeys/8 days at once, from
				// what retention keeps (50 years) on.
				resp, body := adminGet(t, costs+"?from=0001-01-01&to=2030-01-01", adminKey)
				require.Equal(t, 400, resp.StatusCode, "%s", body)
				assert.Contains(t, string(body), "it reads at most 12500 at once")
				assert.Contains(t, string(body), `"param":"to"`)
				resp, body = adminGet(t, base+"/switchyard/costs/report?from=2020-01-01&to=2024-01-01&interval=day", adminKey)
				require.Equal(t, 200, resp.StatusCode, "%s", body)
			}
		})
	}
}
