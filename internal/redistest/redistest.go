// Package redistest starts real redis-server processes for tests: a
// primary with replicas, a Redis Cluster, Sentinels. Every process is a
// child of the test, on free loopback ports, in the test's temp dir, and
// stopped when the test ends. Without redis-server installed the test is
// skipped, or fails when SWITCHYARD_REQUIRE_REDIS=1.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Proc is one redis-server (or Sentinel) process.
type Proc struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    bytes.Buffer
	client *redis.Client
}

// Addr is the process's host:port.
func (p *Proc) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// Client is a plain client of this one process (one per process), closed
// with the test.
func (p *Proc) Client() *redis.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		p.client = redis.NewClient(&redis.Options{Addr: p.Addr(), DialTimeout: time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1})
		c := p.client
		p.t.Cleanup(func() { _ = c.Close() })
	}
	return p.client
}

func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Dir = p.dir
	p.cmd.Stdout, p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.log}, &lockedWriter{mu: &p.mu, w: &p.log}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	cmd := p.cmd
	go func() { _ = cmd.Wait() }()
	return nil
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	p.cmd = nil
}

// Restart starts the killed process again, with the same arguments and
// files, and waits until it answers PING.
func (p *Proc) Restart() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("redis-server on %d: %v", p.Port, err)
	}
	if err := waitPing(p.Addr(), 10*time.Second); err != nil {
		p.t.Fatalf("redis-server on %d: %v\n%s", p.Port, err, p.Log())
	}
}

// Log is what the process printed.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Binary finds redis-server, or skips the test (fails it under
// SWITCHYARD_REQUIRE_REDIS=1).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	return bin
}

// freePort is a loopback port free now, whose cluster bus port (+10000)
// is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair")
	return 0
}

// spawn starts one process with args after --port, retrying on another
// port when the chosen one was taken meanwhile. conf, when not empty, is
// written to a config file given first (Sentinel needs one it can
// rewrite).
func spawn(t testing.TB, conf string, args ...string) *Proc {
	t.Helper()
	bin := Binary(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		dir := filepath.Join(t.TempDir(), strconv.Itoa(port))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := &Proc{t: t, bin: bin, dir: dir, Port: port}
		if conf != "" {
			file := filepath.Join(dir, "redis.conf")
			if err := os.WriteFile(file, []byte(strings.ReplaceAll(conf, "$PORT", strconv.Itoa(port))), 0o644); err != nil {
				t.Fatal(err)
			}
			p.args = append(p.args, file)
		}
		p.args = append(p.args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", "")
		p.args = append(p.args, args...)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		err := waitPing(p.Addr(), 10*time.Second)
		if err == nil {
			t.Cleanup(func() {
				p.Kill()
				if t.Failed() {
					t.Logf("redis on %d logged:\n%s", p.Port, tail(p.Log(), 40))
				}
			})
			return p
		}
		p.Kill()
		if attempt == 2 {
			t.Fatalf("redis-server did not start: %v\n%s", err, p.Log())
		}
	}
}

// noPersistence keeps test servers in memory.
var noPersistence = []string{"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"}

// Server starts one redis-server without persistence.
func Server(t testing.TB, args ...string) *Proc {
	t.Helper()
	return spawn(t, "", append(append([]string{}, noPersistence...), args...)...)
}

// Replicated is a primary and its replicas.
type Replicated struct {
	Primary  *Proc
	Replicas []*Proc
}

// Primary starts a primary with n replicas and waits until each is in
// sync.
func Primary(t testing.TB, n int) *Replicated {
	t.Helper()
	r := &Replicated{Primary: Server(t)}
	for range n {
		r.Replicas = append(r.Replicas, Server(t, "--replicaof", "127.0.0.1", strconv.Itoa(r.Primary.Port)))
	}
	waitFor(t, 20*time.Second, "replicas in sync", func() bool {
		info, err := r.Primary.Client().Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:"+strconv.Itoa(n)) && strings.Count(info, "state=online") == n
	})
	return r
}

// Cluster is a Redis Cluster on loopback.
type Cluster struct {
	t            testing.TB
	Nodes        []*Proc
	replicasEach int
}

// NewCluster starts primaries × (1 + replicasEach) nodes, creates the
// cluster with redis-cli --cluster create, and waits until every node
// reports cluster_state:ok. Nodes time out after 1 s, so a killed primary
// is replaced in a few seconds.
func NewCluster(t testing.TB, primaries, replicasEach int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Binary(t) // skips or fails the same way
		t.Fatal("redis-cli is not installed")
	}
	c := &Cluster{t: t, replicasEach: replicasEach}
	var addrs []string
	for range primaries * (1 + replicasEach) {
		n := spawn(t, "", append(append([]string{}, noPersistence...),
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			"--cluster-require-full-coverage", "no")...)
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasEach), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	return c
}

// Addrs are every node's address (seeds for a cluster client).
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// WaitOK waits until every live node says cluster_state:ok with every
// slot served, and every primary has its live replicas in sync.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, "cluster_state:ok on every node, replicas in sync", func() bool {
		ctx := context.Background()
		for _, n := range c.Nodes {
			if !n.alive() {
				continue
			}
			info, err := n.Client().ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return false
			}
			repl, err := n.Client().Info(ctx, "replication").Result()
			if err != nil {
				return false
			}
			if strings.Contains(repl, "role:master") && strings.Count(repl, "state=online") < c.liveReplicasOf(repl) {
				return false
			}
		}
		return true
	})
}

// liveReplicasOf counts the replicas a primary's INFO replication lists
// whose process is alive.
func (c *Cluster) liveReplicasOf(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "port=") {
			continue
		}
		port := line[strings.Index(line, "port=")+5:]
		port, _, _ = strings.Cut(port, ",")
		for _, p := range c.Nodes {
			if strconv.Itoa(p.Port) == port && p.alive() {
				n++
			}
		}
	}
	if n == 0 {
		for _, p := range c.Nodes {
			if !p.alive() {
				return 0 // a primary promoted after a node died may have none
			}
		}
		return min(c.replicasEach, 1) // none listed yet: wait for one
	}
	return n
}

func (p *Proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// node finds the process listening on addr.
func (c *Cluster) node(addr string) *Proc {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	c.t.Fatalf("no node %s", addr)
	return nil
}

// PrimaryOf is the process serving key's slot as primary now, and one of
// its replicas (nil when it has none), as the first live node says
// (polled until one answers).
func (c *Cluster) PrimaryOf(key string) (primary, replica *Proc) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "a primary for "+key, func() bool {
		primary, replica = c.lookup(key)
		return primary != nil
	})
	return primary, replica
}

// PrimaryAndReplica is PrimaryOf once the primary has a replica.
func (c *Cluster) PrimaryAndReplica(key string) (primary, replica *Proc) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "a primary with a replica for "+key, func() bool {
		primary, replica = c.lookup(key)
		return replica != nil
	})
	return primary, replica
}

func (c *Cluster) lookup(key string) (primary, replica *Proc) {
	ctx := context.Background()
	for _, n := range c.Nodes {
		if !n.alive() {
			continue
		}
		ks, err := n.Client().ClusterKeySlot(ctx, key).Result()
		if err != nil {
			continue
		}
		slots, err := n.Client().ClusterSlots(ctx).Result()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= ks && ks <= int64(s.End) {
				primary = c.node(s.Nodes[0].Addr)
				if len(s.Nodes) > 1 {
					replica = c.node(s.Nodes[1].Addr)
				}
				return primary, replica
			}
		}
		return nil, nil
	}
	return nil, nil
}

// Sentinels is a primary, its replicas and the Sentinels watching them.
type Sentinels struct {
	*Replicated
	Sentinels  []*Proc
	MasterName string
}

// NewSentinels starts a primary with replicas and n Sentinels (quorum
// n/2+1) that mark it down after 1 s.
func NewSentinels(t testing.TB, replicas, n int) *Sentinels {
	t.Helper()
	r := Primary(t, replicas)
	s := &Sentinels{Replicated: r, MasterName: "switchyard"}
	conf := fmt.Sprintf("port $PORT\nsentinel monitor %s 127.0.0.1 %d %d\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 10000\nsentinel parallel-syncs %[1]s 1\n",
		s.MasterName, r.Primary.Port, n/2+1)
	for range n {
		s.Sentinels = append(s.Sentinels, spawn(t, conf, "--sentinel"))
	}
	waitFor(t, 20*time.Second, "sentinels see the replicas and each other", func() bool {
		for _, sp := range s.Sentinels {
			res, err := sp.Client().Do(context.Background(), "SENTINEL", "MASTER", s.MasterName).Result()
			if err != nil {
				return false
			}
			m := fieldMap(res)
			if m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != strconv.Itoa(n-1) {
				return false
			}
		}
		return true
	})
	return s
}

// Addrs are the Sentinels' addresses.
func (s *Sentinels) Addrs() []string {
	var out []string
	for _, p := range s.Sentinels {
		out = append(out, p.Addr())
	}
	return out
}

// MasterAddr is the primary's address as the first live Sentinel says.
func (s *Sentinels) MasterAddr() string {
	for _, sp := range s.Sentinels {
		if !sp.alive() {
			continue
		}
		addr, err := sp.Client().Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName).StringSlice()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1]
		}
	}
	return ""
}

// fieldMap reads a flat [k1, v1, k2, v2, ...] reply (or a RESP3 map).
func fieldMap(v any) map[string]string {
	m := map[string]string{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			m[fmt.Sprint(x[i])] = fmt.Sprint(x[i+1])
		}
	case map[any]any:
		for k, val := range x {
			m[fmt.Sprint(k)] = fmt.Sprint(val)
		}
	}
	return m
}

func waitPing(addr string, within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling a process that is starting
	}
	return err
}

// waitFor polls cond until it holds, or fails the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond) // polling external processes
	}
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
