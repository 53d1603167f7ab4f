package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Fault kinds.
const (
	faultRedisKill  = "redis-kill"
	faultRedisSleep = "redis-debug-sleep"
	faultUpstream   = "upstream-503"
	faultStreamCut  = "stream-cut"
)

// faultPlan is one scheduled fault: at an offset from the load's start,
// lasting dur.
type faultPlan struct {
	at   time.Duration
	kind string
	dur  time.Duration
}

// faultRecord is a fault as it happened.
type faultRecord struct {
	kind       string
	start, end time.Duration // since the load started
	wall       time.Time
	note       string
}

// scheduleFaults lays out the faults over a load of duration d. For 30
// minutes: a Redis kill every 3 min (down 5 s), a DEBUG SLEEP 0.15 every
// 2 min, a 30 s phase of 30% upstream 503s every 5 min and a 20 s phase of
// cut streams every 7 min. Shorter or longer runs scale the intervals and
// phases in proportion, with floors (30 s, 20 s, 40 s / 10 s, 50 s / 8 s)
// so that a quick run still sees every fault without living in one. No
// fault starts unless it ends at least a tail (10 s, or a tenth of a short
// run) before the load does, so the end of the run is clean.
func scheduleFaults(d time.Duration) []faultPlan {
	s := float64(d) / float64(30*time.Minute)
	scale := func(base, floor time.Duration) time.Duration {
		return max(time.Duration(float64(base)*s), floor).Round(time.Second)
	}
	tail := min(10*time.Second, d/10)
	var plan []faultPlan
	add := func(kind string, every, dur time.Duration) {
		for at := every; at+dur <= d-tail; at += every {
			plan = append(plan, faultPlan{at: at, kind: kind, dur: dur})
		}
	}
	add(faultRedisKill, scale(3*time.Minute, 30*time.Second), 5*time.Second)
	add(faultRedisSleep, scale(2*time.Minute, 20*time.Second), 150*time.Millisecond)
	add(faultUpstream, scale(5*time.Minute, 40*time.Second), scale(30*time.Second, 10*time.Second))
	add(faultStreamCut, scale(7*time.Minute, 50*time.Second), scale(20*time.Second, 8*time.Second))
	slices.SortStableFunc(plan, func(a, b faultPlan) int { return int(a.at - b.at) })
	return plan
}

// injector carries out a fault plan.
type injector struct {
	redis     *redisProc
	primary   *faults
	failPct   int32
	start     time.Time
	logf      func(format string, args ...any)
	redisDown atomic.Bool

	mu      sync.Mutex
	records []faultRecord
}

func (in *injector) record(r faultRecord) {
	in.mu.Lock()
	in.records = append(in.records, r)
	in.mu.Unlock()
	in.logf("fault %-17s at +%-7s for %-6s %s", r.kind, fmtDur(r.start), fmtDur(r.end-r.start), r.note)
}

func (in *injector) all() []faultRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.records)
	slices.SortStableFunc(out, func(a, b faultRecord) int { return int(a.start - b.start) })
	return out
}

// run starts every planned fault at its time; it returns when ctx ends and
// every fault started has finished (Redis restarted, phases switched off).
func (in *injector) run(ctx context.Context, plan []faultPlan) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range plan {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(in.start.Add(p.at))):
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.do(p)
		}()
	}
	<-ctx.Done()
}

func (in *injector) since() time.Duration { return time.Since(in.start) }

func (in *injector) do(p faultPlan) {
	wall, start := time.Now(), in.since()
	r := faultRecord{kind: p.kind, start: start, wall: wall}
	switch p.kind {
	case faultRedisKill:
		in.redisDown.Store(true)
		err := in.redis.kill()
		down := in.since()
		time.Sleep(time.Until(wall.Add(p.dur)))
		if err2 := in.redis.start(); err2 != nil {
			err = errors.Join(err, fmt.Errorf("restart: %w", err2))
		}
		in.redisDown.Store(false)
		r.end = in.since()
		r.note = fmt.Sprintf("(%s; gone at +%s, answering PING again at +%s)", in.redis.mode, fmtDur(down), fmtDur(r.end))
		if err != nil {
			r.note += " error: " + err.Error()
		}
	case faultRedisSleep:
		if in.redisDown.Load() {
			r.end, r.note = start, "skipped: Redis is down (killed)"
			break
		}
		err := in.redis.debugSleep(p.dur)
		r.end = in.since()
		r.note = fmt.Sprintf("DEBUG SLEEP %g", p.dur.Seconds())
		if err != nil {
			r.note += " error: " + err.Error()
		}
	case faultUpstream:
		in.primary.failPct.Store(in.failPct)
		time.Sleep(time.Until(wall.Add(p.dur)))
		in.primary.failPct.Store(0)
		r.end = in.since()
		r.note = fmt.Sprintf("primary upstream answers %d%% of calls 503", in.failPct)
	case faultStreamCut:
		in.primary.cut.Store(true)
		time.Sleep(time.Until(wall.Add(p.dur)))
		in.primary.cut.Store(false)
		r.end = in.since()
		r.note = fmt.Sprintf("primary upstream cuts every stream after %d chunks", cutAfter)
	}
	in.record(r)
}

// active names the faults under way at t (with slack after each ends, for
// requests that started during it and for the router's health memory).
func active(recs []faultRecord, t, slack time.Duration) []string {
	var out []string
	for _, r := range recs {
		if t >= r.start-time.Second && t <= r.end+slack {
			out = append(out, fmt.Sprintf("%s@+%s", r.kind, fmtDur(r.start)))
		}
	}
	return out
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
