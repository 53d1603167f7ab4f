package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/gguf"
)

const modelUsage = `usage:
  switchyard model generate [-shape tiny|bench|llama3-8b] [-seed N] [-quantize TYPE] [-lib DIR] OUT.gguf
      write a llama-architecture GGUF model with seeded random weights, for
      tests, demos and benchmarks (its output is noise, its speed is real).
      -quantize (q8_0, q4_k_m, ...) runs llama.cpp's quantizer and needs its
      libraries (-lib, else $SWITCHYARD_LLAMA_LIB, else .llama/lib).`

// shapeNamed is the model shape called name (-shape; also
// local_engine.models[].generate).
func shapeNamed(name string) (gguf.Shape, error) {
	switch name {
	case "tiny":
		return gguf.Tiny, nil
	case "bench":
		return gguf.Bench, nil
	case "llama3-8b":
		// Llama-3-8B's shape (8.03B parameters; a 32 GB F32 file before
		// quantization), for GPU throughput against the bandwidth bound.
		return gguf.Shape{Name: "switchyard-llama3-8b-shape", Embd: 4096, Layers: 32, Heads: 32, HeadsKV: 8, FF: 14336, Context: 8192, Vocab: 128256}, nil
	}
	return gguf.Shape{}, fmt.Errorf("unknown shape %q (tiny, bench or llama3-8b)", name)
}

func modelCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, modelUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "generate" {
		return errors.New(modelUsage)
	}
	fs := newFlagSet("model generate", modelUsage, stderr)
	shape := fs.String("shape", "tiny", "model shape: tiny (under 1 MB), bench (about 125M parameters) or llama3-8b")
	seed := fs.Int64("seed", 1, "random seed; the same seed writes the same file")
	quant := fs.String("quantize", "", "quantize with llama.cpp: "+strings.Join(localengine.QuantTypes(), ", "))
	lib := fs.String("lib", "", "llama.cpp library directory, for -quantize")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(modelUsage)
	}
	out := fs.Arg(0)
	s, err := shapeNamed(*shape)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f32 := out
	if *quant != "" {
		f32 = out + ".f32.tmp"
		defer os.Remove(f32)
	}
	if err := gguf.GenerateFile(f32, s, *seed); err != nil {
		return err
	}
	if *quant != "" {
		rt, err := localengine.Open(*lib)
		if err != nil {
			return err
		}
		if err := rt.Quantize(f32, out, *quant, runtime.NumCPU()); err != nil {
			return err
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %d parameters, %.1f MB%s\n", out, s.Name, s.Params(), float64(fi.Size())/1e6, map[bool]string{true: ", " + *quant, false: ", f32"}[*quant != ""])
	return nil
}
