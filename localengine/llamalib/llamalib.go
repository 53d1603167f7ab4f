// Package llamalib is the llama.cpp library build the local engine is
// pinned to, and the code that installs it: the prebuilt CPU libraries in
// the npm package @node-llama-cpp/linux-x64, downloaded over HTTPS from
// the npm registry, checked against the registry's integrity hash before
// anything is unpacked, and written to a library directory atomically.
// No npm and no Node: the tarball is read with archive/tar.
//
// This file is the one place the pin lives: `switchyard llama fetch`,
// local_engine.fetch_libraries, `switchyard version` and
// scripts/fetch-llama.sh (a test checks its copy for the image build,
// which has no Go) all take it from here. The build and the Go binding
// (yzma) are pinned as a pair: see docs/localengine.md before changing
// either.
package llamalib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The pinned build.
const (
	// Package and Version name the npm package.
	Package = "@node-llama-cpp/linux-x64"
	Version = "3.21.1"
	// Pin is Package@Version, as the .version file holds it.
	Pin = Package + "@" + Version
	// URL is the package's tarball on the npm registry.
	URL = "https://registry.npmjs.org/" + Package + "/-/linux-x64-" + Version + ".tgz"
	// Integrity is the registry's integrity of that tarball (npm's
	// dist.integrity: SHA-512, base64).
	Integrity = "sha512-Totj6RTDMGo3FoK2yNUaz/oGmZD0olAqTrRluFUWmu0kW2i9TOzHSW0OWCAiGkzRCVX0WsU2CyUQo/W2NYtdPA=="
	// Size is the tarball's size in bytes; a download of any other size
	// is refused.
	Size = 10582760
	// Platform is where the build runs.
	Platform = "linux/amd64"

	// LlamaLib and GGMLLib are the versioned libraries in the package;
	// the binding opens libllama.so and libggml.so, linked to them.
	LlamaLib = "libllama.v0.4.0.so"
	GGMLLib  = "libggml.v0.4.0.so"
	// VersionFile, in the library directory, holds Pin once the
	// libraries are installed; `switchyard version` reads it.
	VersionFile = ".version"
)

// bins is where the package keeps its libraries.
const bins = "package/bins/linux-x64/"

// links are the unversioned names the binding opens.
var links = map[string]string{"libllama.so": LlamaLib, "libggml.so": GGMLLib}

// ErrUnsupported is returned where the pinned build cannot run.
var ErrUnsupported = errors.New("the pinned llama.cpp build runs only on " + Platform)

// Supported reports whether the pinned build runs here.
func Supported() error { return supportedOn(runtime.GOOS, runtime.GOARCH) }

func supportedOn(goos, goarch string) error {
	if goos+"/"+goarch == Platform {
		return nil
	}
	return fmt.Errorf("%w, not %s/%s: put a llama.cpp build of the same release (%s) in the library directory yourself (docs/localengine.md)", ErrUnsupported, goos, goarch, Pin)
}

// State is what a library directory holds.
type State int

const (
	// Missing: no libllama.so.
	Missing State = iota
	// Pinned: the pinned build, as Fetch installs it.
	Pinned
	// Other: a build Fetch installed that is not the pinned one (an
	// older pin); fetching again replaces it.
	Other
	// Own: libllama.so without a .version file, a build of your own (a
	// GPU build, say); Fetch on demand replaces it, the gateway leaves it.
	Own
)

// Inspect says what dir holds, and the build its .version names.
func Inspect(dir string) (State, string) { return inspect(dir, Pin) }

func inspect(dir, pin string) (State, string) {
	if _, err := os.Stat(filepath.Join(dir, "libllama.so")); err != nil {
		return Missing, ""
	}
	b, err := os.ReadFile(filepath.Join(dir, VersionFile))
	if err != nil {
		return Own, ""
	}
	found := strings.TrimSpace(string(b))
	if found == pin {
		return Pinned, found
	}
	return Other, found
}
