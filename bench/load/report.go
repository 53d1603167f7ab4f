package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// successTarget is the success ratio a rate must reach to count as sustained.
const successTarget = 0.999

// lateSendWarning is the direct target's late-send p99 above which the report
// warns that the harness itself is struggling. Up to ~1ms is ordinary Go
// scheduler and timer jitter on a busy 2-core box.
const lateSendWarning = 2 * time.Millisecond

// targetInfo describes one target, or direct, for the report.
type targetInfo struct {
	name   string
	url    string // base URL, as given
	pid    int    // 0: unknown
	api    string // request format's name
	format apiFormat
	desc   string      // -describe
	idle   *procStatus // before any load; nil when unknown
	end    *procStatus // at the end of the run; nil when unknown
}

// report accumulates the steps of a run and renders them as markdown.
type report struct {
	started     time.Time
	api         string // -api
	direct      targetInfo
	targets     []targetInfo // in run order
	baseline    string       // target name the summary's ratios are taken to; "" none
	rates       []int        // the fixed rates, -rates
	model       string
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	ceiling     bool
	ceilingMax  int
	steps       []*stepResult
	interrupted bool
}

// markdown renders the report.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Switchyard load benchmark, gateway API %s, %s\n\n", rep.api, rep.started.UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("- Targets, each measured right after *direct* at every rate:\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "  - **%s** `%s`%s: sent %s (`POST …%s`, marker `%s` / `%s`).", t.name, t.url, pidNote(t.pid),
			t.format.desc, t.format.path, t.format.jsonMarker, t.format.streamMarker)
		if t.desc != "" {
			b.WriteString(" " + t.desc)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "- *direct*: the mock upstream `%s`%s, sent %s; model `%s`.\n",
		rep.direct.url, pidNote(rep.direct.pid), apiFormats["chat"].desc, rep.model)
	fmt.Fprintf(&b, "- Harness host: %s.\n", hostDescription())
	fmt.Fprintf(&b, "- Each rate and target: %s warm-up, then %s of open-loop constant-rate requests; request timeout %s.\n",
		rep.warmup, rep.duration, rep.timeout)
	b.WriteString("- Latency (p50/p90/p99) runs from each request's *scheduled* send time (or its actual send, if up to 1ms early) " +
		"to its response body's EOF, so it is corrected for coordinated omission; TTFB ends at the first body byte. " +
		"*Late send* is how far behind schedule the harness sent. *vegeta* p50/p99 are vegeta's own uncorrected figures " +
		"(from the actual send). Success = complete 2xx responses / requests scheduled. " +
		"*direct* is the floor of harness + mock on this box; *added* = target − direct.\n")
	fmt.Fprintf(&b, "- *Sustained*: success ≥ %s and p99 ≤ %s.", fmtPercent(successTarget), fmtDur(sustainedP99))
	if rep.ceiling {
		fmt.Fprintf(&b, " After the fixed rates each target's ceiling was searched per mode: +25%% steps (multiples of %d r/s, "+
			"at most %s) while sustained, then one bisection step between the last sustained and the first failed rate "+
			"(downward by 20%% steps when no fixed rate was sustained).", ceilingGrain, fmtRate(rep.ceilingMax))
	} else {
		b.WriteString(" No ceiling search (-ceiling): sustained rates are the highest fixed rate sustained.")
	}
	b.WriteString("\n")
	if rep.interrupted {
		b.WriteString("- **Interrupted: partial results.**\n")
	}

	rep.writeSummary(&b)
	for _, mode := range rep.modes() {
		rep.writeMode(&b, mode)
	}
	var mem []string
	for _, t := range append([]targetInfo{rep.direct}, rep.targets...) {
		var m []string
		if t.idle != nil {
			m = append(m, fmtKB(t.idle.rssKB)+" before any load")
		}
		if t.end != nil {
			m = append(m, fmtKB(t.end.hwmKB)+" peak (VmHWM)", fmtKB(t.end.rssKB)+" at the end")
		}
		if len(m) > 0 {
			mem = append(mem, t.name+" "+strings.Join(m, ", "))
		}
	}
	if len(mem) > 0 {
		fmt.Fprintf(&b, "\nMemory (RSS): %s.\n", strings.Join(mem, "; "))
	}
	return b.String()
}

// pidNote is " (pid N)", or "" for pid 0.
func pidNote(pid int) string {
	if pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
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

// find returns the fixed-rate step for mode, rate and target, or nil.
func (rep *report) find(mode string, rate int, target string) *stepResult {
	for _, s := range rep.steps {
		if s.mode == mode && s.rate == rate && s.target == target && !s.ceiling {
			return s
		}
	}
	return nil
}

// summaryRate is the fixed rate the summary's latency columns are taken
// at: 1,000 r/s if it was one of -rates, else the lowest.
func (rep *report) summaryRate() int {
	rates := rep.rates
	if len(rates) == 0 {
		for _, s := range rep.steps {
			if !s.ceiling {
				rates = append(rates, s.rate)
			}
		}
	}
	if len(rates) == 0 || slices.Contains(rates, 1000) {
		return 1000
	}
	return slices.Min(rates)
}

// sustainedRate is a target's sustained rate in one mode.
type sustainedRate struct {
	tested  bool // any step ran
	rate    int  // highest rate sustained; 0: none
	atLeast bool // no higher rate failed, so the ceiling may be higher
	lowest  int  // lowest rate tried
}

// sustainedIn returns target's sustained rate in mode over every step,
// fixed and ceiling search.
func (rep *report) sustainedIn(mode, target string) sustainedRate {
	var r sustainedRate
	for _, s := range rep.steps {
		if s.mode != mode || s.target != target {
			continue
		}
		if !r.tested || s.rate < r.lowest {
			r.lowest = s.rate
		}
		r.tested = true
		if s.sustained() && s.rate > r.rate {
			r.rate = s.rate
		}
	}
	r.atLeast = r.rate > 0
	for _, s := range rep.steps {
		if s.mode == mode && s.target == target && !s.sustained() && s.rate > r.rate {
			r.atLeast = false
		}
	}
	return r
}

// fmt formats r, with its ratio to base unless base is nil.
func (r sustainedRate) fmt(base *sustainedRate) string {
	switch {
	case !r.tested:
		return "–"
	case r.rate == 0:
		return "< " + fmtRate(r.lowest)
	}
	s := fmtRate(r.rate)
	if r.atLeast {
		s = "≥ " + s
	}
	if base != nil && base.rate > 0 {
		s += fmtRatio(float64(r.rate), float64(base.rate), 2)
	}
	return s
}

// summaryRow holds one row of the summary table.
type summaryRow struct {
	name           string
	p50, p99, ttfb delta // added at the summary rate
	json, stream   sustainedRate
	idleKB, peakKB int64 // <0 when unknown
}

// summaryRow computes target's row; for direct the added columns stay empty.
func (rep *report) summaryRow(t targetInfo, rate int) summaryRow {
	row := summaryRow{name: t.name, idleKB: -1, peakKB: -1,
		json: rep.sustainedIn("json", t.name), stream: rep.sustainedIn("stream", t.name)}
	if t.idle != nil {
		row.idleKB = t.idle.rssKB
	}
	if t.end != nil {
		row.peakKB = t.end.hwmKB
	}
	if t.name == "direct" {
		return row
	}
	if d, g := rep.find("json", rate, "direct"), rep.find("json", rate, t.name); d != nil && g != nil {
		lat := g.lat.minus(d.lat)
		row.p50 = delta{lat.p50, lat.n > 0, !g.sustained()}
		row.p99 = delta{lat.p99, lat.n > 0, !g.sustained()}
	}
	if d, g := rep.find("stream", rate, "direct"), rep.find("stream", rate, t.name); d != nil && g != nil {
		ttfb := g.ttfb.minus(d.ttfb)
		row.ttfb = delta{ttfb.p50, ttfb.n > 0, !g.sustained()}
	}
	return row
}

// delta is an added latency, when known.
type delta struct {
	d           time.Duration
	ok          bool
	unsustained bool // the target did not sustain the rate it is taken at
}

// addedCell formats an added latency with its ratio to base's (nil: none).
func addedCell(l delta, base *delta) string {
	if !l.ok {
		return "–"
	}
	s := fmtDelta(l.d)
	if l.unsustained {
		return s + " (not sustained)"
	}
	if base != nil && base.ok && !base.unsustained {
		s += fmtRatio(float64(l.d), float64(base.d), 1)
	}
	return s
}

// rssCell formats "idle / peak MiB" with ratios to base's (nil: none).
func rssCell(r summaryRow, base *summaryRow) string {
	if r.idleKB < 0 && r.peakKB < 0 {
		return "–"
	}
	mib := func(kb int64) string {
		if kb < 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", float64(kb)/1024)
	}
	s := mib(r.idleKB) + " / " + mib(r.peakKB) + " MiB"
	if base != nil && r.idleKB > 0 && r.peakKB > 0 && base.idleKB > 0 && base.peakKB > 0 {
		s += fmt.Sprintf(" (%s / %s)", ratioText(float64(r.idleKB), float64(base.idleKB), 1),
			ratioText(float64(r.peakKB), float64(base.peakKB), 1))
	}
	return s
}

// writeSummary writes the summary table: one row per target, the baseline
// first, then direct.
func (rep *report) writeSummary(b *strings.Builder) {
	rate := rep.summaryRate()
	at := "@" + fmtThousands(rate) + " r/s"
	b.WriteString("\n### Summary\n\n")
	fmt.Fprintf(b, "Added latencies at %s", fmtRate(rate))
	if rate != 1000 {
		b.WriteString(" (the lowest fixed rate: 1,000 r/s was not run)")
	}
	b.WriteString(", JSON for p50/p99, streaming for TTFB; *added* = target − direct at that rate. " +
		"Sustained rates are the highest rate with success ≥ " + fmtPercent(successTarget) + " and p99 ≤ " + fmtDur(sustainedP99) +
		" (≥: no higher rate failed). RSS: VmRSS before any load / VmHWM at the end. A negative *added* figure " +
		"(usually a p99) is within this box's noise: direct's tail was the slower one.")
	var base *summaryRow
	var rows []summaryRow
	for _, t := range rep.targets {
		row := rep.summaryRow(t, rate)
		if t.name == rep.baseline {
			rows = slices.Insert(rows, 0, row)
		} else {
			rows = append(rows, row)
		}
	}
	if rep.baseline != "" && len(rows) > 0 && rows[0].name == rep.baseline {
		base = &rows[0]
		fmt.Fprintf(b, " Ratios (×) are to **%s**.", rep.baseline)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(b, "| target | added p50 %s | added p99 %s | stream TTFB added p50 %s | sustained JSON | sustained stream | RSS idle / peak |\n", at, at, at)
	b.WriteString("|:---|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range rows {
		name, ref := "**"+r.name+"**", base
		if base != nil && i == 0 {
			name += " (baseline)"
			ref = nil
		}
		var bp50, bp99, bttfb *delta
		var bjson, bstream *sustainedRate
		if ref != nil {
			bp50, bp99, bttfb, bjson, bstream = &ref.p50, &ref.p99, &ref.ttfb, &ref.json, &ref.stream
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", name,
			addedCell(r.p50, bp50), addedCell(r.p99, bp99), addedCell(r.ttfb, bttfb),
			r.json.fmt(bjson), r.stream.fmt(bstream), rssCell(r, ref))
	}
	d := rep.summaryRow(rep.direct, rate)
	fmt.Fprintf(b, "| *direct* (harness + mock, the floor) | | | | %s | %s | %s |\n",
		d.json.fmt(nil), d.stream.fmt(nil), rssCell(d, nil))
	if d.json.tested {
		b.WriteString("\nA target's sustained rate at or near *direct*'s is bounded by this box (harness + mock share its cores), not by the target.\n")
	}
}

// writeMode writes the tables, verdicts and notes of one mode.
func (rep *report) writeMode(b *strings.Builder, mode string) {
	fmt.Fprintf(b, "\n### Mode: %s\n\n", mode)
	writeHeader(b)

	var rates []int
	for _, s := range rep.steps {
		if s.mode == mode && !s.ceiling && !slices.Contains(rates, s.rate) {
			rates = append(rates, s.rate)
		}
	}
	var notes []string
	for _, rate := range rates {
		d := rep.find(mode, rate, "direct")
		if d != nil {
			writeRow(b, d)
		}
		for _, t := range rep.targets {
			if g := rep.find(mode, rate, t.name); g != nil {
				writeRow(b, g)
			}
		}
		if d == nil {
			continue
		}
		for _, t := range rep.targets {
			g := rep.find(mode, rate, t.name)
			if g == nil {
				continue
			}
			lat, ttfb, veg := g.lat.minus(d.lat), g.ttfb.minus(d.ttfb), g.vegeta.minus(d.vegeta)
			fmt.Fprintf(b, "| %d | **added** %s | | | %s | %s | %s | %s | %s | | %s | %s | | | |\n", rate, t.name,
				lat.fmtDelta(lat.p50), lat.fmtDelta(lat.p90), lat.fmtDelta(lat.p99),
				ttfb.fmtDelta(ttfb.p50), ttfb.fmtDelta(ttfb.p99), veg.fmtDelta(veg.p50), veg.fmtDelta(veg.p99))
		}
		if d.success() < successTarget {
			notes = append(notes, fmt.Sprintf("At %d req/s the direct target itself reached only %s: the harness and mock "+
				"cannot sustain this rate on this box, so the target rows measure the box, not the targets.",
				rate, fmtPercent(d.success())))
		} else if d.sendLagP99 > lateSendWarning {
			notes = append(notes, fmt.Sprintf("At %d req/s the harness sent 1%% of direct requests more than %s late: "+
				"it is stalling or near saturation, which inflates every target's tail "+
				"(latencies still count from the scheduled time).", rate, fmtDur(d.sendLagP99)))
		}
	}

	b.WriteString("\n")
	var verdicts []string
	for _, t := range append([]targetInfo{rep.direct}, rep.targets...) {
		r := rep.sustainedIn(mode, t.name)
		if !r.tested {
			continue
		}
		v := t.name + " " + r.fmt(nil)
		for _, s := range rep.steps {
			if s.mode == mode && s.target == t.name && s.sustained() && s.rate == r.rate {
				v += " (p99 " + fmtDur(s.lat.p99) + ")"
				break
			}
		}
		verdicts = append(verdicts, v)
	}
	fmt.Fprintf(b, "**%s, highest sustained rate** (success ≥ %s, p99 ≤ %s): %s.\n",
		mode, fmtPercent(successTarget), fmtDur(sustainedP99), strings.Join(verdicts, "; "))

	rep.writeCeiling(b, mode)

	for _, s := range rep.steps {
		if s.mode == mode && len(s.errors) > 0 {
			kind := ""
			if s.ceiling {
				kind = " (ceiling search)"
			}
			notes = append(notes, fmt.Sprintf("%d req/s %s%s failures: %s.", s.rate, s.target, kind, topErrors(s.errors, 3)))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(b, "\n- %s", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
}

// writeCeiling writes the ceiling search's steps of one mode, if any.
func (rep *report) writeCeiling(b *strings.Builder, mode string) {
	var steps []*stepResult
	for _, s := range rep.steps {
		if s.mode == mode && s.ceiling {
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return
	}
	fmt.Fprintf(b, "\n#### Ceiling search, %s\n\n", mode)
	writeHeader(b)
	for _, s := range steps {
		writeRow(b, s)
	}
	b.WriteString("\n")
	for _, t := range append([]targetInfo{rep.direct}, rep.targets...) {
		var path []string
		start := 0
		for _, s := range rep.steps {
			if s.mode != mode || s.target != t.name {
				continue
			}
			if !s.ceiling {
				if s.sustained() {
					start = max(start, s.rate)
				}
				continue
			}
			mark := "✗"
			if s.sustained() {
				mark = "✓"
			}
			path = append(path, fmtThousands(s.rate)+" "+mark)
		}
		if len(path) == 0 {
			continue
		}
		from := "from " + fmtRate(start)
		if start == 0 {
			from = "none of the fixed rates sustained"
		}
		fmt.Fprintf(b, "- %s (%s): %s ⇒ %s\n", t.name, from, strings.Join(path, " → "), rep.sustainedIn(mode, t.name).fmt(nil))
	}
}

// writeHeader writes the header of a per-step table.
func writeHeader(b *strings.Builder) {
	b.WriteString("| rate/s | target | success | ok/s | p50 | p90 | p99 | TTFB p50 | TTFB p99 | late send p99 | vegeta p50 | vegeta p99 | harness CPU | target CPU | target RSS |\n")
	b.WriteString("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
}

// writeRow writes one target's table row.
func writeRow(b *strings.Builder, s *stepResult) {
	gwCPU, gwRSS := "", ""
	if s.targetCPU >= 0 {
		gwCPU = fmt.Sprintf("%.0f%%", s.targetCPU)
	}
	if s.targetRSS >= 0 {
		gwRSS = fmtKB(s.targetRSS)
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

// fmtThousands formats n with commas between thousands: 12,500.
func fmtThousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// fmtRate formats a request rate: "3,500 r/s", or "none" for 0.
func fmtRate(n int) string {
	if n == 0 {
		return "none"
	}
	return fmtThousands(n) + " r/s"
}

// ratioText formats x/base with prec decimals and a ×, or "" when either
// is not positive (a ratio to a zero or negative difference means nothing).
func ratioText(x, base float64, prec int) string {
	if x <= 0 || base <= 0 {
		return ""
	}
	return strconv.FormatFloat(x/base, 'f', prec, 64) + "×"
}

// fmtRatio is ratioText in parentheses after a space, or "".
func fmtRatio(x, base float64, prec int) string {
	if r := ratioText(x, base, prec); r != "" {
		return " (" + r + ")"
	}
	return ""
}
