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
