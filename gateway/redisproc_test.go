package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redistest"
)

// redisProc is a redis-server process of the test's own, on a loopback
// port nobody else uses, that the test may kill, stall and restart (the
// shared SWITCHYARD_TEST_REDIS server must not be). It is killed when the
// test ends.
type redisProc struct {
	t    *testing.T
	bin  string
	port int
	args []string
	out  *syncBuffer // the server's log, printed when the test fails

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// redisProcOptions configure startRedisProc.
type redisProcOptions struct {
	// Persist makes every acknowledged write survive Kill: an append-only
	// file fsynced before each reply, in a temporary directory (in
	// memory, /dev/shm, where there is one: a disk's fsync under load can
	// take longer than the gateway's Redis timeout, and a process kill
	// does not lose what is in memory). Without it the server keeps
	// nothing (--save '' --appendonly no), and a restarted one is empty.
	Persist bool
}

// Bounds on waiting for the process, so that a broken redis-server fails
// the test instead of hanging it.
const (
	redisStartTimeout = 10 * time.Second
	redisExitTimeout  = 10 * time.Second
)

// startRedisProc starts a redis-server on a free loopback port and waits
// until it answers PING. Without redis-server the test is skipped, unless
// SWITCHYARD_REQUIRE_REDIS=1, which makes that a failure.
func startRedisProc(t *testing.T, o redisProcOptions) *redisProc {
	t.Helper()
	bin := redistest.Binary(t)
	major, err := redisMajorVersion(bin)
	if err != nil {
		t.Fatalf("redis-server --version: %v", err)
	}
	dir := t.TempDir()
	if o.Persist {
		if d, err := os.MkdirTemp("/dev/shm", "redisproc-"); err == nil {
			dir = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	base := []string{"--bind", "127.0.0.1", "--save", "", "--dir", dir, "--logfile", ""}
	if o.Persist {
		base = append(base, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		base = append(base, "--appendonly", "no")
	}
	if major >= 7 {
		// DEBUG (Stall's DEBUG SLEEP) is off by default since Redis 7;
		// "local" allows it from loopback connections only.
		base = append(base, "--enable-debug-command", "local")
	}
	r := &redisProc{t: t, bin: bin, out: &syncBuffer{}}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("redis-server on port %d logged:\n%s", r.port, r.out.String())
		}
	})
	// The port is free when asked for, but another process may take it
	// before redis-server binds it: then try another.
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		r.args = append([]string{"--port", strconv.Itoa(r.port)}, base...)
		err = r.start()
		if err == nil {
			return r
		}
		if attempt == 2 {
			t.Fatalf("redis-server did not start: %v\n%s", err, r.out.String())
		}
	}
}

var redisVersionRE = regexp.MustCompile(`v=(\d+)\.`)

// redisMajorVersion reads the major version from `redis-server --version`
// ("Redis server v=7.0.15 sha=...").
func redisMajorVersion(bin string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := redisVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no version in %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

// Addr is host:port; it stays the same across restarts.
func (r *redisProc) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start runs the process and waits until it answers PING; it fails when
// the process exits first or does not answer in time.
func (r *redisProc) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited

	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	deadline := time.Now().Add(redisStartTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		// A server loading its append-only file answers LOADING: keep
		// asking until it answers PONG.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			r.cmd = nil
			return fmt.Errorf("redis-server exited before answering PING (last error: %v)", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			r.cmd = nil
			return fmt.Errorf("redis-server did not answer PING within %v: %v", redisStartTimeout, err)
		}
	}
}

// stop kills the process if it runs, and waits for it to exit.
func (r *redisProc) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	_ = r.cmd.Process.Kill() // SIGKILL: no shutdown, no final save
	defer func() { r.cmd = nil }()
	select {
	case <-r.exited:
		return nil
	case <-time.After(redisExitTimeout):
		return fmt.Errorf("redis-server (pid %d) did not exit within %v of SIGKILL", r.cmd.Process.Pid, redisExitTimeout)
	}
}

// Kill sends SIGKILL and waits for the process to exit: the port refuses
// connections from then on, and what was not persisted is lost.
func (r *redisProc) Kill() {
	r.t.Helper()
	if err := r.stop(); err != nil {
		r.t.Fatal(err)
	}
}

// Restart starts the server again on the same port (after a Kill) and
// waits until it answers PING.
func (r *redisProc) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting redis-server on %s: %v\n%s", r.Addr(), err, r.out.String())
	}
}

// Stall makes the server unresponsive for d (DEBUG SLEEP, sent on a
// connection of its own) and returns as soon as the command is sent,
// while the server sleeps. The channel receives the command's outcome
// (nil once the server answered, that is once the stall is over) and is
// then closed.
func (r *redisProc) Stall(d time.Duration) <-chan error {
	r.t.Helper()
	done := make(chan error, 1)
	conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		r.t.Fatalf("stall: %v", err)
	}
	secs := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	cmd := fmt.Sprintf("*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$%d\r\n%s\r\n", len(secs), secs)
	_ = conn.SetDeadline(time.Now().Add(d + 10*time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		conn.Close()
		r.t.Fatalf("stall: %v", err)
	}
	go func() {
		defer close(done)
		defer conn.Close()
		line, err := bufio.NewReader(conn).ReadString('\n')
		switch {
		case err != nil:
			done <- fmt.Errorf("DEBUG SLEEP: %w", err)
		case !strings.HasPrefix(line, "+OK"):
			done <- fmt.Errorf("DEBUG SLEEP answered %q (Redis 7 needs --enable-debug-command)", strings.TrimSpace(line))
		default:
			done <- nil
		}
	}()
	return done
}
