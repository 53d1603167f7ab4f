// Command soak runs Switchyard for a long time under mixed traffic with
// periodic Redis and upstream faults, and reports whether its memory grows
// and whether its cost ledger still matches, to the pico-dollar, what the
// clients were told. It is not run in CI. See bench/soak/README.md.
//
//	go run ./bench/soak -duration 30m -rate 300 -out soak.md
//	go run ./bench/soak -duration 2m -rate 100          # quick check
//
// It builds the gateway (or takes -gateway), starts its own redis-server,
// two in-process mock OpenAI upstreams (a primary whose faults it
// controls and a healthy fallback) and the gateway with a generated
// config, drives open-loop traffic, injects the faults on a schedule,
// samples the gateway's RSS, then drains the ledger and compares.
// The exit status is 1 when a verdict fails, 2 when the run could not be
// carried out.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration     time.Duration
	rate         float64
	out          string
	gateway      string
	redisBin     string
	redisKill    string
	soloShare    float64
	failPct      int
	sampleEvery  time.Duration
	metricsEvery time.Duration
	drain        time.Duration
	faults       bool
	keep         bool
	maxInflight  int64
	chunkDelay   time.Duration
	maxSlope     float64
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "how long to send traffic")
	flag.Float64Var(&o.rate, "rate", 300, "requests per second (open loop)")
	flag.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&o.gateway, "gateway", "", "switchyard binary to run (default: go build ./cmd/switchyard)")
	flag.StringVar(&o.redisBin, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&o.redisKill, "redis-kill", "shutdown", "how Redis is killed: shutdown (SHUTDOWN SAVE, data kept in an RDB) or sigkill (SIGKILL, data kept in an fsync-always AOF)")
	flag.Float64Var(&o.soloShare, "solo-share", 0.1, "share of chat requests sent to the route without a fallback (soak-solo)")
	flag.IntVar(&o.failPct, "fail-pct", 30, "percent of primary upstream calls answered 503 during an upstream fault phase")
	flag.DurationVar(&o.sampleEvery, "sample", 5*time.Second, "how often the gateway's RSS is read")
	flag.DurationVar(&o.metricsEvery, "metrics-every", 15*time.Second, "how often /metrics is read during the run")
	flag.DurationVar(&o.drain, "drain-timeout", 60*time.Second, "how long to wait, after the load, for the ledger to have every entry")
	flag.BoolVar(&o.faults, "faults", true, "inject faults (false: a clean soak)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, logs, audit, Redis files); it is always kept when the run fails")
	flag.Int64Var(&o.maxInflight, "max-inflight", 5000, "requests outstanding at most; beyond it a scheduled request is dropped and counted")
	flag.DurationVar(&o.chunkDelay, "chunk-delay", 2*time.Millisecond, "pause between the mock's stream chunks")
	flag.Float64Var(&o.maxSlope, "max-rss-slope", 0, "fail when the RSS slope over the second half exceeds this many MiB/h (0: report only)")
	flag.Parse()
	if o.duration <= 0 || o.rate <= 0 || o.soloShare < 0 || o.soloShare > 1 || o.failPct < 0 || o.failPct > 100 ||
		(o.redisKill != "shutdown" && o.redisKill != "sigkill") {
		fmt.Fprintln(os.Stderr, "soak: bad flags")
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// run carries out the soak; the int is the exit status when err is nil.
func run(o options) (int, error) {
	runStart := time.Now()
	tmp, err := os.MkdirTemp("", "switchyard-soak.")
	if err != nil {
		return 0, err
	}
	keep := o.keep
	defer func() {
		if keep {
			logf("kept %s", tmp)
		} else {
			_ = os.RemoveAll(tmp)
		}
	}()
	keepOnError := func(err error) (int, error) {
		keep = true
		return 0, err
	}
	logf("temp dir %s", tmp)

	// The gateway binary.
	bin := o.gateway
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			return 0, err
		}
		bin = filepath.Join(tmp, "switchyard")
		logf("building %s from %s", bin, root)
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/switchyard")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("go build ./cmd/switchyard: %w", err)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return 0, err
	}

	// Ctrl-C ends the load early; the report still comes.
	sigCtx, stopSig := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSig()

	// Redis.
	redisPort, err := freePort()
	if err != nil {
		return 0, err
	}
	redisBin, err := exec.LookPath(o.redisBin)
	if err != nil {
		return 0, fmt.Errorf("redis-server: %w", err)
	}
	rp, redisVersion, err := newRedisProc(redisBin, filepath.Join(tmp, "redis"), "127.0.0.1:"+redisPort, o.redisKill)
	if err != nil {
		return 0, err
	}
	if err := rp.start(); err != nil {
		return keepOnError(err)
	}
	defer rp.stop()
	logf("redis-server %s on %s (debug command: %v)", redisVersion, rp.addr, rp.debug)

	// Upstreams.
	upKey := "sk-upstream-" + randHex(8)
	primaryFaults := &faults{}
	primary := &upstream{name: "primary", key: upKey, chunkDelay: o.chunkDelay, faults: primaryFaults}
	fallback := &upstream{name: "fallback", key: upKey, chunkDelay: o.chunkDelay}
	primaryURL, stopPrimary, err := startUpstream(primary)
	if err != nil {
		return 0, err
	}
	defer stopPrimary()
	fallbackURL, stopFallback, err := startUpstream(fallback)
	if err != nil {
		return 0, err
	}
	defer stopFallback()
	logf("mock upstreams: primary %s, fallback %s", primaryURL, fallbackURL)

	// Config and gateway.
	gwPort, err := freePort()
	if err != nil {
		return 0, err
	}
	virtualKey, adminKey := "sk-soak-"+randHex(16), "sk-soak-admin-"+randHex(16)
	vHash, err := keyHash(bin, virtualKey)
	if err != nil {
		return 0, err
	}
	aHash, err := keyHash(bin, adminKey)
	if err != nil {
		return 0, err
	}
	cfgPath := filepath.Join(tmp, "switchyard.yaml")
	dataDir := filepath.Join(tmp, "data")
	cfg := gatewayConfig("127.0.0.1:"+gwPort, rp.addr, primaryURL, fallbackURL, vHash, aHash, dataDir, filepath.Join(tmp, "audit.jsonl"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "SOAK_UPSTREAM_KEY="+upKey)
	check := exec.Command(bin, "config", "check", "-config", cfgPath)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		return keepOnError(fmt.Errorf("switchyard config check: %v\n%s", err, out))
	}
	gwLog, err := os.Create(filepath.Join(tmp, "gateway.log"))
	if err != nil {
		return 0, err
	}
	defer gwLog.Close()
	gw := exec.Command(bin, "serve", "-config", cfgPath)
	gw.Env, gw.Stdout, gw.Stderr, gw.Dir = env, gwLog, gwLog, tmp
	gw.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := gw.Start(); err != nil {
		return 0, err
	}
	gwExited := make(chan error, 1)
	go func() { gwExited <- gw.Wait() }()
	gwStopped := false
	defer func() {
		if !gwStopped {
			_ = gw.Process.Signal(syscall.SIGKILL)
			<-gwExited
		}
	}()
	base := "http://127.0.0.1:" + gwPort
	if err := waitReady(base, gwExited, 60*time.Second); err != nil {
		return keepOnError(fmt.Errorf("%w; gateway log:\n%s", err, tail(gwLog.Name(), 30)))
	}
	logf("gateway pid %d on %s ready", gw.Process.Pid, base)

	// Preflight: one request of each kind on each route must work and show
	// its cost, or a long run would be wasted. They count in the totals.
	ld := newLoader(base, virtualKey, o.soloShare, o.maxInflight)
	ld.start = time.Now()
	for _, m := range []string{modelFallback, modelSolo} {
		for _, stream := range []bool{false, true} {
			r := ld.send(m, stream)
			ld.tally.add(r)
			ld.tally.mu.Lock()
			ld.tally.sent++
			ld.tally.mu.Unlock()
			if r.status != http.StatusOK || r.cost == nil || (stream && !r.done) {
				return keepOnError(fmt.Errorf("preflight %s stream=%v: status %d code %q err %q cost %v; gateway log:\n%s",
					m, stream, r.status, r.code, r.err, r.cost, tail(gwLog.Name(), 30)))
			}
		}
	}
	logf("preflight ok; sending %.0f req/s for %s", o.rate, o.duration)

	// The run.
	loadCtx, stopLoad := context.WithTimeout(sigCtx, o.duration)
	defer stopLoad()
	loadStart := time.Now()
	ld.start = loadStart
	sm := &sampler{}
	sampleCtx, stopSample := context.WithCancel(context.Background())
	go sm.run(sampleCtx, gw.Process.Pid, loadStart, o.sampleEvery)
	ms := &metricSampler{url: base + "/metrics"}
	go ms.run(sampleCtx, loadStart, o.metricsEvery)
	in := &injector{redis: rp, primary: primaryFaults, failPct: int32(o.failPct), start: loadStart, logf: logf}
	plan := []faultPlan(nil)
	if o.faults {
		plan = scheduleFaults(o.duration)
	}
	faultsDone := make(chan struct{})
	go func() { in.run(loadCtx, plan); close(faultsDone) }()
	go progress(loadCtx, ld, sm, loadStart, o.duration)

	loadDone := make(chan struct{})
	go func() { ld.run(loadCtx, o.rate); close(loadDone) }()
	var gwDied error
	select {
	case <-loadDone:
	case err := <-gwExited:
		gwDied = fmt.Errorf("the gateway exited during the run: %v", err)
		gwStopped = true
		stopLoad()
		<-loadDone
	}
	loadEnd := time.Since(loadStart)
	<-faultsDone
	stopSample()
	if gwDied != nil {
		keep = true
		logf("%v", gwDied)
	}
	logf("load stopped after %s; waiting for the ledger", fmtDur(loadEnd))

	// The ledger: wait until nothing is pending and the totals settle.
	var led ledgerResult
	if gwDied == nil {
		led = drainLedger(base, adminKey, runStart.Add(-time.Minute), ld.tally, o.drain)
	}
	metricsText := ""
	if gwDied == nil {
		metricsText, _ = getText(base+"/metrics", "")
	}
	_, spoolErr := os.Stat(filepath.Join(dataDir, "ledger-spool"))

	// Stop the gateway and collect what it logged.
	gwExit := "exited during the run: " + fmt.Sprint(gwDied)
	if gwDied == nil {
		_ = gw.Process.Signal(syscall.SIGTERM)
		sent := time.Now()
		select {
		case err := <-gwExited:
			gwExit = "exit status 0"
			if err != nil {
				gwExit = err.Error()
			}
			gwExit = fmt.Sprintf("%s %s after SIGTERM (shutdown_timeout 15s)", gwExit, fmtDur(time.Since(sent)))
		case <-time.After(45 * time.Second):
			_ = gw.Process.Signal(syscall.SIGKILL)
			<-gwExited
			gwExit = "did not exit within 45 s of SIGTERM; killed"
		}
		gwStopped = true
	}
	_ = gwLog.Sync()

	rep := report{
		o: o, bin: bin, redisVersion: redisVersion, tmp: tmp, runStart: runStart, loadDur: loadEnd,
		tally: ld.tally, mem: summarise(sm.all(), loadEnd), samples: sm.all(), metrics: ms.all(),
		faults: in.all(), plan: plan, ledger: led, metricsText: metricsText, gwExit: gwExit,
		logCounts: logCounts(gwLog.Name()), spoolDirExists: spoolErr == nil,
		upstreams: []*upstream{primary, fallback}, gatewayDied: gwDied,
	}
	md, failed := rep.render()
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return 0, err
		}
		logf("report written to %s", o.out)
	}
	if failed {
		keep = true
		return 1, nil
	}
	return 0, nil
}

// gatewayConfig is the gateway's YAML: the primary mock first and the
// healthy one as fallback on route "soak", the primary alone on
// "soak-solo"; quotas and ledger in Redis, failing open.
func gatewayConfig(listen, redisAddr, primaryURL, fallbackURL, keyHash, adminHash, dataDir, audit string) string {
	return fmt.Sprintf(`# Written by bench/soak.
server:
  listen: %[1]s
  shutdown_timeout: 15s
log: {level: warn, format: json}
data_dir: %[7]s
backends:
  - name: primary
    kind: proprietary
    provider: openai
    base_url: %[3]s
    api_key: ${SOAK_UPSTREAM_KEY}
    region: us-east-1
    jurisdiction: US
    price: {input_per_mtok: 0.15, output_per_mtok: 0.60, cached_input_per_mtok: 0.075}
    timeouts: {connect: 2s, first_byte: 10s, between_chunks: 5s}
  - name: fallback
    kind: proprietary
    provider: openai
    base_url: %[4]s
    api_key: ${SOAK_UPSTREAM_KEY}
    region: us-west-2
    jurisdiction: US
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00, cached_input_per_mtok: 1.25}
    timeouts: {connect: 2s, first_byte: 10s, between_chunks: 5s}
models:
  - name: soak
    deployments:
      - {backend: primary, model: soak-model}
      - {backend: fallback, model: soak-model}
  - name: soak-solo
    deployments:
      - {backend: primary, model: soak-model}
keys:
  - {id: soak, sha256: %[5]s, tenant: soak, team: soak}
admin:
  keys:
    - {id: soak-admin, sha256: %[6]s}
quotas:
  store: redis
  redis: {addrs: ["%[2]s"]}
  on_store_error: fail_open
  limits:
    - {scope: key, requests_per_minute: 100000000, tokens_per_minute: 100000000000, on_store_error: fail_open}
    - {scope: tenant, usd_per_day: 1000000, on_store_error: fail_open}
ledger:
  store: redis
policy:
  audit: %[8]s
telemetry:
  traces: {exporter: none}
`, listen, redisAddr, primaryURL, fallbackURL, keyHash, adminHash, dataDir, audit)
}

// send is one well-formed chat request, outside the random mix.
func (l *loader) send(model string, stream bool) result {
	return l.do(result{kind: map[bool]string{false: kindJSON, true: kindStream}[stream], model: model}, l.chatBody(model, stream))
}

// ledgerResult is what the costs API said at the end.
type ledgerResult struct {
	ok             bool // an answer was read
	err            string
	requests       int64
	cost           *big.Rat
	costStr        string
	pendingPresent bool
	pending        int64
	pendingBytes   int64
	maxPending     int64
	polls          int
	waited         time.Duration
	drained        bool // pending reached 0 within the timeout
	settled        bool // the totals matched, or stopped changing
}

// drainLedger polls GET /v1/switchyard/costs until nothing is pending
// and the totals match the client's, or stay the same for three polls, or
// timeout passes.
func drainLedger(base, adminKey string, from time.Time, t *tally, timeout time.Duration) ledgerResult {
	var res ledgerResult
	t.mu.Lock()
	wantCost, wantN := new(big.Rat).Set(t.costSum), t.billed
	t.mu.Unlock()
	start := time.Now()
	stable, lastKey := 0, ""
	for {
		res.polls++
		q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)}}
		body, err := getText(base+"/v1/switchyard/costs?"+q.Encode(), adminKey)
		if err == nil {
			var c struct {
				Totals []struct {
					Requests int64  `json:"requests"`
					CostUSD  string `json:"cost_usd"`
				} `json:"totals"`
				Pending *struct {
					Entries int64 `json:"entries"`
					Bytes   int64 `json:"bytes"`
				} `json:"pending"`
			}
			if err = json.Unmarshal([]byte(body), &c); err == nil {
				res.ok, res.err = true, ""
				res.requests, res.cost = 0, new(big.Rat)
				for _, tt := range c.Totals {
					v, ok := new(big.Rat).SetString(tt.CostUSD)
					if !ok {
						err = fmt.Errorf("unparseable cost_usd %q", tt.CostUSD)
						break
					}
					res.cost.Add(res.cost, v)
					res.requests += tt.Requests
				}
				res.pendingPresent = c.Pending != nil
				res.pending, res.pendingBytes = 0, 0
				if c.Pending != nil {
					res.pending, res.pendingBytes = c.Pending.Entries, c.Pending.Bytes
				}
				res.maxPending = max(res.maxPending, res.pending)
			}
		}
		if err != nil {
			res.err = err.Error()
		}
		res.waited = time.Since(start)
		if err == nil && res.pending == 0 {
			res.drained = true
			key := res.cost.RatString() + "/" + strconv.FormatInt(res.requests, 10)
			if res.cost.Cmp(wantCost) == 0 && res.requests == wantN {
				res.settled = true
				break
			}
			if key == lastKey {
				stable++
			} else {
				stable = 0
			}
			lastKey = key
			if stable >= 3 {
				res.settled = true
				break
			}
		}
		// A slow costs query (a long run's ledger, a busy machine) may
		// outlast the timeout: wait for at least one answer, up to three
		// times as long.
		if since := time.Since(start); since > timeout && (res.ok || since > 3*timeout) {
			break
		}
		time.Sleep(time.Second)
	}
	if res.cost != nil {
		res.costStr = ratDecimal(res.cost)
	}
	return res
}

func getText(u, bearer string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, b)
	}
	return string(b), nil
}

// waitReady polls /readyz (then /healthz) until one answers 200.
func waitReady(base string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the gateway exited at start: %v", err)
		default:
		}
		for _, p := range []string{"/readyz", "/healthz"} {
			if resp, err := c.Get(base + p); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the gateway was not ready within %s", timeout)
}

// progress logs a line every 30 s.
func progress(ctx context.Context, l *loader, sm *sampler, start time.Time, d time.Duration) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.tally.mu.Lock()
		line := fmt.Sprintf("+%s/%s sent %d, 2xx %d, 4xx %d, 5xx %d, errors %d, dropped %d, in flight %d",
			fmtDur(time.Since(start)), d, l.tally.sent, l.tally.byClass["2xx"], l.tally.byClass["4xx"], l.tally.byClass["5xx"],
			l.tally.byClass["err"], l.tally.dropped, l.inflight.Load())
		l.tally.mu.Unlock()
		if s := sm.all(); len(s) > 0 {
			line += fmt.Sprintf(", gateway RSS %.1f MiB", float64(s[len(s)-1].rssKiB)/1024)
		}
		logf("%s", line)
	}
}

// moduleRoot is the directory of the switchyard module's go.mod, found
// from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/switchyard/switchyard\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the switchyard module: run from the repository, or pass -gateway")
		}
		dir = parent
	}
}

// keyHash asks the binary for a key's hash, as an operator would.
func keyHash(bin, key string) (string, error) {
	out, err := exec.Command(bin, "key", "hash", key).Output()
	if err != nil {
		return "", fmt.Errorf("switchyard key hash: %w", err)
	}
	h := strings.TrimSpace(string(out))
	if len(h) != 64 {
		return "", fmt.Errorf("switchyard key hash printed %q", h)
	}
	return h, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ratDecimal prints an exact decimal (every cost here has at most twelve
// decimals) without trailing zeros.
func ratDecimal(r *big.Rat) string {
	s := r.FloatString(12)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
