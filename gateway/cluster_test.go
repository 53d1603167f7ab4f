package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/internal/redistest"
)

// figure logs one of the scale-out tests' figures and, when
// $SWITCHYARD_ARTIFACTS is set (CI), appends it to scale-out.txt there, so
// that CI prints them without running the tests twice.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if dir := os.Getenv("SWITCHYARD_ARTIFACTS"); dir != "" {
		f, err := os.OpenFile(filepath.Join(dir, "scale-out.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Logf("artifacts: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%s: %s\n", t.Name(), line)
	}
}

// scaleTenant is one tenant of the scale-out tests, with its own key and
// a daily USD budget (0: none) and failure mode.
type scaleTenant struct {
	name, mode string
	budgetUSD  float64
}

func (s scaleTenant) key() string { return "sk-scale-" + s.name }

// scaleConfig is a gateway on store redisYAML (quotas and ledger) with a
// self-hosted deployment first (b0) and, when cloud is set, a proprietary
// one after it (b1); one key per tenant, a budget per tenant.
func scaleConfig(t *testing.T, redisYAML string, tenants []scaleTenant, upstreams ...string) *config.Config {
	t.Helper()
	var y strings.Builder
	y.WriteString("server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: warn}\npolicy: {audit: none}\n")
	y.WriteString("ledger: {store: redis, shards: 4}\nbackends:\n")
	for i, u := range upstreams {
		kind := "selfhosted"
		if i > 0 {
			kind = "proprietary"
		}
		fmt.Fprintf(&y, "  - {name: b%d, kind: %s, base_url: %s, api_key: %s, price: {input_per_mtok: 1, output_per_mtok: 1}, timeouts: {first_byte: 10s}}\n", i, kind, u, backendKey)
	}
	y.WriteString("models:\n  - name: m\n    deployments:\n")
	for i := range upstreams {
		fmt.Fprintf(&y, "      - {backend: b%d, model: up}\n", i)
	}
	y.WriteString("keys:\n")
	for _, tn := range tenants {
		fmt.Fprintf(&y, "  - {id: k-%s, sha256: %s, tenant: %s, team: ops}\n", tn.name, gateway.HashKey(tn.key()), tn.name)
	}
	fmt.Fprintf(&y, "admin:\n  keys:\n    - {id: ops, sha256: %s}\n", gateway.HashKey(adminKey))
	y.WriteString("quotas:\n  store: redis\n" + redisYAML + "  limits:\n")
	for _, tn := range tenants {
		fmt.Fprintf(&y, "    - {scope: tenant, id: %s, usd_per_day: %g, on_store_error: %s}\n", tn.name, tn.budgetUSD, tn.mode)
	}
	cfg, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y.String())
	return cfg
}

// startReplica starts one more replica of cfg, with a data directory of
// its own (its ledger spool).
func startReplica(t *testing.T, cfg *config.Config) (string, *gateway.Server) {
	c := *cfg
	c.DataDir = t.TempDir()
	return startGateway(t, &c)
}

// scaleResult is one request's outcome as the client saw it.
type scaleResult struct {
	status   int
	code     string
	kind     string // X-Switchyard-Kind
	costPico int64  // X-Switchyard-Cost
}

func postScale(base, key string) (scaleResult, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scaleResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := scaleResult{status: resp.StatusCode, code: gjson.GetBytes(body, "error.code").Str, kind: resp.Header.Get(gateway.HeaderKind)}
	if c := resp.Header.Get(gateway.HeaderCost); c != "" {
		r.costPico = picoUSD(c)
	}
	return r, nil
}

// picoUSD reads a decimal dollar amount exactly.
func picoUSD(s string) int64 {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return -1
	}
	r.Mul(r, big.NewRat(1e12, 1))
	return new(big.Int).Quo(r.Num(), r.Denom()).Int64()
}

// ledgerByTenant reads the shared ledger's totals per tenant through one
// replica's costs API: requests and picodollars.
func ledgerByTenant(t *testing.T, base string) (map[string][2]int64, int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/switchyard/costs?group_by=tenant&from=2000-01-01", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var out struct {
		Totals []struct {
			Group    string `json:"group"`
			Requests int64  `json:"requests"`
			CostUSD  string `json:"cost_usd"`
		} `json:"totals"`
		Pending struct {
			Entries int64 `json:"entries"`
		} `json:"pending"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	m := map[string][2]int64{}
	for _, g := range out.Totals {
		m[g.Group] = [2]int64{g.Requests, picoUSD(g.CostUSD)}
	}
	return m, out.Pending.Entries
}

// Three replicas share a 6-node Redis Cluster (3 primaries, 3 replicas).
// 300 concurrent requests from six tenants, each with a budget that fits
// 30, spread over the replicas: exactly 30 are admitted per budget, the
// tenants' counters live on more than one primary, and the shared ledger
// holds every admitted request at the cost its client was told.
func TestRedisClusterExactAcrossReplicas(t *testing.T) {
	cl := redistest.NewCluster(t, 3, 1)
	var names []string
	primaries := map[string]bool{}
	for i := range 6 {
		name := fmt.Sprintf("acme%d", i)
		p, _ := cl.PrimaryOf("sy:{t:" + name + "}")
		primaries[p.Addr()] = true
		names = append(names, name)
	}
	require.GreaterOrEqual(t, len(primaries), 2, "the tenants' counters span several primaries")
	figure(t, "cluster: six tenants on %d of 3 primaries", len(primaries))
	checkExactAcrossReplicas(t, "cluster", fmt.Sprintf("  redis: {addrs: [%s], timeout: 3s, wait_replicas: 1, wait_timeout: 2s}\n", strings.Join(cl.Addrs(), ", ")), names)
}

// The same through Sentinels: one primary, two replicas, three Sentinels.
func TestRedisSentinelExactAcrossReplicas(t *testing.T) {
	s := redistest.NewSentinels(t, 2, 3)
	checkExactAcrossReplicas(t, "sentinel", fmt.Sprintf("  redis: {addrs: [%s], master_name: %s, timeout: 3s, wait_replicas: 1, wait_timeout: 2s}\n", strings.Join(s.Addrs(), ", "), s.MasterName),
		[]string{"acme0", "acme1", "acme2", "acme3", "acme4", "acme5"})
}

// checkExactAcrossReplicas sends 50 concurrent requests per tenant (300
// for six), round robin over three replicas sharing store, against a
// budget per tenant that fits 30; upstream answers wait until every
// refusal is in, so no settlement frees budget meanwhile.
func checkExactAcrossReplicas(t *testing.T, topology, store string, names []string) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	const perBudget, perTenant = 30, 50
	var tenants []scaleTenant
	for _, name := range names {
		tenants = append(tenants, scaleTenant{name: name, mode: "fail_closed", budgetUSD: float64(perBudget*estimate) / 1e6})
	}
	cfg := scaleConfig(t, store, tenants, up.URL+"/v1")
	var bases []string
	for range 3 {
		b, _ := startReplica(t, cfg)
		bases = append(bases, b)
	}

	total := perTenant * len(tenants)
	refusalsWanted := int64(total - perBudget*len(tenants))
	var refused atomic.Int64
	results := make([]scaleResult, total)
	var wg sync.WaitGroup
	for i := range total {
		wg.Go(func() {
			tn := tenants[i%len(tenants)]
			r, err := postScale(bases[i%len(bases)], tn.key())
			assert.NoError(t, err)
			results[i] = r
			if r.status != 200 && refused.Add(1) == refusalsWanted {
				close(release)
			}
		})
	}
	wg.Wait()
	if refused.Load() < refusalsWanted {
		t.Fatalf("only %d refused", refused.Load())
	}

	admitted := map[string]int{}
	told := map[string]int64{}
	for i, r := range results {
		tn := tenants[i%len(tenants)].name
		switch r.status {
		case 200:
			admitted[tn]++
			told[tn] += r.costPico
		case 429:
			assert.Equal(t, "insufficient_quota", r.code)
		default:
			t.Errorf("%s: status %d %s", tn, r.status, r.code)
		}
	}
	for _, tn := range tenants {
		assert.Equal(t, perBudget, admitted[tn.name], "admitted for %s", tn.name)
	}
	// The ledger is shared and exact: every admitted request once, at the
	// cost its client saw.
	require.Eventually(t, func() bool {
		got, _ := ledgerByTenant(t, bases[1])
		for _, tn := range tenants {
			if got[tn.name] != [2]int64{int64(admitted[tn.name]), told[tn.name]} {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond)
	got, _ := ledgerByTenant(t, bases[2])
	for _, tn := range tenants {
		figure(t, "%s: %s admitted %d of %d (budget fits %d); ledger %d entries, %d pUSD; clients were told %d pUSD",
			topology, tn.name, admitted[tn.name], perTenant, perBudget, got[tn.name][0], got[tn.name][1], told[tn.name])
	}
}

// failoverLoad sends requests for each tenant from several workers, round
// robin over the replicas, until stop closes, recording what clients saw
// and when.
type failoverLoad struct {
	mu      sync.Mutex
	results map[string][]timedResult
	wg      sync.WaitGroup
	stop    chan struct{}
}

type timedResult struct {
	at time.Time
	scaleResult
}

func startFailoverLoad(t *testing.T, bases []string, tenants []scaleTenant, workers int) *failoverLoad {
	l := &failoverLoad{results: map[string][]timedResult{}, stop: make(chan struct{})}
	for _, tn := range tenants {
		for w := range workers {
			l.wg.Go(func() {
				// Paced (200 r/s per worker at most), so that the load
				// does not starve the cluster's own heartbeats on a small
				// machine.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for i := w; ; i++ {
					select {
					case <-l.stop:
						return
					case <-tick.C:
					}
					r, err := postScale(bases[i%len(bases)], tn.key())
					if err != nil {
						t.Errorf("%s: %v", tn.name, err)
						return
					}
					l.mu.Lock()
					l.results[tn.name] = append(l.results[tn.name], timedResult{time.Now(), r})
					l.mu.Unlock()
				}
			})
		}
	}
	return l
}

// since is what tenant's clients saw after t0.
func (l *failoverLoad) since(tenant string, t0 time.Time) []timedResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []timedResult
	for _, r := range l.results[tenant] {
		if !r.at.Before(t0) {
			out = append(out, r)
		}
	}
	return out
}

// outage is how long, after t0, tenant's requests stopped being served
// normally (any answer other than 200 from the first deployment, or a
// 429): from the first such answer to the last.
func (l *failoverLoad) outage(tenant string, t0 time.Time) (time.Duration, int) {
	var first, last time.Time
	n := 0
	for _, r := range l.since(tenant, t0) {
		if r.status == 429 || r.status == 200 && r.kind != "selfhosted" {
			continue
		}
		n++
		if first.IsZero() {
			first = r.at
		}
		last = r.at
	}
	if first.IsZero() {
		return 0, 0
	}
	return last.Sub(first), n
}

// A primary of the cluster fails over under load, first by hand (CLUSTER
// FAILOVER on its replica: no write is lost), then by dying (SIGKILL; its
// replica takes over after the node timeout, and the killed node comes
// back as a replica, as a restarted pod would). Three tenants on that
// primary, one per failure mode, each with a budget that runs out during
// the test:
//
//   - fail_closed: refused with 503 while the store is unavailable, never
//     over its budget (wait_replicas: 1 means no acknowledged reservation
//     or settlement is lost with the primary);
//   - fail_open: served throughout; over its budget at most by what was
//     served while the store was unavailable (the stated bound);
//   - local_only: served throughout, by the self-hosted deployment only
//     while the store was unavailable; within the same bound.
//
// The ledger loses nothing: entries that failed during the outage are
// spooled and replayed, and in the end it holds every request served, at
// the cost its client was told.
func TestRedisClusterFailover(t *testing.T) {
	cl := redistest.NewCluster(t, 3, 1)
	victim, _ := cl.PrimaryOf("sy:{t:probe}")
	var primary, replica *redistest.Proc
	checkFailover(t, failoverTopology{
		name:  "cluster",
		store: fmt.Sprintf("  redis: {addrs: [%s], timeout: 500ms, wait_replicas: 1, wait_timeout: 250ms}\n", strings.Join(cl.Addrs(), ", ")),
		onVictim: func(tenant string) bool {
			p, _ := cl.PrimaryOf("sy:{t:" + tenant + "}")
			return p == victim
		},
		byHand: func() {
			primary, replica = cl.PrimaryAndReplica("sy:{t:probe}")
			require.NoError(t, replica.Client().Do(context.Background(), "CLUSTER", "FAILOVER").Err())
			require.Eventually(t, func() bool {
				p, _ := cl.PrimaryOf("sy:{t:probe}")
				return p == replica
			}, 20*time.Second, 20*time.Millisecond)
			cl.WaitOK()
		},
		// The new primary dies; its replica (the old primary) takes over
		// after the node timeout; the dead node restarts as a replica, as
		// a restarted pod would (with one replica per primary, WAIT 1
		// needs it back).
		kill: func() (promoted time.Duration) {
			t1 := time.Now()
			replica.Kill()
			require.Eventually(t, func() bool {
				p, _ := cl.PrimaryOf("sy:{t:probe}")
				return p == primary
			}, 30*time.Second, 50*time.Millisecond)
			promoted = time.Since(t1)
			replica.Restart()
			cl.WaitOK()
			return promoted
		},
	})
}

// The same through Sentinels (one primary, two replicas, three
// Sentinels): SENTINEL FAILOVER by hand, then the new primary killed and
// restarted (Sentinel makes it a replica of the one it promoted). Every
// write waits for both replicas (wait_replicas: 2): with one of two, a
// write confirmed by one replica is lost when Sentinel promotes the other
// or when the demoted primary took it after the promotion.
func TestRedisSentinelFailover(t *testing.T) {
	s := redistest.NewSentinels(t, 2, 3)
	procs := append([]*redistest.Proc{s.Primary}, s.Replicas...)
	current := func() *redistest.Proc {
		for _, p := range procs {
			if p.Addr() == s.MasterAddr() {
				return p
			}
		}
		return nil
	}
	// Sentinels promote a replica only once it is in sync and known.
	waitPromoted := func(old *redistest.Proc) {
		require.Eventually(t, func() bool {
			p := current()
			if p == nil || p == old {
				return false
			}
			role, err := p.Client().Do(context.Background(), "ROLE").Slice()
			return err == nil && len(role) > 0 && role[0] == "master"
		}, 30*time.Second, 20*time.Millisecond)
	}
	checkFailover(t, failoverTopology{
		name:     "sentinel",
		store:    fmt.Sprintf("  redis: {addrs: [%s], master_name: %s, timeout: 500ms, wait_replicas: 2, wait_timeout: 250ms}\n", strings.Join(s.Addrs(), ", "), s.MasterName),
		onVictim: func(string) bool { return true },
		byHand: func() {
			old := current()
			require.NoError(t, s.Sentinels[0].Client().Do(context.Background(), "SENTINEL", "FAILOVER", s.MasterName).Err())
			waitPromoted(old)
		},
		kill: func() time.Duration {
			old := current()
			t1 := time.Now()
			old.Kill()
			waitPromoted(old)
			promoted := time.Since(t1)
			old.Restart()
			require.Eventually(t, func() bool {
				info, err := current().Client().Info(context.Background(), "replication").Result()
				return err == nil && strings.Count(info, "state=online") == 2
			}, 30*time.Second, 20*time.Millisecond, "the restarted node never rejoined as a replica")
			return promoted
		},
	})
}

// failoverTopology is what checkFailover needs of a replicated Redis.
type failoverTopology struct {
	name  string
	store string // quotas.redis, as YAML
	// onVictim reports whether tenant's counters are on the primary that
	// fails over.
	onVictim func(tenant string) bool
	// byHand fails the primary over gracefully and returns once its
	// replica serves.
	byHand func()
	// kill kills the primary and returns once a replica serves, with how
	// long that took.
	kill func() time.Duration
}

func checkFailover(t *testing.T, topo failoverTopology) {
	// The deployments: self-hosted (b0) answers 200, the cloud one (b1)
	// too; the route tries the cloud one first by default, so local_only
	// shows itself by the kind serving.
	cloud := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "cloud", 10, 5, 0))
	})
	local := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "local", 10, 5, 0))
	})
	// Tenants whose counters share one primary, one per mode.
	var tenants []scaleTenant
	budget := 1500 * 15e-6 // 1,500 requests at their actual cost
	for _, mode := range []string{"fail_closed", "fail_open", "local_only"} {
		for i := 0; ; i++ {
			name := fmt.Sprintf("%s-%d", strings.ReplaceAll(mode, "_", ""), i)
			if topo.onVictim(name) {
				tenants = append(tenants, scaleTenant{name: name, mode: mode, budgetUSD: budget})
				break
			}
		}
	}
	cfg := scaleConfig(t, topo.store, tenants, cloud.URL+"/v1", local.URL+"/v1")
	// The cloud deployment first: local_only must skip it in an outage.
	cfg.Models[0].Deployments[0], cfg.Models[0].Deployments[1] = cfg.Models[0].Deployments[1], cfg.Models[0].Deployments[0]
	var bases []string
	for range 3 {
		b, _ := startReplica(t, cfg)
		bases = append(bases, b)
	}
	load := startFailoverLoad(t, bases, tenants, 2)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(load.stop)
			load.wg.Wait()
		}
	}
	t.Cleanup(stop)
	// waitAnswered waits until each tenant has had n answers since t0 as
	// with a healthy store: 200 from the cloud or 429 for its budget.
	waitAnswered := func(t0 time.Time, n int) {
		t.Helper()
		ok := assert.Eventually(t, func() bool {
			for _, tn := range tenants {
				got := 0
				for _, r := range load.since(tn.name, t0) {
					if r.status == 429 || r.status == 200 && r.kind == "proprietary" {
						got++
					}
				}
				if got < n {
					return false
				}
			}
			return true
		}, 30*time.Second, 10*time.Millisecond)
		if !ok {
			for _, tn := range tenants {
				seen := map[string]int{}
				for _, r := range load.since(tn.name, time.Time{}) {
					seen[fmt.Sprintf("%d %s %s", r.status, r.code, r.kind)]++
				}
				figure(t, "%s: %v", tn.name, seen)
			}
			t.FailNow()
		}
	}
	waitAnswered(time.Time{}, 20)

	// 1. By hand: the replica takes over; nothing is lost.
	t0 := time.Now()
	topo.byHand()
	waitAnswered(time.Now(), 20)
	windows := [][2]time.Time{{t0, time.Now().Add(2 * time.Second)}}
	for _, tn := range tenants {
		d, n := load.outage(tn.name, t0)
		figure(t, "%s, failover by hand: %s: %d requests not served normally over %s", topo.name, tn.name, n, d.Round(time.Millisecond))
	}

	// 2. The primary dies.
	t1 := time.Now()
	promoted := topo.kill()
	recovered := time.Since(t1)
	waitAnswered(time.Now(), 20)
	windows = append(windows, [2]time.Time{t1, time.Now().Add(2 * time.Second)})
	for _, tn := range tenants {
		d, n := load.outage(tn.name, t1)
		figure(t, "%s, primary killed: %s: %d requests not served normally over %s (replica promoted after %s, store writable and replicated after %s)",
			topo.name, tn.name, n, d.Round(time.Millisecond), promoted.Round(time.Millisecond), recovered.Round(time.Millisecond))
	}

	// 3. Let every budget run out, then stop.
	require.Eventually(t, func() bool {
		for _, tn := range tenants {
			rs := load.since(tn.name, time.Now().Add(-300*time.Millisecond))
			if len(rs) == 0 || rs[len(rs)-1].status != 429 {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "budgets never ran out")
	stop()

	// What each mode did, against its budget.
	budgetPico := int64(budget*1e12 + 0.5)
	perRequest := int64(15e6) // 15 tokens at $1/Mtok
	for _, tn := range tenants {
		var servedN, duringOutage, servedInWindows int
		var told int64
		for _, r := range load.since(tn.name, time.Time{}) {
			switch {
			case r.status == 200:
				servedN++
				told += r.costPico
				for _, w := range windows {
					if !r.at.Before(w[0]) && r.at.Before(w[1]) {
						servedInWindows++
					}
				}
			case r.status == 503:
				assert.Equal(t, "fail_closed", tn.mode, "%s got a 503 (%s)", tn.name, r.code)
				duringOutage++
			case r.status == 429:
				assert.Equal(t, "insufficient_quota", r.code)
			default:
				t.Errorf("%s: status %d %s", tn.name, r.status, r.code)
			}
		}
		// fail_closed never passes its budget; requests served while the
		// store was unavailable (fail_open, local_only) reserved nothing:
		// the stated bound is their whole usage, here at most every
		// request served during the failovers.
		bound := budgetPico
		if tn.mode != "fail_closed" {
			bound += int64(servedInWindows) * perRequest
		}
		assert.LessOrEqual(t, told, bound, "%s (%s) spent past its bound", tn.name, tn.mode)
		figure(t, "%s: %s (%s): served %d, told %d pUSD against a budget of %d pUSD (bound %d pUSD); refused for the store %d",
			topo.name, tn.name, tn.mode, servedN, told, budgetPico, bound, duringOutage)
		// No ledger entry lost, none twice.
		tenant := tn
		require.Eventually(t, func() bool {
			got, pending := ledgerByTenant(t, bases[0])
			return pending == 0 && got[tenant.name] == [2]int64{int64(servedN), told}
		}, 30*time.Second, 100*time.Millisecond, "%s: ledger does not match what clients were told", tn.name)
	}
}
