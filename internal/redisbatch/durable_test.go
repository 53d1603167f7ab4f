package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redistest"
)

// A durable batch succeeds once the replica holds its writes; without a
// replica to confirm, each call fails with ErrNotReplicated although its
// write ran on the primary (the caller retries it).
func TestDurable(t *testing.T) {
	ctx := context.Background()
	r := redistest.Primary(t, 1)
	c := redis.NewClient(&redis.Options{Addr: r.Primary.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	for _, linger := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run(fmt.Sprintf("linger %s", linger), func(t *testing.T) {
			b := NewDurable(c, linger, Durability{Replicas: 1, Timeout: time.Second})
			key := fmt.Sprintf("durable:%d", time.Now().UnixNano())
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					if err := b.Run(ctx, incr, []string{key}, 1).Err(); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// Every call returned only once the replica had its write.
			got, err := r.Replicas[0].Client().Get(ctx, key).Int()
			if err != nil || got != 50 {
				t.Fatalf("replica holds %d (%v), want 50", got, err)
			}
		})
	}

	t.Run("no replica confirms", func(t *testing.T) {
		b := NewDurable(c, 0, Durability{Replicas: 2, Timeout: 50 * time.Millisecond})
		key := fmt.Sprintf("durable:%d", time.Now().UnixNano())
		err := b.Run(ctx, incr, []string{key}, 1).Err()
		if !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("err = %v, want ErrNotReplicated", err)
		}
		if n, _ := c.Get(ctx, key).Int(); n != 1 {
			t.Fatalf("primary holds %d, want the write (1)", n)
		}
	})

	t.Run("scripts flushed", func(t *testing.T) {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		b := NewDurable(c, 0, Durability{Replicas: 1, Timeout: time.Second})
		key := fmt.Sprintf("durable:%d", time.Now().UnixNano())
		if v, err := b.Run(ctx, incr, []string{key}, 7).Int64(); err != nil || v != 7 {
			t.Fatalf("got %d, %v", v, err)
		}
	})
}

// On Redis Cluster a batch is split per primary, each part followed by
// its own WAIT: keys in every slot are confirmed by their replicas.
func TestDurableCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t, 3, 1)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	b := NewDurable(c, 2*time.Millisecond, Durability{Replicas: 1, Timeout: time.Second})
	var wg sync.WaitGroup
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = fmt.Sprintf("durable:{t%d}", i)
		wg.Go(func() {
			if v, err := b.Run(ctx, incr, []string{keys[i]}, i+1).Int64(); err != nil || v != int64(i+1) {
				t.Errorf("%s: %d, %v", keys[i], v, err)
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		_, replica := cl.PrimaryAndReplica(k)
		rc := replica.Client()
		rc.ReadOnly(ctx)
		if got, err := rc.Get(ctx, k).Int(); err != nil || got != i+1 {
			t.Fatalf("%s on its replica: %d, %v", k, got, err)
		}
	}
}
