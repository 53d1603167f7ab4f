package localengine

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/switchyard/switchyard/providers"
)

// Pool is the set of local models the gateway serves. Loading never
// panics and never stops the gateway: a model that fails to load is
// reported by Status (and /readyz), and requests to it get a retryable
// 503 so the router falls back.
type Pool struct {
	Runtime *Runtime
	models  map[string]*Model
	errs    map[string]error
}

// ModelStatus is one model's state for /readyz.
type ModelStatus struct {
	Name   string `json:"name"`
	Loaded bool   `json:"loaded"`
	Error  string `json:"error,omitempty"`
	Window int    `json:"context_window,omitempty"`
	Stats  *Stats `json:"stats,omitempty"`
}

// OpenPool loads the library from libDir and every spec. The returned
// pool is usable even when loading failed.
func OpenPool(libDir string, specs []Spec, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{models: map[string]*Model{}, errs: map[string]error{}}
	if len(specs) == 0 {
		return p
	}
	rt, err := Open(libDir)
	if err != nil {
		log.Error("local engine unavailable", "error", err)
		for _, s := range specs {
			p.errs[s.Name] = err
		}
		return p
	}
	p.Runtime = rt
	for _, d := range rt.Devices {
		log.Info("local engine device", "name", d.Name, "description", d.Description, "type", d.Type, "memory_total_bytes", d.MemoryTotal)
	}
	for _, s := range specs {
		m, err := rt.Load(s)
		if err != nil {
			log.Error("local model not loaded", "model", s.Name, "error", err)
			p.errs[s.Name] = err
			continue
		}
		log.Info("local model loaded", "model", s.Name, "path", s.Path, "context_window", m.Window(), "slots", m.spec.Slots, "gpu_layers", s.GPULayers, "threads", m.spec.Threads)
		p.models[s.Name] = m
	}
	return p
}

// Model returns a loaded model, or a retryable 503 naming why it is not
// there.
func (p *Pool) Model(name string) (*Model, error) {
	if m, ok := p.models[name]; ok {
		return m, nil
	}
	err, ok := p.errs[name]
	if !ok {
		err = fmt.Errorf("no local model named %q", name)
	}
	return nil, &providers.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "model_not_loaded",
		Message: fmt.Sprintf("local model %s is not loaded", name), Retryable: true, Err: err}
}

// Ready reports whether every configured model is loaded.
func (p *Pool) Ready() bool { return len(p.errs) == 0 }

// Status reports every configured model, sorted by name.
func (p *Pool) Status() []ModelStatus {
	var out []ModelStatus
	for name, m := range p.models {
		st := m.Stats()
		out = append(out, ModelStatus{Name: name, Loaded: true, Window: m.Window(), Stats: &st})
	}
	for name, err := range p.errs {
		out = append(out, ModelStatus{Name: name, Error: err.Error()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close unloads every model.
func (p *Pool) Close() error {
	var errs []error
	for _, m := range p.models {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

func randomSeed() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
