package redisbatch

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func client(t *testing.T) *redis.Client {
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but SWITCHYARD_TEST_REDIS is not set")
		}
		t.Skip("SWITCHYARD_TEST_REDIS is not set")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var incr = redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

// Every call of a burst runs once, with its own reply, in shared
// pipelines, also after Redis lost its scripts.
func TestBatcher(t *testing.T) {
	c := client(t)
	b := New(c)
	ctx := context.Background()
	key := fmt.Sprintf("redisbatch-test:%d", time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	for round, flush := range []bool{false, true} {
		if flush {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		before := b.Batched()
		const n = 200
		replies := make([]int64, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				v, err := b.Run(ctx, incr, []string{key}, 1).Int64()
				if err != nil {
					t.Error(err)
				}
				replies[i] = v
			})
		}
		close(start)
		wg.Wait()
		seen := map[int64]bool{}
		for _, v := range replies {
			if seen[v] || v <= int64(round*n) || v > int64((round+1)*n) {
				t.Fatalf("flush %v: reply %d repeated or out of range", flush, v)
			}
			seen[v] = true
		}
		if b.Batched() == before {
			t.Fatalf("flush %v: %d concurrent calls never shared a pipeline", flush, n)
		}
	}
}

// A call whose context has ended is not sent.
func TestBatcherEndedContext(t *testing.T) {
	c := client(t)
	key := fmt.Sprintf("redisbatch-test:%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(c).Run(ctx, incr, []string{key}, 1).Err(); err == nil {
		t.Fatal("a canceled call succeeded")
	}
	if n, _ := c.Exists(context.Background(), key).Result(); n != 0 {
		t.Fatal("a canceled call ran")
	}
}

// A lingering Batcher gathers calls that arrive one after another, not
// only those that arrive together.
func TestLingeringBatcher(t *testing.T) {
	c := client(t)
	b := NewLingering(c, 50*time.Millisecond)
	key := fmt.Sprintf("redisbatch-test:%d", time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := b.Run(context.Background(), incr, []string{key}, 1).Err(); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(time.Millisecond) // spacing the calls, not synchronising them
	}
	wg.Wait()
	if got := b.Batched(); got != 5 {
		t.Fatalf("%d of 5 calls made 1 ms apart shared a pipeline, want all", got)
	}
	if v, _ := c.Get(context.Background(), key).Int(); v != 5 {
		t.Fatalf("counter %d, want 5", v)
	}
}
