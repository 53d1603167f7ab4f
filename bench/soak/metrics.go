package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// parseProm sums a Prometheus text exposition by metric name, labels
// dropped: {"switchyard_cost_USD_total": 1.25, ...}.
func parseProm(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		var name, rest string
		if i := strings.IndexAny(line, "{ "); i < 0 {
			continue
		} else if line[i] == '{' {
			j := strings.LastIndex(line, "}")
			if j < i {
				continue
			}
			name, rest = line[:i], line[j+1:]
		} else {
			name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// metricPoint is one reading of /metrics.
type metricPoint struct {
	at   time.Duration
	vals map[string]float64
}

// metricSampler reads /metrics every so often during the run.
type metricSampler struct {
	url    string
	mu     sync.Mutex
	points []metricPoint
	errs   int
}

func (m *metricSampler) run(ctx context.Context, start time.Time, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		text, err := getText(m.url, "")
		m.mu.Lock()
		if err != nil {
			m.errs++
		} else {
			m.points = append(m.points, metricPoint{at: time.Since(start), vals: parseProm(text)})
		}
		m.mu.Unlock()
	}
}

func (m *metricSampler) all() []metricPoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]metricPoint(nil), m.points...)
}

// stamp is a timestamp in a plain log line (Go's log package, Redis's
// client library), removed so that such lines are counted together.
var stamp = regexp.MustCompile(`\d{4}[/-]\d{2}[/-]\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z? ?`)

// logCount is how often the gateway logged one message at one level.
type logCount struct {
	level, msg string
	n          int
	example    string // an error attribute, when there is one
}

// logCounts counts the gateway's log lines by level and message, most
// frequent first.
func logCounts(path string) []logCount {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	counts := map[[2]string]*logCount{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var l struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Error  string `json:"error"`
			Status int    `json:"status"`
			Code   string `json:"error_code"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			l.Level, l.Msg = "(not JSON)", stamp.ReplaceAllString(line, "")
			if len(l.Msg) > 100 {
				l.Msg = l.Msg[:100] + "…"
			}
		} else if l.Msg == "request" && l.Status != 0 {
			// Access-log lines: one kind per status and error code.
			l.Msg = fmt.Sprintf("request %d %s", l.Status, l.Code)
		}
		k := [2]string{l.Level, l.Msg}
		c := counts[k]
		if c == nil {
			c = &logCount{level: l.Level, msg: l.Msg}
			counts[k] = c
		}
		c.n++
		if c.example == "" && l.Error != "" {
			c.example = l.Error
			if len(c.example) > 160 {
				c.example = c.example[:160] + "…"
			}
		}
	}
	out := make([]logCount, 0, len(counts))
	for _, c := range counts {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].msg < out[j].msg
	})
	return out
}
