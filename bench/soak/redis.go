package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProc is a redis-server this program started and may kill and
// restart. Its data survives a restart: with kill mode "shutdown" Redis is
// stopped with SHUTDOWN SAVE (an RDB in dir, read back at the next start);
// with "sigkill" it runs with an fsync-always append-only file and is
// killed with SIGKILL, which loses no acknowledged write either. Without
// that, a restart would empty the ledger and no comparison would mean
// anything.
type redisProc struct {
	bin, dir, addr, mode string
	debug                bool // --enable-debug-command is needed (Redis >= 7)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	client *redis.Client
}

// redisMajor reads the major version from redis-server --version.
func redisMajor(bin string) (int, string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return 0, "", fmt.Errorf("%s --version: %w", bin, err)
	}
	m := regexp.MustCompile(`v=(\d+)\.(\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, string(out), fmt.Errorf("cannot read the version in %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	return major, fmt.Sprintf("%s.%s.%s", m[1], m[2], m[3]), nil
}

func newRedisProc(bin, dir, addr, mode string) (*redisProc, string, error) {
	major, version, err := redisMajor(bin)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	p := &redisProc{bin: bin, dir: dir, addr: addr, mode: mode, debug: major >= 7}
	p.client = redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: time.Second, MaxRetries: -1, PoolSize: 2})
	return p, version, nil
}

func (p *redisProc) args() []string {
	_, port, _ := net.SplitHostPort(p.addr)
	a := []string{"--port", port, "--bind", "127.0.0.1", "--protected-mode", "no", "--save", "",
		"--dir", p.dir, "--dbfilename", "dump.rdb", "--logfile", filepath.Join(p.dir, "redis.log"), "--daemonize", "no"}
	if p.mode == "sigkill" {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always", "--appendfilename", "soak.aof")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if p.debug {
		a = append(a, "--enable-debug-command", "yes")
	}
	return a
}

// start runs redis-server and waits until it answers PING.
func (p *redisProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	// A restart reads the RDB or AOF back: a long run's ledger takes a while.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start; see %s", filepath.Join(p.dir, "redis.log"))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := p.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer PING within 60s", p.addr)
}

// kill stops Redis the way mode says and waits until the process is gone.
func (p *redisProc) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if p.mode == "sigkill" {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// The reply never comes: the connection closes as Redis exits.
		_ = p.client.Do(ctx, "SHUTDOWN", "SAVE").Err()
		cancel()
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("redis did not exit within 10s; killed")
	}
	p.cmd = nil
	return nil
}

// debugSleep blocks Redis's event loop for d.
func (p *redisProc) debugSleep(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Second)
	defer cancel()
	return p.client.Do(ctx, "DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)).Err()
}

// stop ends Redis for good.
func (p *redisProc) stop() {
	p.mu.Lock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
		p.cmd = nil
	}
	p.mu.Unlock()
	_ = p.client.Close()
}
