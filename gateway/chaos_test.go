package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/router"
)

// The chaos suite: the gateway under the faults it must survive (Redis
// killed, stalled and restarted under load, upstreams failing or cutting
// streams, hostile bodies, slowloris clients), with the invariants that
// must hold through them: no 5xx where a fallback exists, a ledger that
// equals what clients were told they spent, budgets not overspent, and
// bounded memory.

// chatReq is the body every chaos client sends: max_tokens 100 reserves at
// least 200 micro-USD at gatewayConfig's prices (2 USD per million output
// tokens), far above what the fake upstreams report (a few tens).
func chatReq(stream bool) string {
	return fmt.Sprintf(`{"model":"chat","messages":[{"role":"user","content":"hello there"}],"max_tokens":100,"stream":%t}`, stream)
}

// answerChat answers a chat request as JSON or as a stream, as it asked,
// with the given usage.
func answerChat(w http.ResponseWriter, r *http.Request, prompt, completion int) {
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	if req.Stream {
		writeSSE(w, chunk("up", `{"content":"hel"}`, ""), chunk("up", `{"content":"lo"}`, "stop"), usageChunk("up", prompt, completion))
		return
	}
	writeJSON(w, 200, chatCompletion("up", "hello", prompt, completion, 0))
}

// relaxTimeouts lifts the 300 ms upstream timeouts of gatewayConfig: on a
// loaded two-core CI machine under the race detector they can pass with
// no fault at all, and these tests inject their faults themselves.
func relaxTimeouts(cfg *config.Config) {
	for i := range cfg.Backends {
		cfg.Backends[i].Timeouts.FirstByte = 30 * time.Second
		cfg.Backends[i].Timeouts.BetweenChunks = 30 * time.Second
	}
}

const adminSection = "admin:\n  keys:\n    - {id: ops, sha256: %s}\n"

// chatOutcome is what a client saw of one request.
type chatOutcome struct {
	key        string // which client
	status     int
	code       string // error.code of a refusal, or of a stream's error event
	stream     bool   // the answer was an event stream
	cost       pricing.Cost
	billed     bool // the client was told a cost (header or stream comment)
	done       bool // the stream ended with [DONE]
	errEvent   bool // the stream ended with an error event
	chunks     int  // data events other than [DONE] and errors
	start, end time.Time
	err        error // transport error, or an unreadable answer
}

// sendChat posts body to the gateway as key and reads the whole answer:
// for JSON the X-Switchyard-Cost-Usd header, for a stream every event and
// the cost comment the gateway writes before its end.
func sendChat(ctx context.Context, c *http.Client, base, key, body string) (o chatOutcome) {
	o.start = time.Now()
	defer func() { o.end = time.Now() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", strings.NewReader(body))
	if err != nil {
		o.err = err
		return o
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		o.err = err
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			o.err = err
			return o
		}
		if o.status != http.StatusOK {
			o.code = errorCode(raw)
			return o
		}
		if h := resp.Header.Get(gateway.HeaderCost); h != "" {
			o.cost, o.err = parseCost(h)
			o.billed = o.err == nil
		}
		return o
	}
	o.stream = true
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "data: [DONE]":
			o.done = true
		case strings.HasPrefix(line, `data: {"error"`):
			o.errEvent = true
			o.code = errorCode([]byte(strings.TrimPrefix(line, "data: ")))
		case strings.HasPrefix(line, "data: "):
			o.chunks++
		case strings.HasPrefix(line, ": x-switchyard-cost "):
			var cc struct {
				CostUSD string `json:"cost_usd"`
			}
			if e := json.Unmarshal([]byte(strings.TrimPrefix(line, ": x-switchyard-cost ")), &cc); e != nil {
				o.err = fmt.Errorf("cost comment %q: %w", line, e)
				return o
			}
			if o.cost, o.err = parseCost(cc.CostUSD); o.err != nil {
				return o
			}
			o.billed = true
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				o.err = err
			}
			return o
		}
	}
}

func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code any `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == nil {
		return ""
	}
	return fmt.Sprint(e.Error.Code)
}

// costsView is GET /v1/switchyard/costs: the totals, and what the ledger
// has not yet written to its store (absent for stores without a spool).
type costsView struct {
	Totals  []apiTotal `json:"totals"`
	Pending *struct {
		Entries int64 `json:"entries"`
		Bytes   int64 `json:"bytes"`
	} `json:"pending"`
}

// readCosts reads the costs API. It does not fail the test, so polls may
// call it from any goroutine.
func readCosts(base, query string) (costsView, error) {
	var v costsView
	req, _ := http.NewRequest(http.MethodGet, base+"/switchyard/costs?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return v, err
	}
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("costs API: %d %s", resp.StatusCode, body)
	}
	return v, json.Unmarshal(body, &v)
}

// settledLedger polls the costs API until the ledger holds want requests
// in all and, when spooled, nothing is pending. If that does not happen
// within timeout it marks the test failed and returns the last view, so
// that the comparisons that follow still print their figures.
func settledLedger(t *testing.T, base, query string, want int64, spooled bool, timeout time.Duration) costsView {
	t.Helper()
	var (
		mu   sync.Mutex
		last costsView
		err  error
	)
	ok := assert.Eventually(t, func() bool {
		v, e := readCosts(base, query)
		mu.Lock()
		defer mu.Unlock()
		last, err = v, e
		if e != nil || (spooled && (v.Pending == nil || v.Pending.Entries != 0)) {
			return false
		}
		var n int64
		for _, tot := range v.Totals {
			n += tot.Requests
		}
		return n == want
	}, timeout, 25*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !ok {
		pending := "absent"
		if last.Pending != nil {
			pending = fmt.Sprintf("%+v", *last.Pending)
		}
		t.Errorf("the ledger did not settle at %d requests within %v: totals %+v, pending %s, error %v", want, timeout, last.Totals, pending, err)
	}
	return last
}

// ledgerCost is the total cost of one group (all of them for group "*").
func ledgerCost(t *testing.T, v costsView, group string) (pricing.Cost, int64) {
	t.Helper()
	var sum pricing.Cost
	var n int64
	for _, tot := range v.Totals {
		if group != "*" && tot.Group != group {
			continue
		}
		c, err := parseCost(tot.CostUSD)
		require.NoError(t, err)
		sum += c
		n += tot.Requests
	}
	return sum, n
}

// procStatus reads a field of /proc/self/status in KiB (VmRSS, VmHWM).
func procStatus(field string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseInt(f[0], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// rssOrSkip returns the process's resident set in MiB, after returning
// freed memory to the OS, so that it is what is held, not what the
// collector has yet to give back.
func rssOrSkip(t *testing.T) float64 {
	t.Helper()
	debug.FreeOSMemory()
	debug.FreeOSMemory() // sync.Pool keeps what it held for one more collection
	kb, ok := procStatus("VmRSS")
	if !ok {
		t.Skip("no /proc/self/status: RSS is read on Linux only")
	}
	return float64(kb) / 1024
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0+);
// it reports false where that is not possible.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// raceEnabled reports whether the test binary was built with -race, whose
// shadow memory multiplies RSS.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "-race" {
				return st.Value == "true"
			}
		}
	}
	return false
}

func peakRSS() float64 {
	kb, _ := procStatus("VmHWM")
	return float64(kb) / 1024
}

// chaosLogger is the gateway's log, at warn and above; when the test
// fails, a count of its messages and its last lines are printed.
func chaosLogger(t *testing.T) *slog.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		byMsg := map[string]int{}
		var other []string // all but the access log's lines
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if _, rest, ok := strings.Cut(l, " msg="); ok {
				msg, _, _ := strings.Cut(rest, " request_id=")
				byMsg[msg]++
				if msg != "request" {
					other = append(other, l)
				}
			}
		}
		t.Logf("the gateway logged (warn and above): %v; the last lines but the access log's:\n%s", byMsg, strings.Join(other[max(0, len(other)-15):], "\n"))
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// faultWindow is a time during which (plus grace after it) a fail_closed
// key may see 503 quota_unavailable.
type faultWindow struct {
	name     string
	from, to time.Time
	n503     int
}

func (w *faultWindow) covers(o chatOutcome, grace time.Duration) bool {
	return !o.end.Before(w.from) && !o.start.After(w.to.Add(grace))
}

// The keys of TestChaosRedisFaults, by label: the virtual key, its id,
// and what it may see besides 200.
var chaosKeys = []struct {
	label, key, id string
}{
	{"open", testKey, "test"},             // fail_open, ample budget: only 200s
	{"closed", "sk-closed-key", "closed"}, // fail_closed, ample budget: 503 around faults
	{"budget", "sk-budget-key", "budget"}, // fail_closed, small budget: 429 once spent
}

// Redis is stalled, then killed and restarted, under a steady mixed load
// (JSON and streams) of three keys: one under a fail_open limit, one
// under a fail_closed limit, one under a small fail_closed budget that
// runs out. The fail_open key never sees a 5xx; the fail_closed ones see
// 503 quota_unavailable only around the faults; after each fault the
// ledger, once its spool is replayed, holds exactly what the clients were
// told they spent; and the budget is never overspent.
func TestChaosRedisFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: Redis faults under load take several seconds")
	}
	// Persistent, as a Redis that keeps a ledger must be: a restart
	// without persistence would lose the ledger's acknowledged entries
	// and reset the budgets.
	rd := startRedisProc(t, redisProcOptions{Persist: true})

	var calls atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// Prompts of 10 to 16 tokens, completions of 5: 20 to 26
		// micro-USD a request, so a lost or doubled entry shows.
		answerChat(w, r, 10+int(calls.Add(1)%7), 5)
	})

	// Room for about 150 requests' actual cost: the budget runs out while
	// the test runs, so its bound is tested, not just its bookkeeping.
	const budgetMicroUSD = 4000
	extra := fmt.Sprintf(adminSection, gateway.HashKey(adminKey)) +
		"quotas:\n  store: redis\n  redis: {addrs: [" + rd.Addr() + "], timeout: 100ms}\n  limits:\n" +
		"    - {scope: key, id: test, usd_per_day: 1000, on_store_error: fail_open}\n" +
		"    - {scope: key, id: closed, usd_per_day: 1000, on_store_error: fail_closed}\n" +
		fmt.Sprintf("    - {scope: key, id: budget, usd_per_day: %g, on_store_error: fail_closed}\n", float64(budgetMicroUSD)/1e6) +
		"ledger: {store: redis}\n"
	cfg := gatewayConfig(t, extra, route{name: "chat", upstream: "up", backends: []string{up.URL + "/v1"}})
	relaxTimeouts(cfg)
	cfg.DataDir = t.TempDir()
	for _, k := range chaosKeys[1:] {
		cfg.Keys = append(cfg.Keys, config.Key{ID: k.id, SHA256: gateway.HashKey(k.key), Tenant: "acme", Team: "search"})
	}
	base, _ := startGatewayWith(t, cfg, gateway.Options{Version: "test", Logger: chaosLogger(t)})
	from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	// The budget's spend, read from Redis itself (sy:{t:acme}:key:budget:
	// usd-day:<day>:bud, field spent; see quota/redis.go): the admin API
	// reports what remains, which never goes below zero, so it cannot show
	// an overspend.
	rc := redis.NewClient(&redis.Options{Addr: rd.Addr(), DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rc.Close()
	spentBy := func(keyID string) (int64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		keys, err := rc.Keys(ctx, "*:key:"+keyID+":usd-day:*:bud").Result()
		if err != nil || len(keys) == 0 {
			return 0, false
		}
		var total int64
		for _, k := range keys {
			v, err := rc.HGet(ctx, k, "spent").Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return 0, false
			}
			total += v
		}
		return total, true
	}
	spent := func() (int64, bool) { return spentBy("budget") }
	var maxSpent atomic.Int64
	// The monitor also times a PING every 10 ms, and its own wake-ups: a
	// loaded two-core machine can starve Redis, or this process, past the
	// 100 ms timeout with no fault injected, and a 503 then is the
	// environment's doing, not the gateway's. Those stalls are windows
	// of their own, reported apart.
	var (
		slowMu sync.Mutex
		slow   []*faultWindow
	)
	noteSlow := func(from, to time.Time) {
		slowMu.Lock()
		defer slowMu.Unlock()
		if n := len(slow); n > 0 && !slow[n-1].to.Before(from.Add(-20*time.Millisecond)) {
			slow[n-1].to = to // one window for a run of them
			return
		}
		slow = append(slow, &faultWindow{name: "environment", from: from, to: to})
	}
	stopMonitor, monitorDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(monitorDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		prev := time.Now()
		for {
			t0 := time.Now()
			if t0.Sub(prev) >= 60*time.Millisecond { // this goroutine waited that long for a CPU
				noteSlow(prev, t0)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := rc.Ping(ctx).Err()
			cancel()
			if t1 := time.Now(); err != nil || t1.Sub(t0) >= 50*time.Millisecond {
				noteSlow(t0, t1)
			}
			if s, ok := spent(); ok && s > maxSpent.Load() {
				maxSpent.Store(s)
			}
			prev = time.Now()
			select {
			case <-stopMonitor:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopMonitor:
		default:
			close(stopMonitor)
		}
		<-monitorDone
	}()

	// The load: eight clients (three on each of the ample keys, two on
	// the budget), each alternating JSON and streams, started and stopped
	// around the ledger checks.
	var (
		mu       sync.Mutex
		outcomes []chatOutcome
		wg       sync.WaitGroup
		stop     chan struct{}
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	startLoad := func() {
		stop = make(chan struct{})
		for w := range 8 {
			k := chaosKeys[[]int{0, 0, 0, 1, 1, 1, 2, 2}[w]]
			wg.Add(1)
			go func(stop <-chan struct{}) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					o := sendChat(ctx, client, base, k.key, chatReq((i+w)%2 == 1))
					cancel()
					o.key = k.label
					mu.Lock()
					outcomes = append(outcomes, o)
					mu.Unlock()
				}
			}(stop)
		}
	}
	stopLoad := func() {
		if stop != nil {
			close(stop)
			stop = nil
		}
		wg.Wait()
	}
	defer stopLoad()
	count := func(f func(o chatOutcome) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if f(o) {
				n++
			}
		}
		return n
	}
	all := func(chatOutcome) bool { return true }
	// progress waits until n more requests have ended: the load is
	// running, at whatever pace the machine allows.
	progress := func(phase string, n int) {
		t.Helper()
		want := count(all) + n
		require.Eventually(t, func() bool { return count(all) >= want }, 20*time.Second, 5*time.Millisecond,
			"%s: fewer than %d requests ended in 20s", phase, n)
	}
	// ledgerMatches checks, with the load stopped, that the ledger holds
	// one entry per successful request and, per key, exactly the costs
	// the clients were told.
	ledgerMatches := func(after string) {
		t.Helper()
		mu.Lock()
		ok, cost := map[string]int{}, map[string]pricing.Cost{}
		for _, o := range outcomes {
			if o.err == nil && o.status == http.StatusOK {
				ok[o.key]++
				cost[o.key] += o.cost
			}
		}
		mu.Unlock()
		t0 := time.Now()
		view := settledLedger(t, base, "group_by=key&from="+from, int64(ok["open"]+ok["closed"]+ok["budget"]), true, 10*time.Second)
		t.Logf("after %s: ledger settled (nothing pending) in %v", after, time.Since(t0).Round(time.Millisecond))
		for _, k := range chaosKeys {
			got, n := ledgerCost(t, view, k.id)
			t.Logf("after %s: key %s: ledger %d entries, $%s; clients %d successes, $%s", after, k.id, n, got, ok[k.label], cost[k.label])
			assert.EqualValues(t, ok[k.label], n, "after %s, key %s: one ledger entry per successful request", after, k.id)
			assert.Equal(t, cost[k.label].String(), got.String(), "after %s, key %s: the ledger total is the sum of the client-visible costs", after, k.id)
		}
	}

	startLoad()
	progress("warm-up", 100)

	// Fault 1: Redis stalls for 150 ms, longer than the 100 ms timeout.
	stall := &faultWindow{name: "stall 150ms", from: time.Now()}
	stalled := rd.Stall(150 * time.Millisecond)
	select {
	case err := <-stalled:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("DEBUG SLEEP 0.15 did not return in 10s")
	}
	stall.to = time.Now()
	progress("after the stall", 100)
	stopLoad()
	ledgerMatches("the stall")

	// Fault 2: Redis is killed, stays dead for a second, and comes back
	// with what it had persisted.
	startLoad()
	progress("before the kill", 50)
	kill := &faultWindow{name: "kill 1s + restart", from: time.Now()}
	rd.Kill()
	time.Sleep(time.Second) // the outage itself, not a synchronisation
	restarting := time.Now()
	rd.Restart()
	restarted := time.Now()
	// readyz reports the quota store degraded until the breaker closes
	// (its probe, and any request's, closes it once Redis answers).
	var closedAt time.Time
	for deadline := time.Now().Add(15 * time.Second); closedAt.IsZero(); {
		if quotaReady(base) {
			closedAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quota store still degraded 15s after Redis came back")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	kill.to = closedAt

	// Recovery: the load goes on until the budget has run out (a 429
	// insufficient_quota), so that its bound is exercised.
	progress("after the restart", 100)
	require.Eventually(t, func() bool {
		return count(func(o chatOutcome) bool { return o.key == "budget" && o.status == 429 }) > 0
	}, 20*time.Second, 10*time.Millisecond, "the budget never ran out")
	stopLoad()
	ledgerMatches("the kill and restart")
	close(stopMonitor)
	<-monitorDone

	// What the clients saw.
	const grace = 300 * time.Millisecond
	windows := []*faultWindow{stall, kill}
	var (
		ok            = map[string]int{}
		clientMicro   = map[string]int64{} // what each key was told, in micro-USD rounded up per request
		refused429    int
		outside503    []chatOutcome
		firstClosedOK time.Time
		streams       int
	)
	mu.Lock()
	defer mu.Unlock()
	slowMu.Lock()
	defer slowMu.Unlock()
	n503, envStalled := map[string]int{}, 0
	var slowOutside []string // slow PINGs away from the injected faults
	for _, w := range slow {
		if !w.to.Add(grace).Before(stall.from) && !w.from.After(stall.to.Add(grace)) ||
			!w.to.Add(grace).Before(kill.from) && !w.from.After(kill.to.Add(grace)) {
			continue
		}
		slowOutside = append(slowOutside, fmt.Sprintf("%v+%v", w.from.Sub(stall.from).Round(time.Millisecond), w.to.Sub(w.from).Round(time.Millisecond)))
	}
	for _, o := range outcomes {
		if o.err != nil {
			t.Errorf("%s: %v", o.key, o.err)
			continue
		}
		switch {
		case o.status == http.StatusOK:
			ok[o.key]++
			if o.stream {
				streams++
				if !o.done || o.errEvent {
					t.Errorf("%s: a stream ended without [DONE] (error event %v, code %q)", o.key, o.errEvent, o.code)
				}
			}
			if !o.billed {
				t.Errorf("%s: a 200 without a cost (stream %v)", o.key, o.stream)
			}
			clientMicro[o.key] += (int64(o.cost) + 999_999) / 1_000_000
			if o.key == "closed" && o.start.After(restarted) && (firstClosedOK.IsZero() || o.end.Before(firstClosedOK)) {
				firstClosedOK = o.end
			}
		case o.key == "open":
			t.Errorf("fail_open key: %d %q", o.status, o.code)
		case o.key == "budget" && o.status == http.StatusTooManyRequests && o.code == "insufficient_quota":
			refused429++
		case o.status == http.StatusServiceUnavailable && o.code == "quota_unavailable":
			n503[o.key]++
			in := false
			for _, w := range windows {
				if w.covers(o, grace) {
					w.n503++
					in = true
					break
				}
			}
			for _, w := range slow {
				// Seen from another goroutine, a stall may be noticed
				// late: grace on both sides.
				if !in && (&faultWindow{from: w.from.Add(-grace), to: w.to}).covers(o, grace) {
					envStalled++
					in = true
				}
			}
			if !in {
				outside503 = append(outside503, o)
			}
		default:
			t.Errorf("%s key: %d %q", o.key, o.status, o.code)
		}
	}
	t.Logf("requests: %d (%d streams); 200s: open %d, closed %d, budget %d; budget 429 insufficient_quota: %d; 503 quota_unavailable: closed %d, budget %d",
		len(outcomes), streams, ok["open"], ok["closed"], ok["budget"], refused429, n503["closed"], n503["budget"])
	for _, w := range windows {
		t.Logf("fault %q lasted %v: %d fail_closed 503 quota_unavailable", w.name, w.to.Sub(w.from).Round(time.Millisecond), w.n503)
	}
	firstOK := "none"
	if !firstClosedOK.IsZero() {
		firstOK = firstClosedOK.Sub(restarted).Round(time.Millisecond).String()
	}
	t.Logf("Redis answered PING %v after the restart began; after that, the breaker closed in %v, and the first fail_closed request to succeed ended in %s",
		restarted.Sub(restarting).Round(time.Millisecond), closedAt.Sub(restarted).Round(time.Millisecond), firstOK)
	if len(slowOutside) > 0 {
		t.Logf("the machine stalled (a PING of 50 ms or more, or a 10 ms tick 60 ms late) with no fault injected, at (relative to the stall, start+length) %v: %d fail_closed 503s then are its doing",
			slowOutside, envStalled)
	}
	for _, o := range outside503 {
		t.Errorf("%s key: 503 quota_unavailable outside every fault window (from %v to %v after the stall began; the stall ended at %v, the breaker closed at %v)",
			o.key, o.start.Sub(stall.from).Round(time.Millisecond), o.end.Sub(stall.from).Round(time.Millisecond),
			stall.to.Sub(stall.from).Round(time.Millisecond), kill.to.Sub(stall.from).Round(time.Millisecond))
	}
	assert.Positive(t, kill.n503, "with Redis dead the fail_closed keys are refused")

	// The budget: every request's actual cost (at most 26 micro-USD) is
	// below its reservation (at least 200), so the stated bound, the sum
	// over requests in flight of actual minus reserved, is zero: the spend
	// never passes the limit.
	const bound = 0
	final, okSpent := spent()
	require.True(t, okSpent, "the budget's counter is in Redis")
	var admin counter
	resp, body := adminGet(t, base+"/switchyard/quota?key_id=budget", adminKey)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	var usage struct {
		Counters []counter `json:"counters"`
	}
	require.NoError(t, json.Unmarshal(body, &usage))
	for _, c := range usage.Counters {
		if c.Metric == "usd" {
			admin = c
		}
	}
	t.Logf("budget: limit %d µUSD (bound %d over it); spent %d (highest seen %d); admin API remaining %d (the rest held by reservations); clients were told %d µUSD in %d requests",
		budgetMicroUSD, bound, final, maxSpent.Load(), admin.Remaining, clientMicro["budget"], ok["budget"])
	assert.EqualValues(t, budgetMicroUSD, admin.Limit)
	assert.LessOrEqual(t, max(maxSpent.Load(), final), int64(budgetMicroUSD+bound), "the budget is overspent by more than the bound")
	assert.LessOrEqual(t, final, clientMicro["budget"], "the budget counts no more than was served")
	// fail_open admissions settle their spend too, unless the settlement
	// gives up before Redis is back: printed, not asserted.
	for _, k := range chaosKeys[:2] {
		if s, ok := spentBy(k.id); ok {
			t.Logf("key %s: Redis counts %d µUSD spent of the %d µUSD its clients were told", k.id, s, clientMicro[k.label])
		}
	}
}

// quotaReady reports whether /readyz shows the quota store not degraded.
func quotaReady(v1 string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(v1, "/v1")+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var m struct {
		Quota *struct {
			Degraded bool `json:"degraded"`
		} `json:"quota"`
	}
	return json.NewDecoder(resp.Body).Decode(&m) == nil && m.Quota != nil && !m.Quota.Degraded
}

// The first deployment fails 30% of calls with 500, 502 or 503; the
// second is healthy. 300 concurrent requests, JSON and streams: none sees
// a 5xx, and the ledger equals what the clients were told.
func TestChaosUpstreamFailures(t *testing.T) {
	var flakyCalls, flakyFailures, healthyCalls atomic.Int64
	flaky := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n := flakyCalls.Add(1)
		if m := n % 10; m == 0 || m == 3 || m == 6 { // 30%, every third or so
			status := []int{500, 502, 503}[flakyFailures.Add(1)%3]
			writeJSON(w, status, `{"error":{"message":"injected failure","type":"server_error"}}`)
			return
		}
		answerChat(w, r, 10+int(n%5), 5)
	})
	healthy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		answerChat(w, r, 20+int(healthyCalls.Add(1)%3), 7)
	})
	cfg := gatewayConfig(t, fmt.Sprintf(adminSection, gateway.HashKey(adminKey)),
		route{name: "chat", upstream: "up", backends: []string{flaky.URL + "/v1", healthy.URL + "/v1"}})
	relaxTimeouts(cfg)
	cfg.DataDir = t.TempDir()
	base, _ := startGateway(t, cfg)
	from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	const requests, workers = 300, 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	outcomes := make([]chatOutcome, requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < requests; i = int(next.Add(1)) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				outcomes[i] = sendChat(ctx, client, base, testKey, chatReq(i%2 == 1))
				cancel()
			}
		}()
	}
	wg.Wait()

	var sum pricing.Cost
	statuses := map[int]int{}
	for _, o := range outcomes {
		require.NoError(t, o.err)
		statuses[o.status]++
		if o.status >= 500 {
			t.Errorf("a %d (%q) reached the client though a healthy fallback exists", o.status, o.code)
		}
		if o.status == http.StatusOK {
			assert.True(t, o.billed, "every answer has a cost")
			if o.stream {
				assert.True(t, o.done && !o.errEvent, "streams are complete")
			}
			sum += o.cost
		}
	}
	t.Logf("statuses %v; flaky deployment: %d calls, %d failed; healthy fallback: %d calls", statuses, flakyCalls.Load(), flakyFailures.Load(), healthyCalls.Load())
	assert.Equal(t, requests, statuses[http.StatusOK])
	assert.Positive(t, flakyFailures.Load(), "the fault was injected")
	assert.GreaterOrEqual(t, healthyCalls.Load(), flakyFailures.Load(), "every failure fell back")

	view := settledLedger(t, base, "from="+from, requests, false, 10*time.Second)
	got, _ := ledgerCost(t, view, "*")
	t.Logf("ledger $%s, clients $%s", got, sum)
	assert.Equal(t, sum.String(), got.String(), "the ledger total is the sum of the client-visible costs")
}

// The first deployment streams three chunks and then drops the
// connection; the second is healthy. Cut streams end with an error event
// and are billed; after FailureThreshold cuts the first deployment is
// taken out, so the rest go to the fallback; the ledger matches.
func TestChaosStreamsCutMidway(t *testing.T) {
	var cutCalls, healthyCalls atomic.Int64
	cut := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		cutCalls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for range 3 {
			fmt.Fprintf(w, "data: %s\n\n", chunk("up", `{"content":"word "}`, ""))
			w.(http.Flusher).Flush()
		}
		panic(http.ErrAbortHandler) // the connection is dropped mid-stream
	})
	healthy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		healthyCalls.Add(1)
		answerChat(w, r, 20, 7)
	})
	cfg := gatewayConfig(t, fmt.Sprintf(adminSection, gateway.HashKey(adminKey)),
		route{name: "chat", upstream: "up", backends: []string{cut.URL + "/v1", healthy.URL + "/v1"}})
	relaxTimeouts(cfg)
	cfg.DataDir = t.TempDir()
	base, _ := startGateway(t, cfg)
	from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	const perWorker, workers = 10, 2
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	outcomes := make([]chatOutcome, perWorker*workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				outcomes[w*perWorker+i] = sendChat(ctx, client, base, testKey, chatReq(true))
				cancel()
			}
		}()
	}
	wg.Wait()

	var sum pricing.Cost
	cuts := 0
	for _, o := range outcomes {
		require.NoError(t, o.err)
		require.Equal(t, http.StatusOK, o.status, "the stream starts (%q)", o.code)
		require.True(t, o.billed, "every stream, cut or not, is billed")
		sum += o.cost
		if o.errEvent {
			cuts++
			assert.False(t, o.done, "a cut stream does not claim to be complete")
			assert.Equal(t, 3, o.chunks, "the three chunks sent before the cut reach the client")
			assert.Positive(t, o.cost, "what a cut stream used is billed")
			assert.NotEmpty(t, o.code, "the error event has a code")
		} else {
			assert.True(t, o.done, "a stream from the fallback is complete")
		}
	}
	t.Logf("%d streams by %d clients: %d cut (upstream called %d times), %d from the fallback", len(outcomes), workers, cuts, cutCalls.Load(), healthyCalls.Load())
	assert.EqualValues(t, cutCalls.Load(), cuts, "every cut reached its client as an error event (none can fall back once streaming)")
	assert.GreaterOrEqual(t, cuts, router.FailureThreshold)
	assert.LessOrEqual(t, cuts, router.FailureThreshold*workers, "mid-stream cuts take the deployment out")

	ready := readyz(t, base)
	health := map[string]bool{}
	deps, _ := ready["deployments"].([]any)
	for _, d := range deps {
		m, _ := d.(map[string]any)
		id, _ := m["id"].(string)
		h, _ := m["healthy"].(bool)
		health[strings.SplitN(id, "/", 2)[0]] = h
	}
	t.Logf("readyz deployments: %v", deps)
	assert.Equal(t, map[string]bool{"b0": false, "b1": true}, health, "the cutting deployment is out, the fallback healthy")

	view := settledLedger(t, base, "from="+from, int64(len(outcomes)), false, 10*time.Second)
	got, _ := ledgerCost(t, view, "*")
	t.Logf("ledger $%s, clients $%s", got, sum)
	assert.Equal(t, sum.String(), got.String(), "the ledger total is the sum of the client-visible costs")
}

// Hostile bodies: a 1,000,000-deep array is refused with 400 json_too_deep
// in under 50 ms, before the upstream is asked; a 7 MiB string and 50,000
// messages get a clean answer; the gateway answers normally afterwards,
// and its memory stays bounded.
func TestChaosHostileBodies(t *testing.T) {
	var upstreamCalls atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	forget := func() { // newUpstream keeps every body; these are large
		up.mu.Lock()
		up.requests = nil
		up.mu.Unlock()
	}
	// A budget makes the gateway estimate every prompt's tokens, which a
	// hostile body must not turn into a denial of service either.
	cfg := gatewayConfig(t, "quotas:\n  limits:\n    - {scope: key, usd_per_day: 1000}\n",
		route{name: "chat", upstream: "up", backends: []string{up.URL + "/v1"}})
	relaxTimeouts(cfg)
	cfg.DataDir = t.TempDir()
	cfg.Server.BodyLimit = config.DefaultBodyLimit // 8 MiB, as deployed
	cfg.Server.JSON.MaxStringBytes = config.DefaultBodyLimit
	base, _ := startGateway(t, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	send := func(body []byte) (int, string, time.Duration) {
		t.Helper()
		// Generous: the 7 MiB body takes over ten seconds under -race on a
		// loaded two-core machine (the classifier's scan, and this test's
		// upstream decoding it); speed is not what is asserted there.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		d := time.Since(start)
		require.NoError(t, err)
		forget()
		code := errorCode(raw)
		if len(raw) > 300 {
			raw = raw[:300]
		}
		return resp.StatusCode, code + " " + string(raw), d
	}
	// Warm the connection and the gateway's lazily loaded parts (the
	// tokenizer) so the timing below is the body's alone.
	status, _, _ := send([]byte(chatReq(false)))
	require.Equal(t, 200, status)
	calls := upstreamCalls.Load()

	rss0 := rssOrSkip(t)
	peakOK := resetPeakRSS()

	deepBodies(t, send)
	assert.Equal(t, calls, upstreamCalls.Load(), "a refused body never reaches the upstream")

	if testing.Short() {
		t.Log("-short: the 7 MiB string and the 50,000 messages (seconds under -race) are skipped")
		return
	}
	// Large but within the limits: an answer, never a 5xx.
	status, body, d := send([]byte(`{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("a", 7<<20) + `"}],"max_tokens":10}`))
	t.Logf("a 7 MiB string (one run of one letter): %d in %v", status, d)
	assert.Less(t, status, 500, "7 MiB string: %s", body)

	status, body, d = send(manyMessages(50_000))
	t.Logf("50,000 messages: %d in %v", status, d)
	assert.Less(t, status, 500, "50,000 messages: %s", body)

	status, body, _ = send([]byte(chatReq(false)))
	assert.Equal(t, 200, status, "a normal request right after: %s", body)

	rss1 := rssOrSkip(t)
	peak := peakRSS()
	// Measured on a two-core machine, over the RSS before: under -race
	// 150-200 MiB held after (the race detector's shadow of the heap the
	// bodies used is never returned) and 215-245 MiB at the peak; without
	// it about 10 MiB held and 50 MiB at the peak. The bounds allow about
	// twice that.
	heldBound, peakBound := 64.0, 128.0
	if raceEnabled() {
		heldBound, peakBound = 400, 500
	}
	t.Logf("RSS: %.0f MiB before, %.0f MiB after (bound +%.0f); peak %.0f MiB (bound +%.0f; peak measured: %v; race detector: %v)",
		rss0, rss1, heldBound, peak, peakBound, peakOK, raceEnabled())
	assert.Less(t, rss1-rss0, heldBound, "memory held after the hostile bodies (MiB over the start)")
	if peakOK {
		assert.Less(t, peak-rss0, peakBound, "memory at the peak (MiB over the start)")
	}
}

// deepBodies sends 1,000,000-deep bodies, each ten times: every one is
// refused with 400 json_too_deep, the array at the root in under 50 ms
// (the fastest of ten, which a loaded machine's hiccups do not skew).
func deepBodies(t *testing.T, send func([]byte) (int, string, time.Duration)) {
	const depth = 1_000_000
	deepArray := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"array at the root", deepArray},
		{"array in messages", []byte(`{"model":"chat","messages":` + string(deepArray) + `}`)},
		{"objects in a message", []byte(`{"model":"chat","messages":[{"role":"user","content":` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `}]}`)},
	} {
		fastest := time.Hour
		for range 10 {
			status, body, d := send(tc.body)
			require.Equal(t, 400, status, "%s: %s", tc.name, body)
			require.True(t, strings.HasPrefix(body, "json_too_deep "), "%s: %s", tc.name, body)
			fastest = min(fastest, d)
		}
		t.Logf("1,000,000-deep %s (%d bytes): 400 json_too_deep in %v (fastest of 10)", tc.name, len(tc.body), fastest)
		if tc.name == "array at the root" {
			assert.Less(t, fastest, 50*time.Millisecond, "a 1,000,000-deep body is refused in under 50 ms")
		}
	}
}

// manyMessages is a chat body of n short messages.
func manyMessages(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"chat","max_tokens":10,"messages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":"user","content":"message %d"}`, i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// Slowloris: 200 connections send part of a request and stall, or trickle
// it a byte at a time. Normal requests are served meanwhile, the server
// closes every stalled connection once its read timeout passes, and
// memory stays bounded.
func TestChaosSlowloris(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	cfg := gatewayConfig(t, "", route{name: "chat", upstream: "up", backends: []string{up.URL + "/v1"}})
	relaxTimeouts(cfg)
	cfg.DataDir = t.TempDir()
	const readTimeout = 300 * time.Millisecond
	cfg.Server.ReadTimeout = readTimeout
	base, _ := startGateway(t, cfg)
	addr := strings.TrimPrefix(strings.TrimSuffix(base, "/v1"), "http://")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	normal := func() (int, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o := sendChat(ctx, client, base, testKey, chatReq(false))
		require.NoError(t, o.err)
		return o.status, o.end.Sub(o.start)
	}
	status, _ := normal()
	require.Equal(t, 200, status)
	rss0 := rssOrSkip(t)
	goroutines0 := runtime.NumGoroutine()

	const conns = 200
	partialLine := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + testKey[:5]
	partialBody := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + testKey +
		"\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n" + `{"model":"chat","messages":[`
	trickle := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Padding: " + strings.Repeat("a", 10_000)
	type result struct {
		kind   string
		closed time.Duration // from the dial to the server's close
		err    error
	}
	results := make(chan result, conns)
	opened := make(chan struct{}, conns)
	stopTrickle := make(chan struct{})
	defer close(stopTrickle)
	for i := range conns {
		kind := "partial headers"
		switch {
		case i%4 == 2:
			kind = "partial body"
		case i%4 == 3:
			kind = "trickle"
		}
		go func() {
			dialed := time.Now()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				opened <- struct{}{}
				results <- result{kind: kind, err: err}
				return
			}
			defer conn.Close()
			switch kind {
			case "partial headers":
				_, err = io.WriteString(conn, partialLine)
			case "partial body":
				_, err = io.WriteString(conn, partialBody)
			case "trickle":
				// One byte every 50 ms, for as long as the server takes
				// them: a deadline, not an idle timeout, must end it.
				go func() {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for j := 0; j < len(trickle); j++ {
						if _, err := conn.Write([]byte{trickle[j]}); err != nil {
							return
						}
						select {
						case <-stopTrickle:
							return
						case <-tick.C:
						}
					}
				}()
			}
			opened <- struct{}{}
			if err != nil {
				results <- result{kind: kind, err: err}
				return
			}
			// The server must close it: EOF (after a 408, say) or a reset,
			// well before this deadline.
			_ = conn.SetReadDeadline(time.Now().Add(readTimeout + 10*time.Second))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				results <- result{kind: kind, err: fmt.Errorf("still open %v after the dial", time.Since(dialed).Round(time.Millisecond))}
				return
			}
			results <- result{kind: kind, closed: time.Since(dialed)}
		}()
	}
	for range conns {
		<-opened
	}
	allOpen := time.Now()
	rssOpen := rssOrSkip(t)

	// Meanwhile, normal requests are served.
	var slowest time.Duration
	for range 10 {
		status, d := normal()
		assert.Equal(t, 200, status, "a normal request while %d connections stall", conns)
		slowest = max(slowest, d)
	}
	t.Logf("10 normal requests served while the stalled connections were open (slowest %v), done %v after all %d had sent their part",
		slowest.Round(time.Millisecond), time.Since(allOpen).Round(time.Millisecond), conns)

	byKind := map[string][]time.Duration{}
	for range conns {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v", r.kind, r.err)
			continue
		}
		byKind[r.kind] = append(byKind[r.kind], r.closed)
	}
	for kind, closed := range byKind {
		slices.Sort(closed)
		t.Logf("%d %s connections closed by the server after %v (fastest), %v (median), %v (slowest); read timeout %v",
			len(closed), kind, closed[0].Round(time.Millisecond), closed[len(closed)/2].Round(time.Millisecond), closed[len(closed)-1].Round(time.Millisecond), readTimeout)
		assert.Less(t, closed[len(closed)-1], readTimeout+3*time.Second, "%s: every stalled connection is closed soon after the read timeout", kind)
		assert.GreaterOrEqual(t, closed[0], readTimeout-50*time.Millisecond, "%s: and not before it", kind)
	}

	// Once they are gone, the server holds nothing for them.
	status, _ = normal()
	assert.Equal(t, 200, status)
	rss1 := rssOrSkip(t)
	// fasthttp keeps a served connection's worker goroutine idle for 10 s
	// (its worker pool), so the count is printed, not bounded: RSS is.
	goroutines := runtime.NumGoroutine()
	// Measured on a two-core machine: about 12 MiB over the start with the
	// 200 connections open, and after, under -race (5 and 2 without). The
	// bounds allow several times that.
	const openBound, afterBound = 64.0, 32.0
	t.Logf("RSS: %.0f MiB before, %.0f MiB with %d stalled connections (bound +%.0f), %.0f MiB after (bound +%.0f); goroutines %d before, %d after (idle fasthttp workers)",
		rss0, rssOpen, conns, openBound, rss1, afterBound, goroutines0, goroutines)
	assert.Less(t, rssOpen-rss0, openBound, "memory with the stalled connections open (MiB over the start)")
	assert.Less(t, rss1-rss0, afterBound, "memory after they are closed (MiB over the start)")
}
