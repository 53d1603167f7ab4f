package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/llamalib"
)

// syncBuffer is a log destination written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoConfig is config.yaml's demo in a temporary directory: the model
// generated when missing, the libraries fetched when missing.
func demoConfig(t *testing.T, libDir, modelPath string) string {
	t.Helper()
	y := fmt.Sprintf(`
server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}
log: {level: info}
policy: {audit: none}
local_engine:
  lib_dir: %q
  fetch_libraries: true
  models:
    - {name: demo, path: %q, context: 512, slots: 2, threads: 1, generate: tiny}
backends:
  - {name: local, kind: local, region: eu-west-1, jurisdiction: EU}
models:
  - name: demo
    deployments: [{backend: local, model: demo}]
keys:
  - {id: dev, sha256: %s, tenant: default, team: dev}
`, libDir, modelPath, gateway.HashKey("sk-switchyard-dev"))
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(y), 0o644))
	return path
}

// startServe runs serveUntil on cfgPath until the test ends and returns
// its address and log.
func startServe(t *testing.T, cfgPath string) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- serveUntil(ctx, func() {}, cfgPath, logs, func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case a := <-addrc:
		return a.String(), logs
	case err := <-errc:
		t.Fatalf("serve returned before listening: %v\n%s", err, logs)
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not listen\n%s", logs)
	}
	return "", nil
}

func chatDemo(t *testing.T, addr string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-switchyard-dev")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The demo as a newcomer meets it: no model file, so serve generates it
// before it starts, and "demo" answers 200 from the embedded engine. The
// libraries are the real ones (the download itself is tested in
// localengine/llamalib against a local registry): present and pinned, so
// nothing is fetched.
func TestServeGeneratesTheDemoModel(t *testing.T) {
	lib := localengine.LibDir("")
	if !filepath.IsAbs(lib) && os.Getenv(localengine.LibEnv) == "" {
		lib = filepath.Join("..", "..", localengine.DefaultLibDir)
	}
	if _, err := localengine.Open(lib); err != nil {
		if os.Getenv("SWITCHYARD_REQUIRE_LLAMA") == "1" {
			t.Fatalf("llama.cpp libraries required (SWITCHYARD_REQUIRE_LLAMA=1) but not loadable: %v", err)
		}
		t.Skipf("llama.cpp libraries not available: %v", err)
	}
	if st, _ := llamalib.Inspect(lib); st != llamalib.Pinned {
		t.Skipf("%s is not the pinned build (%s): serve would fetch it", lib, llamalib.Pin)
	}
	called := false
	old := fetchLlama
	fetchLlama = func(context.Context, string, llamalib.Options) (llamalib.Result, error) {
		called = true
		return llamalib.Result{}, errors.New("no fetch expected")
	}
	t.Cleanup(func() { fetchLlama = old })

	model := filepath.Join(t.TempDir(), "models", "demo.gguf")
	addr, logs := startServe(t, demoConfig(t, lib, model))
	code, body := chatDemo(t, addr)
	require.Equal(t, http.StatusOK, code, "%s\n%s", body, logs)
	assert.Contains(t, body, `"object":"chat.completion"`)
	assert.FileExists(t, model)
	assert.False(t, called, "the libraries were there")
	out := logs.String()
	assert.Contains(t, out, `"msg":"generating local model (local_engine.models[].generate): random weights, its text is noise","model":"demo","path":"`+model+`","shape":"tiny"`)
	assert.Contains(t, out, `"msg":"generated local model","model":"demo"`)
	assert.Contains(t, out, `"msg":"local model loaded","model":"demo"`)
	assert.NotContains(t, out, "fetching llama.cpp libraries")
	assert.Less(t, strings.Index(out, "generated local model"), strings.Index(out, "switchyard listening"), "generated before serving")
}

// A fetch that fails (no network, a tampered download) is a warning that
// names the cause and the manual step; the gateway starts all the same
// and "demo" answers 503 model_not_loaded, as without fetch_libraries.
func TestServeStartsWhenTheFetchFails(t *testing.T) {
	if err := llamalib.Supported(); err != nil {
		t.Skip(err)
	}
	var gotDir string
	old := fetchLlama
	fetchLlama = func(_ context.Context, dir string, _ llamalib.Options) (llamalib.Result, error) {
		gotDir = dir
		return llamalib.Result{}, errors.New(`downloading https://registry.npmjs.org/...: dial tcp: lookup registry.npmjs.org: no such host`)
	}
	t.Cleanup(func() { fetchLlama = old })

	lib := filepath.Join(t.TempDir(), "lib")
	model := filepath.Join(t.TempDir(), "demo.gguf")
	addr, logs := startServe(t, demoConfig(t, lib, model))
	assert.Equal(t, lib, gotDir)
	code, body := chatDemo(t, addr)
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Contains(t, body, "model_not_loaded")
	out := logs.String()
	assert.Contains(t, out, `"msg":"fetching llama.cpp libraries (10.6 MB) (local_engine.fetch_libraries)","package":"`+llamalib.Pin+`","from":"`+llamalib.URL+`","into":"`+lib+`"`)
	assert.Regexp(t, regexp.MustCompile(`"level":"WARN","msg":"llama.cpp libraries not fetched: the local engine's models will not load","dir":"[^"]+","error":"[^"]*no such host","fix":"check the network \(HTTPS to registry.npmjs.org, or HTTPS_PROXY\) and restart, or run scripts/fetch-llama.sh `+regexp.QuoteMeta(lib)), out)
	assert.FileExists(t, model, "the model is generated all the same")
	assert.Contains(t, out, "switchyard listening")
}

// Without fetch_libraries or generate, serve downloads and writes nothing.
func TestServeProvisionsOnlyWhenAsked(t *testing.T) {
	old := fetchLlama
	fetchLlama = func(context.Context, string, llamalib.Options) (llamalib.Result, error) {
		t.Error("fetched without fetch_libraries")
		return llamalib.Result{}, nil
	}
	t.Cleanup(func() { fetchLlama = old })
	model := filepath.Join(t.TempDir(), "demo.gguf")
	provisionLocal(context.Background(), config.LocalEngine{LibDir: t.TempDir(), Models: []config.LocalModel{{Name: "demo", Path: model}}}, slog.New(slog.DiscardHandler))
	assert.NoFileExists(t, model)
	// A library directory with a build of its own is left alone.
	own := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(own, "libllama.so"), nil, 0o644))
	logs := &syncBuffer{}
	provisionLocal(context.Background(), config.LocalEngine{LibDir: own, FetchLibraries: true, Models: []config.LocalModel{{Name: "demo", Path: model}}}, newLogger(config.Log{Level: "info"}, logs))
	assert.Contains(t, logs.String(), "holds a llama.cpp build of its own")
}

func TestLlamaFetchCommand(t *testing.T) {
	if err := llamalib.Supported(); err != nil {
		t.Skip(err)
	}
	old := fetchLlama
	fetchLlama = func(_ context.Context, dir string, _ llamalib.Options) (llamalib.Result, error) {
		return llamalib.Result{Dir: dir, Files: []string{"libggml.so", "libllama.so"}}, nil
	}
	t.Cleanup(func() { fetchLlama = old })
	dir := t.TempDir()
	out, err := runCmd(t, "", "llama", "fetch", dir)
	require.NoError(t, err)
	assert.Equal(t, "fetching llama.cpp libraries "+llamalib.Pin+" (10.6 MB) from "+llamalib.URL+" into "+dir+"\n"+
		"llama.cpp libraries in "+dir+" ("+llamalib.Pin+"): libggml.so libllama.so\n", out)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "libllama.so"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".version"), []byte(llamalib.Pin+"\n"), 0o644))
	out, err = runCmd(t, "", "llama", "fetch", dir)
	require.NoError(t, err)
	assert.Equal(t, "llama.cpp libraries already in "+dir+" ("+llamalib.Pin+")\n", out)

	for _, args := range [][]string{{"llama"}, {"llama", "get"}, {"llama", "fetch", "a", "b"}} {
		_, err := runCmd(t, "", args...)
		assert.ErrorContains(t, err, "usage: switchyard llama fetch [DIR]", args)
	}
	// Help asked for is not an error, and fetches nothing.
	out, err = runCmd(t, "", "llama", "fetch", "-h")
	require.NoError(t, err)
	assert.Contains(t, out, "usage: switchyard llama fetch [DIR]")
	assert.NotContains(t, out, "fetching")
}

// Every shape config accepts for generate is one `model generate` writes.
func TestGenerateShapes(t *testing.T) {
	for _, name := range config.GenerateShapes {
		_, err := shapeNamed(name)
		assert.NoError(t, err, name)
	}
}
