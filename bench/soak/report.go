package main

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is everything the markdown report is made of.
type report struct {
	o              options
	bin            string
	redisVersion   string
	tmp            string
	runStart       time.Time
	loadDur        time.Duration
	tally          *tally
	mem            memStats
	samples        []sample
	metrics        []metricPoint
	faults         []faultRecord
	plan           []faultPlan
	ledger         ledgerResult
	metricsText    string
	gwExit         string
	logCounts      []logCount
	spoolDirExists bool
	upstreams      []*upstream
	gatewayDied    error
}

// render writes the report and says whether a verdict failed.
func (r *report) render() (string, bool) {
	t := r.tally
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	failed := false
	var verdicts []string
	verdict := func(ok bool, format string, args ...any) {
		mark := "PASS"
		if !ok {
			mark, failed = "FAIL", true
		}
		verdicts = append(verdicts, fmt.Sprintf("- **%s** %s", mark, fmt.Sprintf(format, args...)))
	}
	info := func(format string, args ...any) {
		verdicts = append(verdicts, fmt.Sprintf("- info: %s", fmt.Sprintf(format, args...)))
	}

	// Verdicts first, shown first.
	var fiveFallback, fiveSolo int
	for _, x := range t.fiveXX {
		if x.model == modelSolo {
			fiveSolo++
		} else {
			fiveFallback++
		}
	}
	led := r.ledger
	clientCost := ratDecimal(t.costSum)
	if r.gatewayDied != nil {
		verdict(false, "the gateway stayed up: %v", r.gatewayDied)
	}
	if led.ok {
		diff := new(big.Rat).Sub(led.cost, t.costSum)
		verdict(led.cost.Cmp(t.costSum) == 0, "ledger total cost = client-visible total: ledger %s USD, clients %s USD (ledger − clients = %s)",
			led.costStr, clientCost, ratDecimal(diff))
		verdict(led.requests == t.billed, "ledger entries = responses that showed a cost: ledger %d, clients %d (ledger − clients = %+d)",
			led.requests, t.billed, led.requests-t.billed)
		verdict(led.drained, "ledger drained: pending %d at the end (max seen %d) after %s, %d polls%s",
			led.pending, led.maxPending, fmtDur(led.waited), led.polls, map[bool]string{true: "", false: "; the costs API has no \"pending\" field: counted as 0"}[led.pendingPresent])
	} else {
		verdict(false, "ledger read: %s", orNone(led.err))
	}
	verdict(fiveFallback == 0, "no 5xx where a fallback existed (route %q): %d; on %q (no fallback, expected under upstream faults): %d",
		modelFallback, fiveFallback, modelSolo, fiveSolo)
	verdict(len(t.malformedBad) == 0, "every malformed body answered 4xx: %d of %d were not", len(t.malformedBad), t.byKind[kindMalformed]["2xx"]+t.byKind[kindMalformed]["4xx"]+t.byKind[kindMalformed]["5xx"]+t.byKind[kindMalformed]["err"])
	verdict(len(t.unexpected4xx) == 0, "no well-formed request answered 4xx: %d", len(t.unexpected4xx))
	verdict(len(t.transport) == 0 && t.jsonNoCost == 0 && t.streamsNoCost == 0,
		"every response was read whole and showed its cost: transport errors %d, 200 JSON without %s %d, 200 streams without a cost comment %d",
		len(t.transport), costHeader, t.jsonNoCost, t.streamsNoCost)
	if r.o.maxSlope > 0 {
		verdict(r.mem.slopeOK && r.mem.slopeMiBh <= r.o.maxSlope, "RSS slope over the second half %.1f MiB/h <= %.1f", r.mem.slopeMiBh, r.o.maxSlope)
	} else {
		info("RSS slope over the second half: %s (min %.1f MiB, max %.1f MiB)", slopeText(r.mem), r.mem.minRSS, r.mem.maxRSS)
	}
	info("gateway %s", r.gwExit)

	p("# Switchyard soak, %s\n\n", r.runStart.UTC().Format("2006-01-02 15:04 MST"))
	p("`go run ./bench/soak -duration %s -rate %g` (faults %v, redis kill %s, solo share %g, upstream fault %d%%)\n\n",
		r.o.duration, r.o.rate, r.o.faults, r.o.redisKill, r.o.soloShare, r.o.failPct)
	p("Machine: %d CPUs (%s), %s, redis-server %s. The load generator, the mock upstreams, Redis and the gateway share the machine.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), r.redisVersion)

	if r.mem.n > 0 {
		p("Machine load (1-minute average) during the run: mean %.1f, max %.1f on %d CPUs.", r.mem.meanLoad, r.mem.maxLoad, runtime.NumCPU())
		if r.mem.maxLoad > float64(runtime.NumCPU()) {
			p(" **The machine was oversubscribed**: latencies and Redis timeouts (100 ms) reflect that as much as the gateway.")
		}
		p("\n\n")
	}

	p("## Verdict\n\n%s\n\n", strings.Join(verdicts, "\n"))

	// Requests.
	achieved := float64(t.sent) / r.loadDur.Seconds()
	p("## Requests\n\n")
	p("Load ran %s: %d requests sent (%.1f/s, 4 preflight requests included), %d dropped at the in-flight cap of %d.\n\n",
		fmtDur(r.loadDur), t.sent, achieved, t.dropped, r.o.maxInflight)
	classes := []string{"2xx", "4xx", "5xx", "err"}
	p("| kind | total | 2xx | 4xx | 5xx | transport error | p50 (2xx) | p99 (2xx) |\n|:--|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, k := range []string{kindJSON, kindStream, kindMalformed} {
		m := t.byKind[k]
		tot := int64(0)
		for _, c := range classes {
			tot += m[c]
		}
		p50, p99 := pct(t.latencies[k], 0.50), pct(t.latencies[k], 0.99)
		p("| %s | %d | %d | %d | %d | %d | %s | %s |\n", k, tot, m["2xx"], m["4xx"], m["5xx"], m["err"], p50, p99)
	}
	p("| **all** | %d | %d | %d | %d | %d | | |\n\n", t.byClass["2xx"]+t.byClass["4xx"]+t.byClass["5xx"]+t.byClass["err"]+t.byClass["3xx"],
		t.byClass["2xx"], t.byClass["4xx"], t.byClass["5xx"], t.byClass["err"])
	p("| route | fallback | 2xx | 4xx | 5xx | transport error |\n|:--|:--|--:|--:|--:|--:|\n")
	for _, m := range []string{modelFallback, modelSolo} {
		c := t.byModel[m]
		p("| %s | %s | %d | %d | %d | %d |\n", m, map[bool]string{true: "yes", false: "none"}[m == modelFallback], c["2xx"], c["4xx"], c["5xx"], c["err"])
	}
	p("\nStreams answered 200: %d ended with `data: [DONE]`, %d with an error event (cut upstream after the first chunk: no fallback is possible then), %d showed no cost comment.\n\n",
		t.streamsDone, t.streamsCut, t.streamsNoCost)
	if len(t.variants) > 0 {
		p("Malformed bodies (status: count):\n\n")
		for _, v := range sortedKeys(t.variants) {
			var parts []string
			for _, st := range sortedKeys(t.variants[v]) {
				parts = append(parts, fmt.Sprintf("%d: %d", st, t.variants[v][st]))
			}
			p("- %s — %s\n", v, strings.Join(parts, ", "))
		}
		p("\n")
	}

	// 5xx and other anomalies.
	if len(t.fiveXX) > 0 {
		p("### 5xx answers\n\n%d where a fallback existed, %d on %s (no fallback).\n\n", fiveFallback, fiveSolo, modelSolo)
		p("| at | kind | route | fallback | status | code | faults active (±) |\n|--:|:--|:--|:--|--:|:--|:--|\n")
		rows := t.fiveXX
		slices.SortStableFunc(rows, func(a, b result) int { return int(a.at - b.at) })
		shown := 0
		for _, x := range rows {
			// Every 5xx where a fallback existed is listed; the expected
			// ones on the solo route only up to 40.
			if x.model == modelSolo && shown >= 40 {
				continue
			}
			shown++
			fb := "yes"
			if x.model == modelSolo {
				fb = "none"
			}
			p("| +%s | %s | %s | %s | %d | %s | %s |\n", fmtDur(x.at), x.kind, x.model, fb, x.status, orNone(x.code),
				orNone(strings.Join(active(r.faults, x.at, 12*time.Second), ", ")))
		}
		if n := len(rows) - shown; n > 0 {
			p("\n(%d more 5xx on %s not listed.)\n", n, modelSolo)
		}
		p("\n")
	}
	anomalies := func(title string, rs []result) {
		if len(rs) == 0 {
			return
		}
		p("### %s: %d\n\n", title, len(rs))
		for i, x := range rs {
			if i == 20 {
				p("- … %d more\n", len(rs)-20)
				break
			}
			p("- +%s %s %s %s status %d code %s %s\n", fmtDur(x.at), x.kind, x.model, x.variant, x.status, orNone(x.code), x.err)
		}
		p("\n")
	}
	anomalies("Malformed bodies not answered 4xx", t.malformedBad)
	anomalies("Well-formed requests answered 4xx", t.unexpected4xx)
	anomalies("Transport errors", t.transport)

	// Faults.
	p("## Faults\n\n")
	if len(r.faults) == 0 {
		p("None injected.\n\n")
	} else {
		counts := map[string]int{}
		for _, f := range r.faults {
			counts[f.kind]++
		}
		var parts []string
		for _, k := range []string{faultRedisKill, faultRedisSleep, faultUpstream, faultStreamCut} {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, counts[k]))
		}
		p("%d injected (%d planned): %s.\n\n", len(r.faults), len(r.plan), strings.Join(parts, ", "))
		p("| at | wall clock (UTC) | fault | lasted | note |\n|--:|:--|:--|--:|:--|\n")
		for _, f := range r.faults {
			p("| +%s | %s | %s | %s | %s |\n", fmtDur(f.start), f.wall.UTC().Format("15:04:05.000"), f.kind, fmtDur(f.end-f.start), f.note)
		}
		p("\n")
	}

	// Memory.
	m := r.mem
	p("## Gateway memory (`/proc/PID/status`, every %s)\n\n", r.o.sampleEvery)
	if m.n == 0 {
		p("No samples.\n\n")
	} else {
		p("| samples | RSS first | RSS min | RSS max | RSS last | peak (VmHWM) | slope, second half | threads | open fds |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		p("| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %s | %d–%d | %d–%d |\n\n",
			m.n, m.firstRSS, m.minRSS, m.maxRSS, m.lastRSS, m.hwm, slopeText(m), m.minThreads, m.maxThreads, m.minFDs, m.maxFDs)
		p("RSS over the run (MiB, one value per tenth of the samples): %s\n\n", rssSketch(r.samples))
		if r.loadDur < 20*time.Minute {
			p("(A slope fitted over less than ten minutes says little: allocator warm-up and fault phases dominate it.)\n\n")
		}
	}
	if len(r.metrics) > 0 {
		var parts []string
		for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "switchyard_ledger_pending", "switchyard_quota_store_errors_total"} {
			lo, hi, ok := metricRange(r.metrics, name)
			if !ok {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s–%s", name, fmtNum(lo), fmtNum(hi)))
		}
		if len(parts) > 0 {
			p("From /metrics every %s (%d readings): %s.\n\n", r.o.metricsEvery, len(r.metrics), strings.Join(parts, "; "))
		}
	}

	// Ledger.
	p("## Ledger\n\n")
	p("| | requests | cost (USD) |\n|:--|--:|--:|\n")
	p("| clients: responses that showed a cost | %d | %s |\n", t.billed, clientCost)
	p("| clients: 2xx answers | %d | |\n", t.byClass["2xx"])
	if led.ok {
		p("| ledger (`GET /v1/switchyard/costs`, the run's window) | %d | %s |\n", led.requests, led.costStr)
	} else {
		p("| ledger | unreadable: %s | |\n", led.err)
	}
	mt := parseProm(r.metricsText)
	if v, ok := mt["switchyard_cost_USD_total"]; ok {
		p("| metrics `switchyard_cost_USD_total` (float) | | %.9f |\n", v)
	}
	p("\n")
	if led.ok {
		pend := "absent (treated as 0)"
		if led.pendingPresent {
			pend = fmt.Sprintf("%d entries, %d bytes", led.pending, led.pendingBytes)
		}
		p("Pending in the spool at the end: %s; waited %s (%d polls).\n", pend, fmtDur(led.waited), led.polls)
	}
	spool := "no"
	if r.spoolDirExists {
		spool = "yes"
	}
	p("Spool directory `data_dir/ledger-spool` exists after the run: %s.\n", spool)
	lost := 0
	for _, c := range r.logCounts {
		if c.msg == "cost ledger append failed" {
			lost += c.n
		}
	}
	p("Gateway log lines \"cost ledger append failed\" (an entry lost): %d.\n\n", lost)
	if led.ok && (led.cost.Cmp(t.costSum) != 0 || led.requests != t.billed) {
		p("**Why the ledger may not match:**\n\n")
		if !r.spoolDirExists || !led.pendingPresent {
			p("- This build does not spool ledger entries Redis refuses (no `ledger-spool` directory under data_dir, or no `pending` in the costs API): an entry settled while Redis was down or sleeping past the append's 1 s is lost. This is the feature being implemented (gateway.New using openLedger).\n")
		}
		if lost > 0 {
			p("- The gateway logged %d lost ledger appends.\n", lost)
		}
		if !led.settled {
			p("- The totals had not settled when the drain timeout (%s) passed.\n", r.o.drain)
		}
		if led.requests > t.billed {
			p("- The ledger has more entries than clients saw costs: a request billed whose client never saw its cost (transport errors: %d).\n", len(t.transport))
		}
		p("\n")
	}
	var lm []string
	for _, name := range sortedKeys(mt) {
		if strings.HasPrefix(name, "switchyard_cost") || strings.HasPrefix(name, "switchyard_savings") || strings.HasPrefix(name, "switchyard_ledger") ||
			strings.HasPrefix(name, "switchyard_quota_store") || strings.HasPrefix(name, "switchyard_fallback") {
			lm = append(lm, fmt.Sprintf("- `%s` %s", name, fmtNum(mt[name])))
		}
	}
	if len(lm) > 0 {
		p("Switchyard counters in /metrics at the end (summed over labels):\n\n%s\n\n", strings.Join(lm, "\n"))
	}

	// Upstreams.
	p("## Mock upstreams\n\n| upstream | calls | 503 injected | streams cut | 400 | 401 |\n|:--|--:|--:|--:|--:|--:|\n")
	for _, u := range r.upstreams {
		p("| %s | %d | %d | %d | %d | %d |\n", u.name, u.calls.Load(), u.failed.Load(), u.cut.Load(), u.rejected.Load(), u.unauthorized.Load())
	}
	p("\n")

	// Gateway log.
	p("## Gateway\n\n%s; binary %s.\n\n", strings.ToUpper(r.gwExit[:1])+r.gwExit[1:], r.bin)
	if len(r.logCounts) > 0 {
		p("Log lines at warn and above (level: message × count):\n\n")
		for i, c := range r.logCounts {
			if i == 20 {
				p("- … %d more kinds\n", len(r.logCounts)-20)
				break
			}
			ex := ""
			if c.example != "" {
				ex = " — e.g. " + c.example
			}
			p("- %s: %s × %d%s\n", c.level, c.msg, c.n, ex)
		}
		p("\n")
	}
	return b.String(), failed
}

func slopeText(m memStats) string {
	if !m.slopeOK {
		return "n/a (too few samples)"
	}
	return fmt.Sprintf("%+.1f MiB/h (%d samples)", m.slopeMiBh, m.slopeN)
}

func rssSketch(s []sample) string {
	if len(s) == 0 {
		return ""
	}
	var parts []string
	step := max(len(s)/10, 1)
	for i := 0; i < len(s); i += step {
		parts = append(parts, fmt.Sprintf("%.0f", float64(s[i].rssKiB)/1024))
	}
	if (len(s)-1)%step != 0 {
		parts = append(parts, fmt.Sprintf("%.0f", float64(s[len(s)-1].rssKiB)/1024))
	}
	return strings.Join(parts, " → ")
}

func metricRange(ps []metricPoint, name string) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, pt := range ps {
		if v, has := pt.vals[name]; has {
			lo, hi, ok = min(lo, v), max(hi, v), true
		}
	}
	return lo, hi, ok
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.6g", v)
}

func pct(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return fmtDur(s[max(i, 0)])
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func orNone(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
