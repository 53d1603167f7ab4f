package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one reading of the gateway process from /proc.
type sample struct {
	at      time.Duration // since the load started
	rssKiB  int64         // VmRSS
	hwmKiB  int64         // VmHWM, the peak RSS so far
	threads int64         // Threads
	fds     int64         // open file descriptors
	load1   float64       // the machine's 1-minute load average
}

// readProc reads pid's VmRSS, VmHWM and Threads from /proc/PID/status
// and counts /proc/PID/fd.
func readProc(pid int) (sample, error) {
	var s sample
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "VmHWM":
			s.hwmKiB = n
		case "Threads":
			s.threads = n
		}
	}
	if s.rssKiB == 0 {
		return s, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = int64(len(ents))
	}
	s.load1 = loadAvg()
	return s, sc.Err()
}

// loadAvg is the machine's 1-minute load average, 0 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// sampler reads the gateway every interval until ctx ends.
type sampler struct {
	mu      sync.Mutex
	samples []sample
}

func (sm *sampler) run(ctx context.Context, pid int, start time.Time, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if s, err := readProc(pid); err == nil {
			s.at = time.Since(start)
			sm.mu.Lock()
			sm.samples = append(sm.samples, s)
			sm.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (sm *sampler) all() []sample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]sample(nil), sm.samples...)
}

// slope fits y = a + b·x by least squares and returns b; ok is false with
// fewer than two distinct x.
func slope(xs, ys []float64) (b float64, ok bool) {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0, false
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range xs {
		dx := xs[i] - mx
		sxx += dx * dx
		sxy += dx * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// memStats summarises samples taken during the load.
type memStats struct {
	n                      int
	minRSS, maxRSS, hwm    float64 // MiB
	firstRSS, lastRSS      float64 // MiB
	slopeMiBh              float64 // MiB per hour, second half of the run
	slopeOK                bool
	slopeN                 int
	minThreads, maxThreads int64
	minFDs, maxFDs         int64
	fdSlopePerH            float64
	maxLoad, meanLoad      float64
}

func summarise(samples []sample, loadDur time.Duration) memStats {
	var m memStats
	if len(samples) == 0 {
		return m
	}
	m.n = len(samples)
	m.minRSS, m.minThreads, m.minFDs = 1e18, 1<<62, 1<<62
	var xs, ys, fs []float64
	for _, s := range samples {
		r := float64(s.rssKiB) / 1024
		m.minRSS, m.maxRSS = min(m.minRSS, r), max(m.maxRSS, r)
		m.hwm = max(m.hwm, float64(s.hwmKiB)/1024)
		m.minThreads, m.maxThreads = min(m.minThreads, s.threads), max(m.maxThreads, s.threads)
		m.minFDs, m.maxFDs = min(m.minFDs, s.fds), max(m.maxFDs, s.fds)
		m.maxLoad = max(m.maxLoad, s.load1)
		m.meanLoad += s.load1 / float64(len(samples))
		if s.at >= loadDur/2 && s.at <= loadDur {
			xs = append(xs, s.at.Hours())
			ys = append(ys, r)
			fs = append(fs, float64(s.fds))
		}
	}
	m.firstRSS = float64(samples[0].rssKiB) / 1024
	m.lastRSS = float64(samples[len(samples)-1].rssKiB) / 1024
	m.slopeN = len(xs)
	m.slopeMiBh, m.slopeOK = slope(xs, ys)
	m.fdSlopePerH, _ = slope(xs, fs)
	return m
}
