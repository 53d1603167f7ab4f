package gateway_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
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

// costsReply is the costs API's JSON.
type costsReply struct {
	Totals []struct {
		Requests int64  `json:"requests"`
		CostUSD  string `json:"cost_usd"`
	} `json:"totals"`
	Pending *struct {
		Entries *int64 `json:"entries"`
		Bytes   *int64 `json:"bytes"`
	} `json:"pending"`
}

// Redis dies mid-traffic and comes back: the entries settled meanwhile
// wait in the gateway's spool (the costs API says how many) and are then
// replayed, so the ledger ends up with every request once and the total
// the clients were told.
//
// It needs gateway.New to build the ledger with openLedger (server.go).
func TestLedgerSpoolSurvivesRedisOutage(t *testing.T) {
	rd := startRedisProc(t, redisProcOptions{Persist: true}) // killed, it keeps what it acknowledged
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("qwen", "hi", 100+int(n.Add(1)), 20, 10))
	})
	dataDir := t.TempDir()
	extra := "admin:\n  keys:\n    - {id: ops, sha256: " + gateway.HashKey(adminKey) + "}\n" +
		"quotas: {redis: {addrs: [" + rd.Addr() + "], timeout: 100ms}}\n" + // the ledger's Redis; quotas stay in memory
		"ledger: {store: redis}\n" +
		"data_dir: " + dataDir + "\n"
	base, _ := startGateway(t, gatewayConfig(t, extra, route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}}))
	_, err := os.Stat(filepath.Join(dataDir, gateway.LedgerSpoolDir))
	require.NoError(t, err, "the gateway opened its spool")
	from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	costsURL := base + "/switchyard/costs?from=" + from

	var sum pricing.Cost
	requestIDs := map[string]bool{}
	send := func(k int) {
		for range k {
			resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			c, err := parseCost(resp.Header.Get(gateway.HeaderCost))
			require.NoError(t, err)
			sum += c
			requestIDs[resp.Header.Get(gateway.HeaderRequestID)] = true
		}
	}
	// read returns the ledger's request count and cost, and the entries
	// pending, once the costs API answers 200.
	read := func() (int64, pricing.Cost, int64, bool) {
		resp, body := adminGet(t, costsURL, adminKey)
		if resp.StatusCode != 200 {
			return 0, 0, 0, false
		}
		var v costsReply
		require.NoError(t, json.Unmarshal(body, &v))
		require.NotNil(t, v.Pending, "pending is always reported: %s", body)
		require.NotNil(t, v.Pending.Entries)
		require.NotNil(t, v.Pending.Bytes)
		require.Equal(t, strconv.FormatInt(*v.Pending.Entries, 10), resp.Header.Get(gateway.HeaderLedgerPending))
		var reqs int64
		var cost pricing.Cost
		for _, tot := range v.Totals {
			c, err := parseCost(tot.CostUSD)
			require.NoError(t, err)
			reqs, cost = reqs+tot.Requests, cost+c
		}
		return reqs, cost, *v.Pending.Entries, true
	}

	const before, during = 10, 15
	send(before)
	require.Eventually(t, func() bool { reqs, _, pending, ok := read(); return ok && reqs == before && pending == 0 },
		5*time.Second, 10*time.Millisecond, "in Redis before it dies")
	rd.Kill()

	send(during)
	require.Eventually(t, func() bool {
		resp, _ := adminGet(t, costsURL, adminKey)
		return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(gateway.HeaderLedgerPending) == strconv.Itoa(during)
	}, 5*time.Second, 10*time.Millisecond, "Redis is down; the spool holds the entries settled meanwhile")

	rd.Restart() // on the same port, with what it had
	var reqs, pending int64
	var cost pricing.Cost
	require.Eventually(t, func() bool {
		var ok bool
		reqs, cost, pending, ok = read()
		return ok && pending == 0
	}, 20*time.Second, 20*time.Millisecond, "the spool is replayed")
	assert.EqualValues(t, before+during, reqs, "every request once")
	assert.Equal(t, sum.String(), cost.String(), "the ledger's total is what the clients were told")

	resp, body := adminGet(t, costsURL+"&format=csv", adminKey)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get(gateway.HeaderLedgerPending))
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+before+during)
	got := map[string]bool{}
	for _, row := range rows[1:] {
		require.False(t, got[row[1]], "request %s twice", row[1])
		got[row[1]] = true
	}
	assert.Equal(t, requestIDs, got, "the requests the clients sent")
}

// A Redis ledger needs its spool: New fails when the spool's directory
// cannot be made (or is another gateway's).
//
// It needs gateway.New to build the ledger with openLedger (server.go).
func TestLedgerSpoolDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	extra := "quotas: {redis: {addrs: [127.0.0.1:1]}}\nledger: {store: redis}\ndata_dir: " + filepath.Join(file, "data") + "\n"
	_, err := gateway.New(gatewayConfig(t, extra, route{name: "chat", backends: []string{deadUpstream(t)}}), gateway.Options{})
	require.ErrorContains(t, err, "cost ledger: ledger: spool directory")

	dir := t.TempDir()
	cfg := gatewayConfig(t, "quotas: {redis: {addrs: [127.0.0.1:1]}}\nledger: {store: redis}\ndata_dir: "+dir+"\n",
		route{name: "chat", backends: []string{deadUpstream(t)}})
	startGateway(t, cfg)
	fi, err := os.Stat(filepath.Join(dir, gateway.LedgerSpoolDir))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "freebsd" {
		_, err = gateway.New(cfg, gateway.Options{})
		require.ErrorContains(t, err, "in use by another process", "one gateway per spool")
	}
}
