package main

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/policies"
)

func runCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestConfigCheckMasksSecrets(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-live-very-secret")
	out, err := runCmd(t, "", "config", "check", "-config", "../../config.yaml")
	require.NoError(t, err)
	assert.Contains(t, out, "is valid")
	assert.Contains(t, out, "api_key: '********'")
	// The providers whose keys are not set are named, with the variable.
	assert.NotContains(t, out, `backend "openai" has no API key`)
	if os.Getenv("ANTHROPIC_API_KEY") == "" {
		assert.Contains(t, out, `warning: backend "anthropic" has no API key: set ANTHROPIC_API_KEY`)
	}
	assert.NotContains(t, out, "sk-live-very-secret")
}

func TestConfigCheckReportsFieldPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("backends:\n  - name: x\n    kind: local\n    base_url: http://h/v1\n    price: {input_per_mtok: -1}\n"), 0o600))
	_, err := runCmd(t, "", "config", "check", "-config", path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "backends[0].price.input_per_mtok: must be >= 0")
}

func TestKeyHash(t *testing.T) {
	out, err := runCmd(t, "", "key", "hash", "sk-switchyard-dev")
	require.NoError(t, err)
	assert.Equal(t, "8edd8fc603d1de18ee8dcf261109b9486994e9fd6b674a0177e29b88128a7ef3\n", out)
	fromStdin, err := runCmd(t, "sk-switchyard-dev\n", "key", "hash")
	require.NoError(t, err)
	assert.Equal(t, out, fromStdin)
}

func TestVersionAndUnknown(t *testing.T) {
	out, err := runCmd(t, "", "version")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "switchyard "))
	_, err = runCmd(t, "", "frobnicate")
	assert.ErrorContains(t, err, `unknown command "frobnicate"`)
	_, err = runCmd(t, "", "serve", "-config", "/does/not/exist.yaml")
	assert.ErrorContains(t, err, "reading config")
}

func TestPolicyCommands(t *testing.T) {
	out, err := runCmd(t, "", "policy", "test")
	require.NoError(t, err)
	assert.Contains(t, out, "PASS data.switchyard_test.test_pii_stays_local")
	assert.Contains(t, out, "0 failed; coverage 100.0%")

	out, err = runCmd(t, "", "policy", "check")
	require.NoError(t, err)
	assert.Contains(t, out, "bundle is valid")

	out, err = runCmd(t, "", "policy", "explain", "../../policies/examples/card-number.json")
	require.NoError(t, err)
	assert.Contains(t, out, `"routes": [
      "ollama/llama3.2"
    ]`)
	assert.Contains(t, out, "DATA_RESIDENCY")
	assert.Contains(t, out, "routing.rego:")

	// With a request body: which detector fired on which field, never the value.
	body := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(body, []byte(`{"model":"default","user":"jane@bank.de","messages":[{"role":"user","content":"EMP-123456 pays with 4532.0736.2915.0489"}]}`), 0o600))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("classification:\n  custom:\n    - {label: EMPLOYEE_ID, pattern: 'EMP-\\d{6}'}\n"), 0o600))
	out, err = runCmd(t, "", "policy", "explain", "-request", body, "-config", cfg, "../../policies/examples/card-number.json")
	require.NoError(t, err)
	var x struct {
		Detections []struct{ Label, Path string } `json:"detections"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &x), out)
	assert.Equal(t, []struct{ Label, Path string }{{"EMAIL", "user"}, {"EMPLOYEE_ID", "messages.0.content"}, {"CREDIT_CARD", "messages.0.content"}}, x.Detections)
	assert.NotContains(t, out, "jane@bank.de")
	assert.NotContains(t, out, "0736")

	// A broken bundle fails check and test, naming the problem.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package switchyard\n\nimport rego.v1\n\nx if { y := 1; true }\n"), 0o600))
	_, err = runCmd(t, "", "policy", "check", dir)
	assert.ErrorContains(t, err, "assigned var y unused")
	_, err = runCmd(t, "", "policy", "test", "-threshold", "90", dir)
	assert.Error(t, err)
}

// server.debug_listen serves Go's profiles, and only there.
func TestDebugListener(t *testing.T) {
	addr, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("%d %.200s", resp.StatusCode, body)
	}
	if _, _, err := serveDebug(addr, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second listener on a taken address started")
	}
}

// key hash -h is help, not a key; key new prints a fresh key once and a
// config entry whose hash is that key's, which config accepts.
func TestKeyCommands(t *testing.T) {
	out, err := runCmd(t, "", "key", "hash", "-h")
	require.NoError(t, err)
	assert.Contains(t, out, "usage: switchyard key hash")
	assert.NotRegexp(t, `(?m)^[0-9a-f]{64}$`, out)
	out, err = runCmd(t, "", "key", "hash", "--", "-starts-with-a-dash")
	require.NoError(t, err)
	assert.Equal(t, gateway.HashKey("-starts-with-a-dash")+"\n", out)
	_, err = runCmd(t, "", "key", "frob")
	assert.ErrorContains(t, err, `unknown key command "frob"`)

	for _, tc := range []struct {
		args  []string
		entry string
	}{
		{[]string{"key", "new"}, `keys:\n  - {id: my-key, sha256: (\w+), tenant: default}`},
		{[]string{"key", "new", "-id", "team-a", "-tenant", "acme", "-team", "research"}, `keys:\n  - {id: team-a, sha256: (\w+), tenant: acme, team: research}`},
		{[]string{"key", "new", "-admin"}, `admin:\n  keys:\n    - {id: admin, sha256: (\w+)}`},
	} {
		out, err := runCmd(t, "", tc.args...)
		require.NoError(t, err)
		key := regexp.MustCompile(`shown once; only its hash is stored\): (sk-sy-[A-Za-z0-9_-]{43})\n`).FindStringSubmatch(out)
		require.NotNil(t, key, out)
		m := regexp.MustCompile(tc.entry).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		assert.Equal(t, gateway.HashKey(key[1]), m[1])
		again, _ := runCmd(t, "", tc.args...)
		assert.NotContains(t, again, key[1], "every key is new")
	}
}

// policy export writes the shipped bundle as files that pass their own
// tests, and never overwrites a file already there.
func TestPolicyExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	out, err := runCmd(t, "", "policy", "export", dir)
	require.NoError(t, err)
	assert.Contains(t, out, "wrote the shipped bundle to "+dir)
	var files int
	require.NoError(t, fs.WalkDir(policies.Shipped(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, _ := fs.ReadFile(policies.Shipped(), p)
		got, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err, p)
		assert.Equal(t, string(want), string(got), p)
		files++
		return nil
	}))
	assert.Positive(t, files)
	out, err = runCmd(t, "", "policy", "test", dir)
	require.NoError(t, err, out)
	assert.Contains(t, out, " 0 failed")
	_, err = runCmd(t, "", "policy", "export", dir)
	assert.Error(t, err, "an existing bundle is not overwritten")

	// A module of one's own adds an exclusion beside the shipped ones.
	mine := `package switchyard

exclusion contains {"id": c.id, "code": "LAB_LOCAL", "message": "the lab team stays local"} if {
	input.subject.team == "lab"
	some c in input.candidates
	c.kind == "proprietary"
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.rego"), []byte(mine), 0o644))
	out, err = runCmd(t, "", "policy", "check", dir)
	require.NoError(t, err, out)
	assert.Contains(t, out, "bundle is valid")
}

// Every command and subcommand takes -h and --help: it prints its usage,
// succeeds (exit 0, no "flag: help requested") and does nothing else:
// policy export -h once wrote the bundle to ./-h, and policy check -h read
// a bundle from it. The top-level usage lists each of them.
func TestHelpForEveryCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	top, err := runCmd(t, "", "-h")
	require.NoError(t, err)
	assert.Contains(t, top, "switchyard --version")

	for _, tc := range []struct {
		args   []string
		usage  string // in the command's help
		listed string // in the top-level usage
	}{
		{[]string{"serve"}, "usage: switchyard [serve] [-config PATH]", "switchyard [serve]"},
		{[]string{"config"}, "usage: switchyard config check", "switchyard config check"},
		{[]string{"config", "check"}, "usage: switchyard config check", "switchyard config check"},
		{[]string{"key"}, "switchyard key new [flags]", "switchyard key"},
		{[]string{"key", "hash"}, "usage: switchyard key hash [KEY]", "switchyard key hash"},
		{[]string{"key", "new"}, "usage: switchyard key new", "switchyard key new"},
		{[]string{"policy"}, "switchyard policy export DIR", "switchyard policy"},
		{[]string{"policy", "test"}, "usage: switchyard policy test", "switchyard policy test"},
		{[]string{"policy", "check"}, "usage: switchyard policy check", "switchyard policy check"},
		{[]string{"policy", "explain"}, "usage: switchyard policy explain", "switchyard policy explain"},
		{[]string{"policy", "export"}, "usage: switchyard policy export DIR", "switchyard policy export"},
		{[]string{"model"}, "switchyard model generate", "switchyard model generate"},
		{[]string{"model", "generate"}, "switchyard model generate", "switchyard model generate"},
		{[]string{"llama"}, "usage: switchyard llama fetch", "switchyard llama fetch"},
		{[]string{"llama", "fetch"}, "usage: switchyard llama fetch", "switchyard llama fetch"},
		{[]string{"healthcheck"}, "usage: switchyard healthcheck", "switchyard healthcheck"},
		{[]string{"version"}, "usage: switchyard version", "switchyard version"},
		{nil, "switchyard version [-json]", "switchyard help"},
	} {
		assert.Contains(t, top, tc.listed, "the top-level usage lists it")
		for _, help := range []string{"-h", "-help", "--help"} {
			args := append(append([]string{}, tc.args...), help)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, err := runCmd(t, "", args...)
				require.NoError(t, err, out)
				assert.Contains(t, out, tc.usage)
				assert.NotContains(t, out, "help requested")
				assert.NotContains(t, out, "wrote the shipped bundle")
				entries, err := os.ReadDir(".")
				require.NoError(t, err)
				assert.Empty(t, entries, "help writes nothing")
			})
		}
	}

	// After --, "-h" is an argument: a key to hash, a directory to export to.
	out, err := runCmd(t, "", "key", "hash", "--", "-h")
	require.NoError(t, err)
	assert.Equal(t, gateway.HashKey("-h")+"\n", out)
	out, err = runCmd(t, "", "policy", "export", "--", "-h")
	require.NoError(t, err)
	assert.Contains(t, out, "wrote the shipped bundle to -h")
	assert.DirExists(t, "-h")
}

// An admin key has no tenant or team: asking for one with -admin is a
// usage error, not an entry that silently drops them.
func TestKeyNewAdminConflicts(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-admin", "-tenant", "x"}, "key new: -tenant cannot go with -admin"},
		{[]string{"-admin", "-team", "y"}, "key new: -team cannot go with -admin"},
		{[]string{"--admin", "--tenant", "x", "--team", "y"}, "key new: -team and -tenant cannot go with -admin"},
		{[]string{"-tenant", "default", "-admin"}, "key new: -tenant cannot go with -admin"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := runCmd(t, "", append([]string{"key", "new"}, tc.args...)...)
			require.ErrorContains(t, err, tc.err)
			assert.ErrorContains(t, err, "an admin key has no tenant or team")
			assert.NotContains(t, out, "sk-sy-", "no key is made")
		})
	}
}
