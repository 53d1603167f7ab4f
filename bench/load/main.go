// Command load is Switchyard's open-loop load benchmark. It measures the
// latency a gateway adds on top of a zero-delay OpenAI-compatible upstream,
// and compares gateways (and a bare reverse proxy) with each other.
//
// The systems under test are named targets. Each -target is
//
//	NAME=URL[,pid=PID][,api=FORMAT]
//
// (the flag repeats, one target each): NAME labels the target in the
// report (letters, digits, '.', '_' and '-'; not "direct"), URL is its
// OpenAI-style base URL, PID (optional) is its process, whose CPU use per
// step and memory (VmRSS before any load, VmHWM at the end) are read from
// /proc, and FORMAT (optional, default -api) is the request format it is
// sent: a bare reverse proxy in front of the mock takes api=chat, like the
// direct target. -describe NAME=TEXT adds a line about a target to the
// report header (e.g. what it has switched on). The older -gateway URL (with
// -pid PID) still works: it is the target "gateway", sent -api, ahead of any
// -target.
//
// For each mode (non-streaming "json", plus "stream" with -stream) and each
// rate in -rates, it attacks first the upstream directly (-direct; the floor)
// and then each target in the order given, with the same request, at a
// constant rate, for -duration each, after a -warmup of that target at that
// rate. With -ceiling it then searches, per mode, each one's sustained
// ceiling (see "Ceiling search" below). It prints a markdown report to
// stdout and appends it to -out.
//
//	load -direct http://127.0.0.1:18081/v1 -direct-pid $MOCK \
//	     -target nginx=http://127.0.0.1:18082/v1,pid=$NGINX,api=chat \
//	     -target off=http://127.0.0.1:18083/v1,pid=$OFF \
//	     -target on=http://127.0.0.1:18080/v1,pid=$ON \
//	     -baseline nginx -key sk-bench -stream -ceiling -out bench/results.md
//
//	load -gateway http://127.0.0.1:18080/v1 -direct http://127.0.0.1:18081/v1 \
//	     -key sk-bench -stream -pid $(pidof switchyard) -out bench/results.md
//
// The report opens with a summary table, one row per target (the -baseline
// first) and a last row for direct: added p50 and p99 (target − direct) in
// json mode and added TTFB p50 in stream mode, all at 1,000 req/s (or at the
// lowest of -rates when 1,000 is not one of them), the sustained rate in
// each mode and RSS idle / peak, each with its ratio to the -baseline
// target's figure ("+0.590ms (5.4×)", "3,500 r/s (0.42×)"). The detailed
// per-mode tables follow, with direct, every target and an "added" row per
// target at each rate, then the ceiling search's steps.
//
// With -api responses or -api messages a target is sent the same request
// (one short user message) as an OpenAI Responses request (POST /responses,
// store false) or an Anthropic Messages request (POST /messages, key in
// x-api-key), which Switchyard translates to chat completions and back; the
// direct target is still sent chat, so "added" covers the translation.
//
// With -direct empty the mock upstream (bench/internal/mock) is started
// in-process on a free loopback port. Only loopback URLs are accepted.
//
// # Sustained rates and the ceiling search
//
// A rate is sustained when success >= 99.9% and the corrected p99 <= 200ms.
// With -ceiling, after the fixed rates of a mode, each target (direct first)
// is searched on its own: starting from the highest fixed rate it
// sustained, the rate steps up by 25% (rounded to a multiple of 250 r/s)
// while sustained, and once a step fails (or a fixed rate above already
// failed) one bisection step between the last sustained and the first
// failed rate ends the search. Steps are capped at -ceiling-max. A target
// that sustained none of the fixed rates is searched downward the same way
// (20% down per step, not below 250 r/s). Every step has the same warm-up
// and duration as a fixed one. From 5,000 r/s a search takes 2 to 5 steps
// to the ceilings of a 2-core box, from 1,000 r/s up to twice that. The
// summary reports the highest sustained rate seen, as "≥ N" when no higher
// rate failed (the search hit -ceiling-max, or ran without -ceiling).
//
// # What is measured
//
// The attack is open-loop: request n of a step is scheduled at
// began+(n+1)/rate (vegeta.ConstantPacer's schedule) whether or not earlier
// ones have completed, so a slow target cannot slow the offered load down.
//
// vegeta itself stamps Result.Timestamp when a worker goroutine actually
// starts the request (time.Now() in Attacker.hit), not when the request was
// scheduled, and Result.Latency runs from that instant to the end of reading
// the body. When the pacer or the workers fall behind (CPU starvation, all
// MaxWorkers busy) the queueing delay before the send is invisible in
// vegeta's latencies, and requests still unsent when the duration elapses are
// silently dropped: classic coordinated omission. This harness therefore:
//
//   - measures every latency from the request's scheduled time,
//     began+(Seq+1)*interval, to the moment its response body hit EOF;
//   - lets the pacer release requests up to 1ms early (leadPacer), because
//     Go's timers on Linux wake up to ~1ms late when the process is idle
//     (epoll_wait has millisecond resolution); an early request is measured
//     from its actual send, so this harness timer slop is not charged while
//     any real lateness is;
//   - reports "late send" (actual send minus scheduled time) so harness
//     saturation is visible;
//   - stops the pacer after exactly the scheduled number of requests, giving
//     it up to 1s past the step's end to catch up, and counts requests still
//     unsent as failures (success = complete 2xx responses / requests
//     scheduled);
//   - reports vegeta's own uncorrected p50/p99 (from vegeta.Metrics) next to
//     the corrected figures, for comparison.
//
// The headline percentiles are exact (nearest rank over every successful
// request), not vegeta's t-digest estimates. TTFB is measured like latency
// but ends at the first response body byte (for streams: the first SSE
// event). A response counts as successful only if it is 2xx and its body is
// complete: it contains the format's marker and was read to EOF within
// -timeout. The markers (apiFormats) are "choices" (json) and [DONE] (stream)
// for chat, "output":[ and the response.completed event for Responses,
// a text block in "content" and the message_stop event for Messages.
//
// # Harness cost
//
// Everything shares one machine: the harness, the mock upstream and the
// targets compete for the same CPU cores (two on the reference box), and
// vegeta's per-request allocations make the harness itself CPU-heavy at
// thousands of requests per second (on the 2-core reference box roughly 0.3
// core at 5000 req/s non-streaming and 0.55 core streaming). The "direct"
// rows are therefore the floor of harness plus mock plus loopback, and the
// "added" rows subtract that floor from each target's rows. The target rows
// also pay for the CPU the target takes away from harness and mock. Harness
// CPU is reported per step (it includes the mock when that runs
// in-process); when "direct" cannot sustain a rate, that rate measures the
// box, not the target, and a target's ceiling near direct's is the box's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/bench/internal/mock"
)

// options are the parsed command-line flags.
type options struct {
	gatewayURL string
	directURL  string
	directPID  int
	targets    targetFlag
	describe   describeFlag
	baseline   string
	key        string
	model      string
	rates      []int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	stream     bool
	api        string
	pid        int
	ceiling    bool
	ceilingMax int
	out        string
}

func main() {
	var (
		o     options
		rates string
	)
	flag.StringVar(&o.gatewayURL, "gateway", "", "base `URL` of a target named \"gateway\" (sent -api, process -pid), e.g. http://127.0.0.1:18080/v1; loopback only")
	flag.Var(&o.targets, "target", "a target, `NAME=URL[,pid=PID][,api=FORMAT]`; repeat for several, run in the order given (loopback only)")
	flag.Var(&o.describe, "describe", "`NAME=TEXT`: a line about target NAME for the report header; repeatable")
	flag.StringVar(&o.baseline, "baseline", "", "`NAME` of the target the summary's ratios are taken to, e.g. a bare reverse proxy (empty: no ratios)")
	flag.StringVar(&o.directURL, "direct", "", "mock upstream base `URL`, e.g. http://127.0.0.1:18081/v1; empty starts the mock in-process")
	flag.IntVar(&o.directPID, "direct-pid", 0, "mock upstream process id, to report its CPU use and RSS (0: skip)")
	flag.StringVar(&o.key, "key", "", "API key sent to every target, as \"Authorization: Bearer KEY\" (as x-api-key to targets sent messages)")
	flag.StringVar(&o.model, "model", "bench-model", "model name put in the request body")
	flag.StringVar(&rates, "rates", "500,1000,2000,3000,5000,6000", "comma-separated request rates (req/s) to step through")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured attack duration per target and rate")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per target and rate")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout, body read included")
	flag.BoolVar(&o.stream, "stream", false, "also run the streaming mode (stream:true, include_usage)")
	flag.StringVar(&o.api, "api", "chat", "request format sent to -gateway and to targets without api=: "+strings.Join(apiNames(), ", ")+"; the direct target is always sent chat")
	flag.IntVar(&o.pid, "pid", 0, "-gateway's process id, to report its CPU use and RSS from /proc (0: skip)")
	flag.BoolVar(&o.ceiling, "ceiling", false, "after the fixed rates, search each target's sustained ceiling per mode")
	flag.IntVar(&o.ceilingMax, "ceiling-max", defaultCeilingMax, "highest rate (req/s) the ceiling search tries")
	flag.StringVar(&o.out, "out", "", "markdown file to append the report to (empty: stdout only)")
	flag.Parse()

	var err error
	if o.rates, err = parseRates(rates); err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// targetSpec is one -target (or -gateway).
type targetSpec struct {
	name string
	url  string // base URL
	pid  int    // 0: unknown
	api  string // request format; empty: -api
}

// targetFlag collects repeated -target flags.
type targetFlag []targetSpec

// String implements flag.Value.
func (f *targetFlag) String() string {
	var parts []string
	for _, t := range *f {
		parts = append(parts, t.name+"="+t.url)
	}
	return strings.Join(parts, " ")
}

// Set implements flag.Value.
func (f *targetFlag) Set(s string) error {
	t, err := parseTarget(s)
	if err != nil {
		return err
	}
	*f = append(*f, t)
	return nil
}

// describeFlag collects repeated -describe NAME=TEXT flags.
type describeFlag map[string]string

// String implements flag.Value.
func (f *describeFlag) String() string { return fmt.Sprint(map[string]string(*f)) }

// Set implements flag.Value.
func (f *describeFlag) Set(s string) error {
	name, text, ok := strings.Cut(s, "=")
	if !ok || !validName.MatchString(name) || strings.TrimSpace(text) == "" {
		return fmt.Errorf("%q is not NAME=TEXT", s)
	}
	if *f == nil {
		*f = describeFlag{}
	}
	(*f)[name] = strings.TrimSpace(text)
	return nil
}

// validName is what a target name may look like.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// parseTarget parses NAME=URL[,pid=PID][,api=FORMAT].
func parseTarget(s string) (targetSpec, error) {
	fields := strings.Split(s, ",")
	name, base, ok := strings.Cut(fields[0], "=")
	name, base = strings.TrimSpace(name), strings.TrimSpace(base)
	if !ok || base == "" {
		return targetSpec{}, fmt.Errorf("%q is not NAME=URL[,pid=PID][,api=FORMAT]", s)
	}
	if !validName.MatchString(name) || name == "direct" {
		return targetSpec{}, fmt.Errorf("%q: target name %q must be 1 to 32 letters, digits, '.', '_' or '-', and not \"direct\"", s, name)
	}
	t := targetSpec{name: name, url: base}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || seen[k] {
			return targetSpec{}, fmt.Errorf("%q: %q is not pid=PID or api=FORMAT (each at most once)", s, f)
		}
		seen[k] = true
		switch k {
		case "pid":
			pid, err := strconv.Atoi(v)
			if err != nil || pid <= 0 {
				return targetSpec{}, fmt.Errorf("%q: pid %q is not a process id", s, v)
			}
			t.pid = pid
		case "api":
			if _, err := lookupAPI(v); err != nil {
				return targetSpec{}, fmt.Errorf("%q: %w", s, err)
			}
			t.api = v
		default:
			return targetSpec{}, fmt.Errorf("%q: unknown option %q (want pid= or api=)", s, k)
		}
	}
	return t, nil
}

// resolveTargets returns the targets in run order: -gateway's (named
// "gateway") first, then every -target, each with its format filled in,
// after checking that names are unique and that -pid, -describe and
// -baseline name something.
func resolveTargets(o options) ([]targetSpec, error) {
	var ts []targetSpec
	if o.gatewayURL != "" {
		ts = append(ts, targetSpec{name: "gateway", url: o.gatewayURL, pid: o.pid})
	} else if o.pid != 0 {
		return nil, errors.New("-pid goes with -gateway; give a -target its process as pid=PID")
	}
	ts = append(ts, o.targets...)
	if len(ts) == 0 {
		return nil, errors.New("-gateway or -target is required")
	}
	seen := map[string]bool{}
	for i := range ts {
		if seen[ts[i].name] {
			return nil, fmt.Errorf("target %q given twice", ts[i].name)
		}
		seen[ts[i].name] = true
		if ts[i].api == "" {
			ts[i].api = o.api
		}
		if _, err := lookupAPI(ts[i].api); err != nil {
			return nil, err
		}
	}
	for name := range o.describe {
		if !seen[name] {
			return nil, fmt.Errorf("-describe: no target named %q", name)
		}
	}
	if o.baseline != "" && !seen[o.baseline] {
		return nil, fmt.Errorf("-baseline: no target named %q", o.baseline)
	}
	return ts, nil
}

// subject is a target (or direct) during the run: its HTTP client, format
// and what the report says about it.
type subject struct {
	*target
	info   *targetInfo
	format apiFormat
}

// run validates o, runs every step and writes the report.
func run(o options) error {
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if o.duration <= 0 || o.warmup <= 0 || o.timeout <= 0 {
		return errors.New("-duration, -warmup and -timeout must be positive")
	}
	if o.ceilingMax < ceilingGrain {
		return fmt.Errorf("-ceiling-max must be at least %d", ceilingGrain)
	}
	if _, err := lookupAPI(o.api); err != nil {
		return err
	}
	specs, err := resolveTargets(o)
	if err != nil {
		return err
	}
	directDesc := o.directURL
	if o.directURL == "" {
		srv, err := mock.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting in-process mock: %w", err)
		}
		defer srv.Close(time.Second)
		o.directURL = "http://" + srv.Addr + "/v1"
		directDesc = o.directURL + " (in-process mock)"
	}

	maxConns := 0
	for _, r := range o.rates {
		maxConns = max(maxConns, maxWorkers(r))
	}
	if o.ceiling {
		maxConns = max(maxConns, maxWorkers(o.ceilingMax))
	}
	newSubject := func(ts targetSpec, desc string) (*subject, error) {
		format, err := lookupAPI(ts.api)
		if err != nil {
			return nil, err
		}
		ep, err := endpoint(ts.url, format.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ts.name, err)
		}
		info := &targetInfo{name: ts.name, url: ts.url, pid: ts.pid, api: ts.api, format: format, desc: desc}
		if ts.pid > 0 {
			st, err := readProcStatus(ts.pid)
			if err != nil {
				return nil, fmt.Errorf("%s pid: %w", ts.name, err)
			}
			info.idle = &st // before any load
		}
		return &subject{target: newTarget(ts.name, ep, o.timeout, maxConns), info: info, format: format}, nil
	}
	direct, err := newSubject(targetSpec{name: "direct", url: o.directURL, pid: o.directPID, api: "chat"}, "")
	if err != nil {
		return fmt.Errorf("-direct: %w", err)
	}
	direct.info.url = directDesc
	subjects := []*subject{direct}
	for _, ts := range specs {
		s, err := newSubject(ts, o.describe[ts.name])
		if err != nil {
			return fmt.Errorf("-target %w", err)
		}
		subjects = append(subjects, s)
	}
	for _, s := range subjects {
		defer s.client.CloseIdleConnections()
	}

	// The harness allocates a lot per request; trading memory for fewer GC
	// cycles keeps its CPU share down.
	debug.SetGCPercent(400)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	modes := []string{"json"}
	if o.stream {
		modes = append(modes, "stream")
	}
	perStep := o.warmup + o.duration + time.Second/2
	fixedSteps := len(modes) * len(o.rates) * len(subjects)
	est := fmt.Sprintf("about %s", time.Duration(fixedSteps)*perStep)
	if o.ceiling {
		// At most: sustained all the way from the highest fixed rate to
		// the cap, or failing just below it and bisecting.
		var all []rateOutcome
		for _, r := range o.rates {
			all = append(all, rateOutcome{r, true})
		}
		n := 1
		for s, r := newCeilingSearch(all, o.ceilingMax), 0; ; n++ {
			if r = s.next(); r == 0 {
				break
			}
			s.record(r, true)
		}
		est += fmt.Sprintf(" plus the ceiling search (at most %d steps per target and mode, %s)",
			n, time.Duration(n*len(modes)*len(subjects))*perStep)
	}
	fmt.Fprintf(os.Stderr, "load: %d mode(s) x %d rate(s) x %d target(s) incl. direct, %s\n",
		len(modes), len(o.rates), len(subjects), est)

	rep := report{
		started:    time.Now(),
		api:        o.api,
		direct:     *direct.info,
		baseline:   o.baseline,
		rates:      o.rates,
		model:      o.model,
		duration:   o.duration,
		warmup:     o.warmup,
		timeout:    o.timeout,
		ceiling:    o.ceiling,
		ceilingMax: o.ceilingMax,
	}
	// step warms s up at rate, then measures it and files the result.
	step := func(s *subject, mode string, rate int, ceiling bool) *stepResult {
		spec := s.format.spec(mode, o.model, o.key)
		spec.rate = rate
		spec.duration = o.warmup
		runAttack(ctx, s.target, spec, 0, false)
		if ctx.Err() != nil {
			return nil
		}
		spec.duration = o.duration
		res := runAttack(ctx, s.target, spec, s.info.pid, true)
		res.ceiling = ceiling
		fmt.Fprintln(os.Stderr, res.progressLine())
		rep.steps = append(rep.steps, res)
		return res
	}
steps:
	for _, mode := range modes {
		fixed := map[*subject][]rateOutcome{}
		for _, rate := range o.rates {
			for _, s := range subjects {
				res := step(s, mode, rate, false)
				if res == nil || ctx.Err() != nil {
					break steps
				}
				fixed[s] = append(fixed[s], rateOutcome{rate, res.sustained()})
			}
		}
		if !o.ceiling {
			continue
		}
		for _, s := range subjects {
			search := newCeilingSearch(fixed[s], o.ceilingMax)
			for rate := search.next(); rate > 0; rate = search.next() {
				res := step(s, mode, rate, true)
				if res == nil || ctx.Err() != nil {
					break steps
				}
				search.record(rate, res.sustained())
			}
			fmt.Fprintf(os.Stderr, "load: %s %s sustained %s\n", mode, s.name, fmtRate(search.best()))
		}
	}
	rep.interrupted = ctx.Err() != nil
	for _, s := range subjects {
		if s.info.pid > 0 {
			if st, err := readProcStatus(s.info.pid); err == nil {
				s.info.end = &st
			}
		}
	}
	rep.direct = *direct.info
	for _, s := range subjects[1:] {
		rep.targets = append(rep.targets, *s.info)
	}

	text := rep.markdown()
	fmt.Print(text)
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(text + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
	}
	if rep.interrupted {
		return errors.New("interrupted; the report above is partial")
	}
	return nil
}

// parseRates parses a comma-separated list of positive request rates.
func parseRates(s string) ([]int, error) {
	var rates []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		r, err := strconv.Atoi(f)
		if err != nil || r <= 0 || r > 1_000_000 {
			return nil, fmt.Errorf("-rates: %q is not a rate between 1 and 1000000", f)
		}
		rates = append(rates, r)
	}
	if len(rates) == 0 {
		return nil, errors.New("-rates: no rates given")
	}
	return rates, nil
}

// endpoint validates a base URL (http or https, loopback host) and returns
// the URL of path (e.g. "/chat/completions") below it.
func endpoint(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", base)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: user info, query and fragment are not allowed", base)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if err := mock.CheckLoopback(net.JoinHostPort(u.Hostname(), port)); err != nil {
		return "", fmt.Errorf("%q: refusing a non-loopback target: %w", base, err)
	}
	return strings.TrimRight(u.String(), "/") + path, nil
}

// hostDescription describes the machine for the report header.
func hostDescription() string {
	return fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d, %s",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}
