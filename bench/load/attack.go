package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// seqHeader is the request header in which vegeta numbers each hit of an
// attack (Result.Seq); the probe uses it to file first-byte times.
const seqHeader = "X-Vegeta-Seq"

// maxMarker bounds the length of a completion marker.
const maxMarker = 32

// pacerLead is how far ahead of its scheduled time the pacer may release a
// request. Go parks idle threads in epoll_wait, whose timeout has millisecond
// resolution, so vegeta's time.Sleep between hits oversleeps by up to ~1ms;
// with a plain ConstantPacer that timer slop (harness noise, not target
// latency) would be charged to every request. Releasing up to pacerLead early
// and measuring from min(scheduled, actual send) absorbs the slop while any
// lateness beyond it is still charged.
const pacerLead = time.Millisecond

// catchUpGrace is how long after the schedule's end the pacer may still send
// the requests it is behind on; those still unsent count as failures.
const catchUpGrace = time.Second

// leadPacer is vegeta.ConstantPacer shifted pacerLead early and stopped after
// a fixed number of hits, so that a pacer running slightly behind at the end
// of the attack still sends every scheduled request.
type leadPacer struct {
	vegeta.ConstantPacer
	lead time.Duration
	hits uint64
}

// Pace implements vegeta.Pacer.
func (p leadPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.hits {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed+p.lead, hits)
}

// maxWorkers is the most concurrent requests an attack at rate may have in
// flight: one second's worth (at least 256). If the target's latency grows
// past that, the pacer blocks; the resulting send lag is charged to the
// latency (see the package comment) and requests left unsent count as
// failures, so the cap bounds the harness without flattering the target.
func maxWorkers(rate int) int { return max(256, rate) }

// target is one system under test with its own HTTP client, shared by all
// of its attacks so that warmed-up keep-alive connections are reused.
type target struct {
	name   string
	url    string // chat completions endpoint
	client *http.Client
	probe  *probeTransport
}

// newTarget builds a target whose connection pool keeps up to maxConns idle
// keep-alive connections. That is what vegeta.Connections would set, but
// vegeta's transport options type-assert *http.Transport and so cannot
// configure a transport wrapped by the probe; the client is handed to vegeta
// whole with vegeta.Client instead.
func newTarget(name, url string, timeout time.Duration, maxConns int) *target {
	tr := &http.Transport{
		Proxy:                 nil, // never route benchmark traffic through a proxy
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	probe := &probeTransport{base: tr}
	return &target{
		name:  name,
		url:   url,
		probe: probe,
		client: &http.Client{
			Transport:     probe,
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// attackSpec describes one constant-rate attack.
type attackSpec struct {
	mode     string // "json" or "stream"
	rate     int    // requests per second
	duration time.Duration
	body     []byte
	header   http.Header
	marker   []byte // must appear in a complete response body
}

// latencies holds nearest-rank percentiles of n samples.
type latencies struct {
	n             int
	p50, p90, p99 time.Duration
}

// percentiles sorts ds in place and returns its percentiles.
func percentiles(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return latencies{len(ds), at(0.50), at(0.90), at(0.99)}
}

// stepResult is the outcome of one measured attack.
type stepResult struct {
	mode, target string
	rate         int
	duration     time.Duration // measured attack duration
	scheduled    int           // requests the pacer should have sent
	completed    int           // results returned by vegeta
	ok           int           // complete 2xx responses
	window       time.Duration // attack start to last response end
	lat          latencies     // scheduled send -> body EOF, successful requests
	ttfb         latencies     // scheduled send -> first body byte, successful requests
	sendLagP99   time.Duration // lateness of actual send vs schedule (0 if early), all sent requests
	vegeta       latencies     // vegeta's own latencies (from actual send, uncorrected), all results
	errors       map[string]int
	harnessCPU   float64 // percent of one core used by this process
	targetCPU    float64 // percent of one core used by the target's process, <0 when unknown
	targetRSS    int64   // the target process's VmRSS in kB after the attack, <0 when unknown
	interrupted  bool
	ceiling      bool // a step of the ceiling search, not a fixed rate
}

// success is the fraction of scheduled requests that completed successfully.
func (r *stepResult) success() float64 {
	n := max(r.scheduled, r.completed)
	if n == 0 {
		return 0
	}
	return float64(r.ok) / float64(n)
}

// throughput is the rate of successful responses over the attack window
// (at least the step's duration).
func (r *stepResult) throughput() float64 {
	if w := max(r.window, r.duration); w > 0 {
		return float64(r.ok) / w.Seconds()
	}
	return 0
}

// runAttack attacks t at spec.rate for spec.duration. When measure is false
// (warm-up) results are discarded and nil is returned. pid > 0 names the
// target's process, whose CPU and memory are sampled around the attack.
//
// The attack always ends by itself: vegeta stops scheduling once every
// scheduled request is sent, spec.duration+catchUpGrace after the start, or
// when ctx is cancelled, and every in-flight request is bounded by the
// client timeout.
func runAttack(ctx context.Context, t *target, spec attackSpec, pid int, measure bool) *stepResult {
	// ConstantPacer's schedule: hit n (0-based) is due at began+(n+1)*interval,
	// with the interval truncated to whole nanoseconds exactly as here.
	interval := time.Second / time.Duration(spec.rate)
	scheduled := int(spec.duration / interval)
	workers := maxWorkers(spec.rate)

	var rec *recorder
	if measure {
		// A step past the target's ceiling leaves up to `workers` idle
		// connections per target: closed after it, so that later steps
		// (and other targets) do not run out of file descriptors.
		defer t.client.CloseIdleConnections()
		rec = newRecorder(scheduled+spec.rate/10+64, spec.marker)
		t.probe.rec.Store(rec)
		defer t.probe.rec.Store(nil)
	}

	atk := vegeta.NewAttacker(
		vegeta.Client(t.client),
		vegeta.Workers(uint64(min(workers, 64))),
		vegeta.MaxWorkers(uint64(workers)),
		vegeta.MaxBody(0), // don't keep bodies; the probe inspects them as they stream by
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{
		Method: http.MethodPost,
		URL:    t.url,
		Body:   spec.body,
		Header: spec.header,
	})
	pacer := leadPacer{
		ConstantPacer: vegeta.ConstantPacer{Freq: spec.rate, Per: time.Second},
		lead:          pacerLead,
		hits:          uint64(scheduled),
	}
	defer context.AfterFunc(ctx, func() { atk.Stop() })()

	cpu0, gw0 := selfCPU(), procCPU(pid)
	// began is taken just before vegeta takes its own; the difference (well
	// under a microsecond) makes our latencies err on the long side.
	began := time.Now()
	if rec != nil {
		rec.began = began
	}
	results := atk.Attack(targeter, pacer, spec.duration+catchUpGrace, "")
	if !measure {
		for range results {
		}
		return nil
	}

	res := &stepResult{
		mode:      spec.mode,
		target:    t.name,
		rate:      spec.rate,
		duration:  spec.duration,
		scheduled: scheduled,
		errors:    map[string]int{},
		targetCPU: -1,
		targetRSS: -1,
	}
	var (
		vm      vegeta.Metrics
		lat     = make([]time.Duration, 0, scheduled)
		ttfb    = make([]time.Duration, 0, scheduled)
		sendLag = make([]time.Duration, 0, scheduled)
		lastEnd time.Time
	)
	for r := range results {
		vm.Add(r)
		res.completed++
		// Latencies count from the scheduled time, or from the actual send
		// when the pacer released the request early (see pacerLead).
		due := began.Add(time.Duration(r.Seq+1) * interval)
		start := r.Timestamp
		if start.After(due) {
			sendLag = append(sendLag, start.Sub(due))
			start = due
		} else {
			sendLag = append(sendLag, 0)
		}
		end := r.Timestamp.Add(r.Latency)
		if end.After(lastEnd) {
			lastEnd = end
		}
		switch {
		case r.Error != "" && r.Code == 0:
			res.errors[r.Error]++
		case r.Code < 200 || r.Code > 299:
			res.errors["HTTP "+strconv.Itoa(int(r.Code))]++
		case !rec.complete(r.Seq):
			res.errors["incomplete body (no "+string(spec.marker)+" before EOF)"]++
		default:
			res.ok++
			lat = append(lat, end.Sub(start))
			if fb, ok := rec.firstByte(r.Seq); ok {
				ttfb = append(ttfb, began.Add(fb).Sub(start))
			}
		}
	}
	vm.Close()
	wall := time.Since(began)

	if unsent := res.scheduled - res.completed; unsent > 0 {
		res.errors["not sent: harness more than "+catchUpGrace.String()+" behind schedule"] += unsent
	}
	res.interrupted = ctx.Err() != nil
	res.window = lastEnd.Sub(began)
	res.lat = percentiles(lat)
	res.ttfb = percentiles(ttfb)
	res.sendLagP99 = percentiles(sendLag).p99
	res.vegeta = latencies{res.completed, vm.Latencies.P50, vm.Latencies.P90, vm.Latencies.P99}
	res.harnessCPU = cpuPercent(selfCPU()-cpu0, wall)
	if pid > 0 {
		if gw1 := procCPU(pid); gw0 >= 0 && gw1 >= 0 {
			res.targetCPU = cpuPercent(gw1-gw0, wall)
		}
		if st, err := readProcStatus(pid); err == nil {
			res.targetRSS = st.rssKB
		}
	}
	return res
}

// progressLine summarises r on one line for stderr.
func (r *stepResult) progressLine() string {
	kind := ""
	if r.ceiling {
		kind = " ceiling"
	}
	verdict := "failed"
	if r.sustained() {
		verdict = "sustained"
	}
	return fmt.Sprintf("[%s %d/s%s] %-7s ok %s  p50 %s  p99 %s  ttfb p99 %s  late-send p99 %s  vegeta p99 %s  harness cpu %.0f%%  %s",
		r.mode, r.rate, kind, r.target, fmtPercent(r.success()), r.lat.fmt(r.lat.p50), r.lat.fmt(r.lat.p99),
		r.ttfb.fmt(r.ttfb.p99), fmtDur(r.sendLagP99), r.vegeta.fmt(r.vegeta.p99), r.harnessCPU, verdict)
}

// recorder collects per-request observations made inside the transport,
// indexed by vegeta's hit sequence number. Each slot is written by the one
// goroutine performing that hit, before vegeta hands the hit's Result to the
// results channel, and read only after that Result is received, so the
// channel orders the accesses and no locking is needed.
type recorder struct {
	began  time.Time
	marker []byte
	first  []time.Duration // offset from began of the first body byte; 0: none
	done   []bool          // marker seen and body read to EOF
}

func newRecorder(slots int, marker []byte) *recorder {
	if len(marker) == 0 || len(marker) > maxMarker {
		panic("completion marker must be 1 to maxMarker bytes long")
	}
	return &recorder{marker: marker, first: make([]time.Duration, slots), done: make([]bool, slots)}
}

func (rec *recorder) complete(seq uint64) bool {
	return seq < uint64(len(rec.done)) && rec.done[seq]
}

func (rec *recorder) firstByte(seq uint64) (time.Duration, bool) {
	if seq >= uint64(len(rec.first)) || rec.first[seq] == 0 {
		return 0, false
	}
	return rec.first[seq], true
}

// probeTransport wraps the real transport to observe response bodies of the
// attack currently being measured (rec; nil during warm-up).
type probeTransport struct {
	base http.RoundTripper
	rec  atomic.Pointer[recorder]
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *probeTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper.
func (t *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := t.rec.Load()
	resp, err := t.base.RoundTrip(req)
	if err != nil || rec == nil {
		return resp, err
	}
	seq, perr := strconv.ParseUint(req.Header.Get(seqHeader), 10, 64)
	if perr != nil || seq >= uint64(len(rec.first)) {
		return resp, nil
	}
	resp.Body = &probeBody{ReadCloser: resp.Body, rec: rec, seq: int(seq)}
	return resp, nil
}

// probeBody records the first-byte time and completeness of one response.
type probeBody struct {
	io.ReadCloser
	rec   *recorder
	seq   int
	seen  bool            // marker found
	tail  [maxMarker]byte // last len(marker)-1 bytes read, for markers split across reads
	ntail int
}

// Read implements io.Reader.
func (b *probeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if b.rec.first[b.seq] == 0 {
			b.rec.first[b.seq] = max(time.Since(b.rec.began), 1)
		}
		if !b.seen {
			b.seen = b.scan(p[:n])
		}
	}
	if err == io.EOF && b.seen {
		b.rec.done[b.seq] = true
	}
	return n, err
}

// scan reports whether the marker occurs in p or straddles the previous
// read and p, and remembers p's tail for the next call.
func (b *probeBody) scan(p []byte) bool {
	m := b.rec.marker
	if bytes.Contains(p, m) {
		return true
	}
	k := len(m) - 1
	var buf [2 * maxMarker]byte
	j := copy(buf[:], b.tail[:b.ntail])
	j += copy(buf[j:], p[:min(len(p), k)])
	if bytes.Contains(buf[:j], m) {
		return true
	}
	if len(p) >= k {
		b.ntail = copy(b.tail[:], p[len(p)-k:])
	} else {
		b.ntail = copy(b.tail[:], buf[max(0, j-k):j])
	}
	return false
}
