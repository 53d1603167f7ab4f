// Command load is Switchyard's open-loop load benchmark. It measures the
// latency a gateway adds on top of a zero-delay OpenAI-compatible upstream.
//
// For each mode (non-streaming "json", plus "stream" with -stream) and each
// rate in -rates, it attacks first the upstream directly (-direct) and then
// the gateway (-gateway) with the same chat completion request, at a constant
// rate, for -duration each, after a 1s warm-up of that target at that rate.
// It prints a markdown report to stdout and appends it to -out.
//
// With -api responses or -api messages the gateway is sent the same request
// (one short user message) as an OpenAI Responses request (POST /responses,
// store false) or an Anthropic Messages request (POST /messages, key in
// x-api-key), which it translates to chat completions and back; the direct
// target is still sent chat, so "added" covers the translation.
//
//	load -gateway http://127.0.0.1:18080/v1 -direct http://127.0.0.1:18081/v1 \
//	     -key sk-bench -stream -pid $(pidof switchyard) -out bench/results.md
//
// With -direct empty the mock upstream (bench/internal/mock) is started
// in-process on a free loopback port. Only loopback URLs are accepted.
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
// gateway compete for the same CPU cores (two on the reference box), and
// vegeta's per-request allocations make the harness itself CPU-heavy at
// thousands of requests per second (on the 2-core reference box roughly 0.3
// core at 5000 req/s non-streaming and 0.55 core streaming). The "direct"
// rows are therefore the floor of harness plus mock plus loopback, and the
// "added" rows subtract that floor from the gateway rows. The gateway rows
// also pay for the CPU the gateway takes away from harness and mock. Harness CPU is reported per step (it includes
// the mock when that runs in-process); when "direct" cannot sustain a rate,
// that rate measures the box, not the gateway.
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
	key        string
	model      string
	rates      []int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	stream     bool
	api        string
	pid        int
	out        string
}

func main() {
	var (
		o     options
		rates string
	)
	flag.StringVar(&o.gatewayURL, "gateway", "", "gateway base `URL`, e.g. http://127.0.0.1:18080/v1 (required, loopback only)")
	flag.StringVar(&o.directURL, "direct", "", "mock upstream base `URL`, e.g. http://127.0.0.1:18081/v1; empty starts the mock in-process")
	flag.StringVar(&o.key, "key", "", "API key sent to both targets, as \"Authorization: Bearer KEY\" (as x-api-key with -api messages)")
	flag.StringVar(&o.model, "model", "bench-model", "model name put in the request body")
	flag.StringVar(&rates, "rates", "500,1000,2000,3000,5000,6000", "comma-separated request rates (req/s) to step through")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured attack duration per target and rate")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per target and rate")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout, body read included")
	flag.BoolVar(&o.stream, "stream", false, "also run the streaming mode (stream:true, include_usage)")
	flag.StringVar(&o.api, "api", "chat", "request format sent to the gateway: "+strings.Join(apiNames(), ", ")+"; the direct target is always sent chat")
	flag.IntVar(&o.pid, "pid", 0, "gateway process id, to report its CPU use and RSS from /proc (0: skip)")
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

// run validates o, runs every step and writes the report.
func run(o options) error {
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if o.gatewayURL == "" {
		return errors.New("-gateway is required")
	}
	if o.duration <= 0 || o.warmup <= 0 || o.timeout <= 0 {
		return errors.New("-duration, -warmup and -timeout must be positive")
	}
	gatewayAPI, err := lookupAPI(o.api)
	if err != nil {
		return err
	}
	directAPI := apiFormats["chat"]
	gatewayEP, err := endpoint(o.gatewayURL, gatewayAPI.path)
	if err != nil {
		return fmt.Errorf("-gateway: %w", err)
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
	directEP, err := endpoint(o.directURL, directAPI.path)
	if err != nil {
		return fmt.Errorf("-direct: %w", err)
	}
	if o.pid > 0 {
		if _, err := readProcStatus(o.pid); err != nil {
			return fmt.Errorf("-pid: %w", err)
		}
	}

	// The harness allocates a lot per request; trading memory for fewer GC
	// cycles keeps its CPU share down.
	debug.SetGCPercent(400)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	maxConns := 0
	for _, r := range o.rates {
		maxConns = max(maxConns, maxWorkers(r))
	}
	direct := newTarget("direct", directEP, o.timeout, maxConns)
	gateway := newTarget("gateway", gatewayEP, o.timeout, maxConns)
	defer direct.client.CloseIdleConnections()
	defer gateway.client.CloseIdleConnections()

	modes := []string{"json"}
	if o.stream {
		modes = append(modes, "stream")
	}
	perStep := 2*(o.warmup+o.duration) + time.Second
	fmt.Fprintf(os.Stderr, "load: %d mode(s) x %d rate(s), about %s in total\n",
		len(modes), len(o.rates), time.Duration(len(modes)*len(o.rates))*perStep)

	rep := report{
		started:    time.Now(),
		api:        o.api,
		gatewayAPI: gatewayAPI,
		gatewayURL: o.gatewayURL,
		directURL:  directDesc,
		model:      o.model,
		duration:   o.duration,
		warmup:     o.warmup,
		timeout:    o.timeout,
		pid:        o.pid,
	}
steps:
	for _, mode := range modes {
		specs := map[*target]attackSpec{
			direct:  directAPI.spec(mode, o.model, o.key),
			gateway: gatewayAPI.spec(mode, o.model, o.key),
		}
		for _, rate := range o.rates {
			for _, t := range []*target{direct, gateway} {
				spec := specs[t]
				spec.rate = rate
				pid := 0
				if t == gateway {
					pid = o.pid
				}
				spec.duration = o.warmup
				runAttack(ctx, t, spec, 0, false)
				if ctx.Err() != nil {
					break steps
				}
				spec.duration = o.duration
				res := runAttack(ctx, t, spec, pid, true)
				fmt.Fprintln(os.Stderr, res.progressLine())
				rep.steps = append(rep.steps, res)
				if ctx.Err() != nil {
					break steps
				}
			}
		}
	}
	rep.interrupted = ctx.Err() != nil
	if o.pid > 0 {
		if st, err := readProcStatus(o.pid); err == nil {
			rep.gatewayMem = &st
		}
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
