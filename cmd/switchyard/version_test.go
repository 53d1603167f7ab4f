package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/localengine/llamalib"
)

func fakeBuildInfo(settings ...debug.BuildSetting) *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: runtime.Version(),
		Path:      "github.com/switchyard/switchyard/cmd/switchyard",
		Main:      debug.Module{Path: "github.com/switchyard/switchyard", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/gofiber/fiber/v2", Version: "v2.52.15"},
			{Path: "github.com/hybridgroup/yzma", Version: "v1.28.0"},
			{Path: "github.com/open-policy-agent/opa", Version: "v1.22.3"},
			{Path: "github.com/redis/go-redis/v9", Version: "v9.23.0", Replace: &debug.Module{Path: "../go-redis"}},
			{Path: "github.com/valyala/fasthttp", Version: "v1.51.0"},
			{Path: "golang.org/x/text", Version: "v0.43.0"},
			// go.opentelemetry.io/otel left out: "not in this build".
		},
		Settings: settings,
	}
}

func TestVersionReport(t *testing.T) {
	modified := true
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "2fd7b5f0123456789abcdef0123456789abcdef0"},
		{Key: "vcs.time", Value: "2026-12-04T08:24:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	modules := []string{
		"modules:",
		"  github.com/open-policy-agent/opa  v1.22.3  (policy engine)",
		"  github.com/gofiber/fiber/v2       v2.52.15  (HTTP server)",
		"  github.com/valyala/fasthttp       v1.51.0  (HTTP server)",
		"  github.com/redis/go-redis/v9      v9.23.0 => ../go-redis  (quotas and ledger)",
		"  go.opentelemetry.io/otel          not in this build  (tracing)",
		"  github.com/hybridgroup/yzma       v1.28.0  (llama.cpp binding)",
		"llama.cpp libraries:",
		"  pinned:  @node-llama-cpp/linux-x64@3.21.1 (for github.com/hybridgroup/yzma@v1.28.0)",
	}
	cases := []struct {
		name     string
		bi       *debug.BuildInfo
		revision string // main.revision, as -ldflags -X sets it
		lib      map[string]string
		want     []string // every line after the first
		vcs      *vcsInfo
		status   string
		found    string
	}{
		{
			name: "stamped, libraries of the pin",
			bi:   fakeBuildInfo(vcs...),
			lib:  map[string]string{".version": llamaLibPin + "\n", "libllama.so": ""},
			want: append([]string{
				"go:        " + runtime.Version(),
				"platform:  " + runtime.GOOS + "/" + runtime.GOARCH,
				"revision:  2fd7b5f0123456789abcdef0123456789abcdef0 (2026-12-04T08:24:00Z, modified)",
			}, append(modules, "  lib dir: LIB", "  found:   @node-llama-cpp/linux-x64@3.21.1")...),
			vcs:    &vcsInfo{Revision: "2fd7b5f0123456789abcdef0123456789abcdef0", Time: "2026-12-04T08:24:00Z", Modified: &modified},
			status: "match",
			found:  llamaLibPin,
		},
		{
			name:     "release build: revision from -ldflags, no libraries",
			bi:       fakeBuildInfo(debug.BuildSetting{Key: "-trimpath", Value: "true"}),
			revision: "2fd7b5f0123456789abcdef0123456789abcdef0",
			want: append([]string{
				"go:        " + runtime.Version(),
				"platform:  " + runtime.GOOS + "/" + runtime.GOARCH,
				"revision:  2fd7b5f0123456789abcdef0123456789abcdef0",
			}, append(modules, "  lib dir: LIB", "  found:   not found (run scripts/fetch-llama.sh)")...),
			vcs:    &vcsInfo{Revision: "2fd7b5f0123456789abcdef0123456789abcdef0"},
			status: "missing",
		},
		{
			name: "no revision, libraries of another version",
			bi:   fakeBuildInfo(),
			lib:  map[string]string{".version": "@node-llama-cpp/linux-x64@3.20.0\n", "libllama.so": ""},
			want: append([]string{
				"go:        " + runtime.Version(),
				"platform:  " + runtime.GOOS + "/" + runtime.GOARCH,
				"revision:  not embedded",
			}, append(modules, "  lib dir: LIB",
				"  found:   @node-llama-cpp/linux-x64@3.20.0 (does NOT match the pin: the binding would give garbage; see docs/localengine.md)")...),
			status: "mismatch",
			found:  "@node-llama-cpp/linux-x64@3.20.0",
		},
		{
			name: "a build of its own without .version",
			bi:   fakeBuildInfo(vcs[2]),
			lib:  map[string]string{"libllama.so": "", "libggml-cuda.so": ""},
			want: append([]string{
				"go:        " + runtime.Version(),
				"platform:  " + runtime.GOOS + "/" + runtime.GOARCH,
				"revision:  2fd7b5f0123456789abcdef0123456789abcdef0",
			}, append(modules, "  lib dir: LIB",
				"  found:   libllama.so without a .version file (a build of its own: it must be the pinned llama.cpp release)")...),
			vcs:    &vcsInfo{Revision: "2fd7b5f0123456789abcdef0123456789abcdef0"},
			status: "unlabelled",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := revision
			revision = c.revision
			t.Cleanup(func() { revision = old })
			lib := t.TempDir()
			for name, body := range c.lib {
				require.NoError(t, os.WriteFile(filepath.Join(lib, name), []byte(body), 0o644))
			}
			r := newVersionReport(c.bi, lib)

			var text bytes.Buffer
			writeVersion(&text, r)
			lines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
			assert.Equal(t, "switchyard "+versionString(), lines[0])
			want := strings.ReplaceAll(strings.Join(c.want, "\n"), "LIB", lib)
			assert.Equal(t, want, strings.Join(lines[1:], "\n"))

			b, err := json.Marshal(r)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(b, &got))
			assert.Equal(t, versionString(), got["version"])
			assert.Equal(t, runtime.Version(), got["go"])
			assert.Equal(t, runtime.GOOS, got["os"])
			assert.Equal(t, runtime.GOARCH, got["arch"])
			assert.Equal(t, map[string]any{
				"github.com/open-policy-agent/opa": "v1.22.3",
				"github.com/gofiber/fiber/v2":      "v2.52.15",
				"github.com/valyala/fasthttp":      "v1.51.0",
				"github.com/redis/go-redis/v9":     "v9.23.0 => ../go-redis",
				"github.com/hybridgroup/yzma":      "v1.28.0",
			}, got["modules"])
			llama := map[string]any{
				"binding": "github.com/hybridgroup/yzma@v1.28.0",
				"pinned":  llamaLibPin,
				"lib_dir": lib,
				"status":  c.status,
			}
			if c.found != "" {
				llama["found"] = c.found
			}
			assert.Equal(t, llama, got["llama_cpp"])
			if c.vcs == nil {
				assert.NotContains(t, got, "vcs")
			} else {
				var v struct{ VCS vcsInfo }
				require.NoError(t, json.Unmarshal(b, &v))
				assert.Equal(t, *c.vcs, v.VCS)
			}
		})
	}
}

// The command itself, with this test binary's own build information: every
// spelling, text and JSON, and the modules read from what is linked.
func TestVersionCommand(t *testing.T) {
	lib := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(lib, ".version"), []byte(llamaLibPin+"\n"), 0o644))
	t.Setenv("SWITCHYARD_LLAMA_LIB", lib)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"version", "-lib", lib}} {
		out, err := runCmd(t, "", args...)
		require.NoError(t, err, args)
		assert.True(t, strings.HasPrefix(out, "switchyard "+versionString()+"\n"), out)
		assert.Contains(t, out, "\ngo:        "+runtime.Version()+"\n")
		assert.Contains(t, out, "\n  found:   "+llamaLibPin+"\n")
		assert.Regexp(t, `\n  github.com/open-policy-agent/opa +v1\.\d+\.\d+  \(policy engine\)\n`, out)
	}
	for _, args := range [][]string{{"version", "-json"}, {"--version", "--json"}} {
		out, err := runCmd(t, "", args...)
		require.NoError(t, err, args)
		var r versionReport
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		assert.Equal(t, runtime.Version(), r.Go)
		assert.Equal(t, "match", r.LlamaCpp.Status)
		assert.Equal(t, lib, r.LlamaCpp.LibDir)
		// What is linked: every module that matters is in this binary, and
		// the binding is the one the libraries are pinned with.
		for _, m := range versionModules {
			assert.Regexp(t, `^v\d+\.\d+\.\d+`, r.Modules[m.path], m.path)
		}
		assert.Equal(t, bindingPin, r.Modules[bindingModule], "yzma and the llama.cpp libraries are pinned as a pair (docs/localengine.md)")
	}
	_, err := runCmd(t, "", "version", "extra")
	assert.ErrorContains(t, err, "unexpected arguments: extra")

	empty := t.TempDir()
	out, err := runCmd(t, "", "version", "-lib", empty)
	require.NoError(t, err)
	assert.Contains(t, out, "\n  lib dir: "+empty+"\n  found:   not found (run scripts/fetch-llama.sh)\n")
}

// The pin in the binary is what scripts/fetch-llama.sh fetches: it runs
// `switchyard llama fetch` where there is Go, and its npm fallback (for
// the image's first stage) has the same package, version, integrity and
// library names.
func TestLlamaPinMatchesFetchScript(t *testing.T) {
	b, err := os.ReadFile("../../scripts/fetch-llama.sh")
	require.NoError(t, err)
	pkg := regexp.MustCompile(`(?m)^PKG=(\S+)$`).FindSubmatch(b)
	ver := regexp.MustCompile(`(?m)^VERSION=(\S+)$`).FindSubmatch(b)
	integrity := regexp.MustCompile(`(?m)^INTEGRITY=(\S+)$`).FindSubmatch(b)
	require.NotNil(t, pkg, "PKG= in fetch-llama.sh")
	require.NotNil(t, ver, "VERSION= in fetch-llama.sh")
	require.NotNil(t, integrity, "INTEGRITY= in fetch-llama.sh")
	assert.Equal(t, llamaLibPin, string(pkg[1])+"@"+string(ver[1]))
	assert.Equal(t, llamalib.Integrity, string(integrity[1]))
	assert.Contains(t, string(b), "exec go run ./cmd/switchyard llama fetch \"$dir\"\n")
	assert.Contains(t, string(b), "ln -sf "+llamalib.LlamaLib+` "$dir/libllama.so"`)
	assert.Contains(t, string(b), "ln -sf "+llamalib.GGMLLib+` "$dir/libggml.so"`)
}

// The image and scripts/check-release.sh build with the same flags, so the
// hash the script checks is the image's binary's (for the same Go).
func TestReleaseBuildFlags(t *testing.T) {
	const build = `CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.revision=${REVISION}"`
	docker, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	script, err := os.ReadFile("../../scripts/check-release.sh")
	require.NoError(t, err)
	assert.Contains(t, string(docker), build)
	assert.Contains(t, string(script), build)
	assert.Contains(t, string(docker), `HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/switchyard","healthcheck"]`)
}
