package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
