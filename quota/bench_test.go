package quota

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchChecks are a typical admission: requests and tokens per minute for
// the key, a month's budget for the team. The limits never bind.
var benchChecks = []Check{
	{Key: "key:k1:rpm", Kind: Rate, Metric: Requests, Limit: 1 << 40, Period: time.Minute, Amount: 1},
	{Key: "key:k1:tpm", Kind: Rate, Metric: Tokens, Limit: 1 << 40, Period: time.Minute, Amount: 2_000},
	{Key: "team:search:usd-month:2026-11", Kind: Budget, Metric: USD, Limit: 1 << 50, Period: 62 * 24 * time.Hour, Amount: 30_000},
}

var benchActual = map[string]int64{"key:k1:rpm": 1, "key:k1:tpm": 1_200, "team:search:usd-month:2026-11": 18_000}

// benchReserveSettle times the two round trips a request makes, and
// reports the p50 and p99 of each: the reservation on the request path,
// the settlement after it.
func benchReserveSettle(b *testing.B, s Store, tag string) {
	ctx := context.Background()
	var res, set []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := "b" + strconv.Itoa(i)
		t0 := time.Now()
		a, err := s.Reserve(ctx, tag, id, benchChecks, time.Minute)
		t1 := time.Now()
		if err != nil || !a.Allowed {
			b.Fatalf("Reserve = %+v, %v", a, err)
		}
		if err := s.Settle(ctx, tag, id, benchChecks, benchActual); err != nil {
			b.Fatal(err)
		}
		res, set = append(res, t1.Sub(t0)), append(set, time.Since(t1))
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"reserve", res}, {"settle", set}} {
		slices.Sort(m.d)
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds()), m.name+"-p50-µs")
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds()), m.name+"-p99-µs")
	}
}

func BenchmarkMemoryReserveSettle(b *testing.B) {
	benchReserveSettle(b, NewMemory(nil), "t:bench")
}

func BenchmarkRedisReserveSettle(b *testing.B) {
	s := NewRedis(stRedisClient(b, stRedisAddr(b)), stPrefix)
	benchReserveSettle(b, s, "bench:"+strconv.FormatInt(time.Now().UnixNano(), 10))
}

// BenchmarkRedisReserveSettleParallel: many requests of one tenant at once
// (one hash slot, so they serialise in Redis).
func BenchmarkRedisReserveSettleParallel(b *testing.B) {
	s := NewRedis(stRedisClient(b, stRedisAddr(b)), stPrefix)
	tag := "bench:" + strconv.FormatInt(time.Now().UnixNano(), 10)
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := "p" + strconv.FormatInt(seq.Add(1), 10)
			if _, err := s.Reserve(ctx, tag, id, benchChecks, time.Minute); err != nil {
				b.Error(err)
				return
			}
			if err := s.Settle(ctx, tag, id, benchChecks, benchActual); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
