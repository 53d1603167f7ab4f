package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/llamalib"
)

// revision is the VCS revision, set at build time with
// -ldflags "-X main.revision=..." where the build does not stamp it itself
// (release builds use -buildvcs=false, so that a build from a tarball and
// one from a clone are the same bytes).
var revision = ""

// llamaLibPin is the llama.cpp library build that the binding (yzma, at
// bindingPin) expects, as `switchyard llama fetch` (and
// scripts/fetch-llama.sh) writes it to the library directory's .version
// file: its PKG@VERSION.
const llamaLibPin = llamalib.Pin

// bindingModule is the llama.cpp binding, pinned as a pair with the
// libraries (docs/localengine.md); bindingPin is its version in go.mod.
const (
	bindingModule = "github.com/hybridgroup/yzma"
	bindingPin    = "v1.28.0"
)

// versionModules are the modules whose versions `switchyard version`
// reports: what decides routing, serves HTTP, counts money, traces, and
// drives the local engine.
var versionModules = []struct{ path, role string }{
	{"github.com/open-policy-agent/opa", "policy engine"},
	{"github.com/gofiber/fiber/v2", "HTTP server"},
	{"github.com/valyala/fasthttp", "HTTP server"},
	{"github.com/redis/go-redis/v9", "quotas and ledger"},
	{"go.opentelemetry.io/otel", "tracing"},
	{bindingModule, "llama.cpp binding"},
}

const versionUsage = `usage: switchyard version [-json] [-lib DIR]
  print the version, the Go toolchain, the platform, the VCS revision, the
  versions of the modules that matter and of the llama.cpp libraries: the
  build this binary expects and the one found in the library directory
  (-lib, else $SWITCHYARD_LLAMA_LIB, else .llama/lib). Loads neither the
  config nor the engine.`

// versionReport is what `switchyard version -json` prints.
type versionReport struct {
	Version  string            `json:"version"`
	Go       string            `json:"go"`
	OS       string            `json:"os"`
	Arch     string            `json:"arch"`
	VCS      *vcsInfo          `json:"vcs,omitempty"`
	Modules  map[string]string `json:"modules"`
	LlamaCpp llamaInfo         `json:"llama_cpp"`
}

// vcsInfo is what the build stamped (vcs.*), or only the revision when it
// came from -ldflags: whether that tree was modified is then unknown, and
// Modified is nil.
type vcsInfo struct {
	Revision string `json:"revision"`
	Time     string `json:"time,omitempty"`
	Modified *bool  `json:"modified,omitempty"`
}

// llamaInfo compares the library build the binary expects with the one in
// the library directory. Status: match, mismatch, missing (no .version and
// no libllama.so) or unlabelled (libllama.so without .version: a build of
// its own, which must be llama.cpp of the pinned release).
type llamaInfo struct {
	Binding string `json:"binding"`
	Pinned  string `json:"pinned"`
	LibDir  string `json:"lib_dir"`
	Found   string `json:"found,omitempty"`
	Status  string `json:"status"`
}

func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, versionUsage) }
	asJSON := fs.Bool("json", false, "print JSON")
	lib := fs.String("lib", "", "llama.cpp library directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s\n%s", strings.Join(fs.Args(), " "), versionUsage)
	}
	bi, _ := debug.ReadBuildInfo()
	r := newVersionReport(bi, localengine.LibDir(*lib))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	writeVersion(stdout, r)
	return nil
}

// newVersionReport reads bi (nil when the binary has no build information)
// and the .version file that scripts/fetch-llama.sh writes in libDir.
func newVersionReport(bi *debug.BuildInfo, libDir string) versionReport {
	r := versionReport{
		Version: versionString(),
		Go:      runtime.Version(),
		OS:      runtime.GOOS,
		Arch:    runtime.GOARCH,
		Modules: map[string]string{},
	}
	if bi != nil {
		var v vcsInfo
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				m := s.Value == "true"
				v.Modified = &m
			}
		}
		if v.Revision == "" {
			v = vcsInfo{Revision: revision}
		}
		if v.Revision != "" {
			r.VCS = &v
		}
		for _, m := range versionModules {
			for _, d := range bi.Deps {
				if d.Path != m.path {
					continue
				}
				r.Modules[m.path] = d.Version
				if d.Replace != nil {
					r.Modules[m.path] = strings.TrimSpace(d.Version + " => " + d.Replace.Path + " " + d.Replace.Version)
				}
			}
		}
	} else if revision != "" {
		r.VCS = &vcsInfo{Revision: revision}
	}
	r.LlamaCpp = llamaInfo{Binding: bindingModule + "@" + r.Modules[bindingModule], Pinned: llamaLibPin, LibDir: libDir}
	if r.Modules[bindingModule] == "" {
		r.LlamaCpp.Binding = bindingModule + "@" + bindingPin + " (expected; not in the build information)"
	}
	b, err := os.ReadFile(filepath.Join(libDir, ".version"))
	switch {
	case err == nil:
		r.LlamaCpp.Found = strings.TrimSpace(string(b))
		r.LlamaCpp.Status = "mismatch"
		if r.LlamaCpp.Found == llamaLibPin {
			r.LlamaCpp.Status = "match"
		}
	case errors.Is(err, os.ErrNotExist) && fileExists(filepath.Join(libDir, "libllama.so")):
		r.LlamaCpp.Status = "unlabelled"
	default:
		r.LlamaCpp.Status = "missing"
	}
	return r
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeVersion(w io.Writer, r versionReport) {
	fmt.Fprintln(w, "switchyard", r.Version)
	fmt.Fprintf(w, "go:        %s\n", r.Go)
	fmt.Fprintf(w, "platform:  %s/%s\n", r.OS, r.Arch)
	if v := r.VCS; v != nil {
		var extra []string
		if v.Time != "" {
			extra = append(extra, v.Time)
		}
		if v.Modified != nil && *v.Modified {
			extra = append(extra, "modified")
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, "revision:  %s (%s)\n", v.Revision, strings.Join(extra, ", "))
		} else {
			fmt.Fprintf(w, "revision:  %s\n", v.Revision)
		}
	} else {
		fmt.Fprintln(w, "revision:  not embedded")
	}
	fmt.Fprintln(w, "modules:")
	width := 0
	for _, m := range versionModules {
		width = max(width, len(m.path))
	}
	for _, m := range versionModules {
		v := r.Modules[m.path]
		if v == "" {
			v = "not in this build"
		}
		fmt.Fprintf(w, "  %-*s  %s  (%s)\n", width, m.path, v, m.role)
	}
	fmt.Fprintln(w, "llama.cpp libraries:")
	fmt.Fprintf(w, "  pinned:  %s (for %s)\n", r.LlamaCpp.Pinned, r.LlamaCpp.Binding)
	fmt.Fprintf(w, "  lib dir: %s\n", r.LlamaCpp.LibDir)
	switch r.LlamaCpp.Status {
	case "match":
		fmt.Fprintf(w, "  found:   %s\n", r.LlamaCpp.Found)
	case "mismatch":
		fmt.Fprintf(w, "  found:   %s (does NOT match the pin: the binding would give garbage; see docs/localengine.md)\n", r.LlamaCpp.Found)
	case "unlabelled":
		fmt.Fprintln(w, "  found:   libllama.so without a .version file (a build of its own: it must be the pinned llama.cpp release)")
	default:
		fmt.Fprintln(w, "  found:   not found (run scripts/fetch-llama.sh)")
	}
}
