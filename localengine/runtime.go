// Package localengine is Switchyard's embedded open-model engine: llama.cpp
// loaded at run time from its shared libraries (no cgo, the binary stays
// static), one scheduler goroutine per model that batches every active
// sequence into each decode step, and an OpenAI-format provider on top.
//
// The llama.cpp binding (github.com/hybridgroup/yzma) is used only inside
// this package; the rest of the gateway sees Model, Request and Provider.
// The binding and the library build are pinned as a pair (yzma v1.28.0,
// the libraries of @node-llama-cpp/linux-x64@3.21.1): yzma hard-codes the C
// structs' layouts, so a mismatched build gives garbage, not an error.
package localengine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// LibEnv names the environment variable that points at the library
// directory when the configuration leaves it empty.
const LibEnv = "SWITCHYARD_LLAMA_LIB"

// DefaultLibDir is where scripts/fetch-llama.sh puts the libraries.
const DefaultLibDir = ".llama/lib"

// ErrNoLibrary is returned when the library directory holds no libllama.
var ErrNoLibrary = errors.New("llama.cpp libraries not found")

// Device is a compute device ggml found: the CPU, and GPUs whose backend
// library sat in the library directory.
type Device struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Type        string `json:"type"` // cpu, gpu, igpu, accel
	MemoryTotal uint64 `json:"memory_total_bytes,omitempty"`
	MemoryFree  uint64 `json:"memory_free_bytes,omitempty"`
}

// Runtime is the loaded llama.cpp library. The dynamic loader and ggml's
// backend registry are process-wide, so there is one Runtime per process:
// Open returns the same one for the same directory and refuses another.
type Runtime struct {
	Dir     string
	Devices []Device
}

var (
	openMu  sync.Mutex
	opened  *Runtime
	openErr error
)

// LibDir resolves the library directory: dir if set, else $SWITCHYARD_LLAMA_LIB,
// else DefaultLibDir.
func LibDir(dir string) string {
	if dir == "" {
		dir = os.Getenv(LibEnv)
	}
	if dir == "" {
		dir = DefaultLibDir
	}
	return dir
}

// Open loads llama.cpp from dir (see LibDir) and every ggml backend found
// there (CPU variants, CUDA, Vulkan), and silences llama.cpp's own log.
func Open(dir string) (*Runtime, error) {
	dir, err := filepath.Abs(LibDir(dir))
	if err != nil {
		return nil, err
	}
	openMu.Lock()
	defer openMu.Unlock()
	if opened != nil {
		if opened.Dir != dir {
			return nil, fmt.Errorf("llama.cpp already loaded from %s; one library directory per process", opened.Dir)
		}
		return opened, nil
	}
	if openErr != nil {
		return nil, openErr
	}
	if _, err := os.Stat(filepath.Join(dir, "libllama.so")); err != nil {
		// Not remembered: the libraries may be fetched later.
		return nil, fmt.Errorf("%w in %s (run scripts/fetch-llama.sh, or set %s): %v", ErrNoLibrary, dir, LibEnv, err)
	}
	if err := llama.Load(dir); err != nil {
		openErr = fmt.Errorf("loading llama.cpp from %s: %w", dir, err)
		return nil, openErr
	}
	llama.LogSet(llama.LogSilent())
	llama.Init()
	rt := &Runtime{Dir: dir}
	for i := range llama.GGMLBackendDeviceCount() {
		d := llama.GGMLBackendDeviceGet(i)
		free, total := llama.GGMLBackendDeviceMemory(d)
		rt.Devices = append(rt.Devices, Device{
			Name:        llama.GGMLBackendDeviceName(d),
			Description: llama.GGMLBackendDeviceDescription(d),
			Type:        deviceType(llama.GGMLBackendDevType(d)),
			MemoryTotal: total,
			MemoryFree:  free,
		})
	}
	opened = rt
	return rt, nil
}

func deviceType(t llama.GGMLBackendDeviceType) string { return strings.ToLower(t.String()) }

// GPUs reports whether any GPU device was found.
func (r *Runtime) GPUs() bool {
	for _, d := range r.Devices {
		if d.Type == "gpu" {
			return true
		}
	}
	return false
}
