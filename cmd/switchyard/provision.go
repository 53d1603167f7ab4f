package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/gguf"
	"github.com/switchyard/switchyard/localengine/llamalib"
)

// fetchTimeout bounds the libraries' download at start (10.6 MB).
const fetchTimeout = 5 * time.Minute

// provisionLocal provides what local_engine asks for, before the gateway
// loads it: the models marked generate whose file is missing, and the
// pinned llama.cpp libraries when fetch_libraries is set and the library
// directory lacks them. It never stops the start: what it cannot do is
// logged as a warning naming the cause and the manual step, and the
// engine then reports the model as not loaded, as without it.
func provisionLocal(ctx context.Context, le config.LocalEngine, log *slog.Logger) {
	for _, m := range le.Models {
		if m.Generate != "" {
			generateModel(m, log)
		}
	}
	if le.FetchLibraries && len(le.Models) > 0 {
		fetchLibraries(ctx, localengine.LibDir(le.LibDir), log)
	}
}

// generateModel writes m's model when its file is missing.
func generateModel(m config.LocalModel, log *slog.Logger) {
	if _, err := os.Stat(m.Path); !errors.Is(err, os.ErrNotExist) {
		return // there (or unreadable: loading it says why)
	}
	fix := fmt.Sprintf("switchyard model generate -shape %s %s", m.Generate, m.Path)
	shape, err := shapeNamed(m.Generate)
	if err != nil {
		log.Warn("local model not generated", "model", m.Name, "path", m.Path, "error", err)
		return
	}
	log.Info("generating local model (local_engine.models[].generate): random weights, its text is noise",
		"model", m.Name, "path", m.Path, "shape", m.Generate, "parameters", shape.Params())
	start := time.Now()
	if err := os.MkdirAll(filepath.Dir(m.Path), 0o755); err != nil {
		log.Warn("local model not generated; it will not load", "model", m.Name, "path", m.Path, "error", err, "fix", fix)
		return
	}
	if err := gguf.GenerateFile(m.Path, shape, 1); err != nil {
		log.Warn("local model not generated; it will not load", "model", m.Name, "path", m.Path, "error", err, "fix", fix)
		return
	}
	var size int64
	if fi, err := os.Stat(m.Path); err == nil {
		size = fi.Size()
	}
	log.Info("generated local model", "model", m.Name, "path", m.Path, "bytes", size, "seconds", roundSeconds(time.Since(start)))
}

// fetchLibraries installs the pinned libraries in dir unless it holds
// them or a build of its own.
func fetchLibraries(ctx context.Context, dir string, log *slog.Logger) {
	st, found := llamalib.Inspect(dir)
	switch st {
	case llamalib.Pinned:
		return
	case llamalib.Own:
		log.Info("local_engine.fetch_libraries: the library directory holds a llama.cpp build of its own (libllama.so, no .version); using it", "dir", dir)
		return
	case llamalib.Other:
		log.Info("local_engine.fetch_libraries: the library directory holds another pinned build; replacing it", "dir", dir, "found", found, "pinned", llamalib.Pin)
	}
	fix := fmt.Sprintf("check the network (HTTPS to registry.npmjs.org, or HTTPS_PROXY) and restart, or run scripts/fetch-llama.sh %s, or put a build of %s there yourself (docs/localengine.md)", dir, llamalib.Pin)
	if err := llamalib.Supported(); err != nil {
		log.Warn("llama.cpp libraries not fetched: the local engine's models will not load", "dir", dir, "error", err)
		return
	}
	log.Info(fmt.Sprintf("fetching llama.cpp libraries (%.1f MB) (local_engine.fetch_libraries)", llamalib.Size/1e6),
		"package", llamalib.Pin, "from", llamalib.URL, "into", dir)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	res, err := fetchLlama(ctx, dir, llamalib.Options{})
	if err != nil {
		log.Warn("llama.cpp libraries not fetched: the local engine's models will not load", "dir", dir, "error", err, "fix", fix)
		return
	}
	log.Info("llama.cpp libraries installed", "dir", dir, "package", llamalib.Pin, "files", len(res.Files), "seconds", roundSeconds(time.Since(start)))
}

func roundSeconds(d time.Duration) float64 { return d.Round(10 * time.Millisecond).Seconds() }
