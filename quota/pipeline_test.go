package quota

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Concurrent calls share pipelines, each gets its own reply, and a batch
// sent after Redis lost its scripts (SCRIPT FLUSH: a restart, a failover)
// still runs every call.
func TestPipelineBatchesConcurrentCalls(t *testing.T) {
	c := stRedisClient(t, stRedisAddr(t))
	s := NewRedis(c, stPrefix)
	tag := stTag(t)
	ctx := context.Background()
	for round, flush := range []bool{false, true} {
		if flush {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		before := s.batch.Batched()
		const n, limit = 200, 50
		check := stBudget(fmt.Sprintf("budget%d", round), limit, 1)
		var wg sync.WaitGroup
		start := make(chan struct{})
		allowed := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				a, err := s.Reserve(ctx, tag, fmt.Sprintf("r%d-%d", round, i), []Check{check}, time.Minute)
				allowed[i], errs[i] = a.Allowed, err
			})
		}
		close(start)
		wg.Wait()
		admitted := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("flush %v: call %d: %v", flush, i, errs[i])
			}
			if allowed[i] {
				admitted++
			}
		}
		if admitted != limit {
			t.Fatalf("flush %v: %d of %d admitted against a budget of %d", flush, admitted, n, limit)
		}
		if s.batch.Batched() == before {
			t.Fatalf("flush %v: %d concurrent calls never shared a pipeline", flush, n)
		}
	}
}
