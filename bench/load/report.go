package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// successTarget is the success ratio a rate must reach to count as sustained.
const successTarget = 0.999

// lateSendWarning is the direct target's late-send p99 above which the report
// warns that the harness itself is struggling. Up to ~1ms is ordinary Go
// scheduler and timer jitter on a busy 2-core box.
const lateSendWarning = 2 * time.Millisecond

// report accumulates the steps of a run and renders them as markdown.
type report struct {
	started     time.Time
	api         string    // -api
	gatewayAPI  apiFormat // what the gateway was sent
	gatewayURL  string
	directURL   string
	model       string
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	pid         int
	steps       []*stepResult
	interrupted bool
	gatewayMem  *procStatus // at the end of the run; nil without -pid
}

// markdown renders the report.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Switchyard load benchmark, gateway API %s, %s\n\n", rep.api, rep.started.UTC().Format("2006-01-02 15:04 MST"))
	gw := "`" + rep.gatewayURL + "`"
	if rep.pid > 0 {
		gw += fmt.Sprintf(" (pid %d)", rep.pid)
	}
	fmt.Fprintf(&b, "- Gateway %s; direct `%s`; model `%s`.\n", gw, rep.directURL, rep.model)
	fmt.Fprintf(&b, "- The gateway is sent %s (`POST …%s`, marker `%s` / `%s`); the direct target chat completions.\n",
		rep.gatewayAPI.desc, rep.gatewayAPI.path, rep.gatewayAPI.jsonMarker, rep.gatewayAPI.streamMarker)
	fmt.Fprintf(&b, "- Harness host: %s.\n", hostDescription())
	fmt.Fprintf(&b, "- Each rate and target: %s warm-up, then %s of open-loop constant-rate requests; request timeout %s.\n",
		rep.warmup, rep.duration, rep.timeout)
	b.WriteString("- Latency (p50/p90/p99) runs from each request's *scheduled* send time (or its actual send, if up to 1ms early) " +
		"to its response body's EOF, so it is corrected for coordinated omission; TTFB ends at the first body byte. " +
		"*Late send* is how far behind schedule the harness sent. *vegeta* p50/p99 are vegeta's own uncorrected figures " +
		"(from the actual send). Success = complete 2xx responses / requests scheduled. " +
		"*direct* is the floor of harness + mock on this box; *added* = gateway − direct.\n")
	if rep.interrupted {
		b.WriteString("- **Interrupted: partial results.**\n")
	}

	for _, mode := range rep.modes() {
		rep.writeMode(&b, mode)
	}
	if m := rep.gatewayMem; m != nil {
		fmt.Fprintf(&b, "\nGateway memory (pid %d): peak RSS (VmHWM) %s, RSS at end %s.\n",
			rep.pid, fmtKB(m.hwmKB), fmtKB(m.rssKB))
	}
	return b.String()
}

// modes lists the modes present, in run order.
func (rep *report) modes() []string {
	var modes []string
	for _, s := range rep.steps {
		if !slices.Contains(modes, s.mode) {
			modes = append(modes, s.mode)
		}
	}
	return modes
}

// find returns the step for mode, rate and target, or nil.
func (rep *report) find(mode string, rate int, target string) *stepResult {
	for _, s := range rep.steps {
		if s.mode == mode && s.rate == rate && s.target == target {
			return s
		}
	}
	return nil
}

// writeMode writes the table, verdict and notes of one mode.
func (rep *report) writeMode(b *strings.Builder, mode string) {
	fmt.Fprintf(b, "\n### Mode: %s\n\n", mode)
	b.WriteString("| rate/s | target | success | ok/s | p50 | p90 | p99 | TTFB p50 | TTFB p99 | late send p99 | vegeta p50 | vegeta p99 | harness CPU | gateway CPU | gateway RSS |\n")
	b.WriteString("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")

	var rates []int
	for _, s := range rep.steps {
		if s.mode == mode && !slices.Contains(rates, s.rate) {
			rates = append(rates, s.rate)
		}
	}
	var (
		best      *stepResult
		bestAdded string
		notes     []string
	)
	for _, rate := range rates {
		d, g := rep.find(mode, rate, "direct"), rep.find(mode, rate, "gateway")
		for _, s := range []*stepResult{d, g} {
			if s != nil {
				writeRow(b, s)
			}
		}
		if d == nil || g == nil {
			continue
		}
		lat, ttfb, veg := g.lat.minus(d.lat), g.ttfb.minus(d.ttfb), g.vegeta.minus(d.vegeta)
		fmt.Fprintf(b, "| %d | **added** | | | %s | %s | %s | %s | %s | | %s | %s | | | |\n", rate,
			lat.fmtDelta(lat.p50), lat.fmtDelta(lat.p90), lat.fmtDelta(lat.p99),
			ttfb.fmtDelta(ttfb.p50), ttfb.fmtDelta(ttfb.p99), veg.fmtDelta(veg.p50), veg.fmtDelta(veg.p99))
		if g.success() >= successTarget && !g.interrupted && (best == nil || rate > best.rate) {
			best, bestAdded = g, lat.fmtDelta(lat.p99)
		}
		if d.success() < successTarget {
			notes = append(notes, fmt.Sprintf("At %d req/s the direct target itself reached only %s: the harness and mock "+
				"cannot sustain this rate on this box, so the gateway row measures the box, not the gateway.",
				rate, fmtPercent(d.success())))
		} else if d.sendLagP99 > lateSendWarning {
			notes = append(notes, fmt.Sprintf("At %d req/s the harness sent 1%% of direct requests more than %s late: "+
				"it is stalling or near saturation, which inflates both targets' tails "+
				"(latencies still count from the scheduled time).", rate, fmtDur(d.sendLagP99)))
		}
	}

	b.WriteString("\n")
	if best != nil {
		fmt.Fprintf(b, "**%s: highest rate with gateway success ≥ %s: %d req/s** (gateway p99 %s, added p99 %s).\n",
			mode, fmtPercent(successTarget), best.rate, fmtDur(best.lat.p99), bestAdded)
	} else {
		fmt.Fprintf(b, "**%s: the gateway reached success ≥ %s at none of the tested rates.**\n", mode, fmtPercent(successTarget))
	}
	for _, s := range rep.steps {
		if s.mode == mode && len(s.errors) > 0 {
			notes = append(notes, fmt.Sprintf("%d req/s %s failures: %s.", s.rate, s.target, topErrors(s.errors, 3)))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(b, "\n- %s", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
}

// writeRow writes one target's table row.
func writeRow(b *strings.Builder, s *stepResult) {
	gwCPU, gwRSS := "", ""
	if s.gatewayCPU >= 0 {
		gwCPU = fmt.Sprintf("%.0f%%", s.gatewayCPU)
	}
	if s.gatewayRSS >= 0 {
		gwRSS = fmtKB(s.gatewayRSS)
	}
	name := s.target
	if s.interrupted {
		name += " (interrupted)"
	}
	fmt.Fprintf(b, "| %d | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %s |\n",
		s.rate, name, fmtPercent(s.success()), s.throughput(),
		s.lat.fmt(s.lat.p50), s.lat.fmt(s.lat.p90), s.lat.fmt(s.lat.p99),
		s.ttfb.fmt(s.ttfb.p50), s.ttfb.fmt(s.ttfb.p99), fmtDur(s.sendLagP99),
		s.vegeta.fmt(s.vegeta.p50), s.vegeta.fmt(s.vegeta.p99),
		s.harnessCPU, gwCPU, gwRSS)
}

// topErrors formats the n most frequent errors as "count× error; ...".
func topErrors(errs map[string]int, n int) string {
	keys := slices.SortedFunc(maps.Keys(errs), func(a, b string) int {
		return cmp.Or(cmp.Compare(errs[b], errs[a]), cmp.Compare(a, b))
	})
	var parts []string
	for i, k := range keys {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d more kinds", len(keys)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %s", errs[k], strings.ReplaceAll(k, "|", `\|`)))
	}
	return strings.Join(parts, "; ")
}

// fmt formats percentile d of l, or "–" when l has no samples.
func (l latencies) fmt(d time.Duration) string {
	if l.n == 0 {
		return "–"
	}
	return fmtDur(d)
}

// minus returns l - o percentile by percentile, with no samples (n 0)
// unless both sides have some.
func (l latencies) minus(o latencies) latencies {
	if l.n == 0 || o.n == 0 {
		return latencies{}
	}
	return latencies{min(l.n, o.n), l.p50 - o.p50, l.p90 - o.p90, l.p99 - o.p99}
}

// fmtDelta formats difference d taken from l, or "–" when l has no samples.
func (l latencies) fmtDelta(d time.Duration) string {
	if l.n == 0 {
		return "–"
	}
	return fmtDelta(d)
}

// fmtDur formats a latency in milliseconds with a precision suited to its size.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d < 10*time.Millisecond && d > -10*time.Millisecond:
		return fmt.Sprintf("%.3fms", ms)
	case d < time.Second && d > -time.Second:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// fmtDelta formats a latency difference with an explicit sign.
func fmtDelta(d time.Duration) string {
	if d >= 0 {
		return "+" + fmtDur(d)
	}
	return "−" + fmtDur(-d)
}

// fmtPercent formats a ratio as a percentage precise enough for 99.9% checks.
func fmtPercent(r float64) string { return fmt.Sprintf("%.3f%%", 100*r) }

// fmtKB formats a kB figure as MiB.
func fmtKB(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
