package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/llamalib"
)

const llamaUsage = `usage: switchyard llama fetch [DIR]
  install the pinned llama.cpp CPU libraries (` + llamalib.Pin + `) in DIR
  (default: $SWITCHYARD_LLAMA_LIB, else .llama/lib): download the npm
  tarball from the npm registry over HTTPS (no npm needed), check its
  SHA-512 integrity, unpack its .so files and write DIR/.version. Nothing
  is downloaded when DIR holds them already. linux/amd64 only.`

// fetchLlama installs the libraries; tests replace it.
var fetchLlama = llamalib.Fetch

func llamaCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, llamaUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "fetch" {
		return errors.New(llamaUsage)
	}
	fs := newFlagSet("llama fetch", llamaUsage, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return errors.New(llamaUsage)
	}
	dir := localengine.LibDir(fs.Arg(0))
	if st, _ := llamalib.Inspect(dir); st == llamalib.Pinned {
		fmt.Fprintf(stdout, "llama.cpp libraries already in %s (%s)\n", dir, llamalib.Pin)
		return nil
	}
	if err := llamalib.Supported(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fetching llama.cpp libraries %s (%.1f MB) from %s into %s\n", llamalib.Pin, llamalib.Size/1e6, llamalib.URL, dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := fetchLlama(ctx, dir, llamalib.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "llama.cpp libraries in %s (%s): %s\n", dir, llamalib.Pin, strings.Join(res.Files, " "))
	return nil
}
