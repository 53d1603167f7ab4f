// Command switchyard runs the Switchyard gateway.
//
//	switchyard [serve] [-config PATH]   run the gateway (the default)
//	switchyard config check [-config PATH]
//	                                    validate and print the resolved config, secrets masked
//	switchyard key hash [KEY]           print the SHA-256 that config stores for a virtual key
//	switchyard key new [-admin]         make a key: print it once and its config entry
//	switchyard policy test|check|explain|export
//	                                    test, check, explain and export routing policies
//	switchyard model generate OUT.gguf  write a test/demo model (random weights)
//	switchyard llama fetch [DIR]        install the pinned llama.cpp libraries
//	switchyard healthcheck [-url URL]   exit 0 if the gateway's /healthz answers 200
//	switchyard version [-json]          print the version, the module versions that
//	                                    matter and the llama.cpp libraries'
//
// Help (-h, -help, --help) is accepted by every command and subcommand: it
// prints that command's usage, writes nothing and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  switchyard [serve] [-config PATH]        run the gateway (default config: config.yaml)
  switchyard config check [-config PATH]   validate and print the resolved config, secrets masked
  switchyard key hash [KEY]                print the SHA-256 to store in config for a virtual key (reads stdin without KEY)
  switchyard key new [-admin] [-id ID] [-tenant T] [-team M]
                                           make a random key: print it once and the config entry with its hash
  switchyard policy test [-threshold PCT] [DIR]
                                           run the policy bundle's Rego tests with coverage
  switchyard policy check [DIR]            compile the policy bundle strictly
  switchyard policy explain [flags] INPUT.json
                                           print the decision for a policy input and the rules that fired
  switchyard policy export DIR             write the bundle shipped in the binary to DIR, to start your own
  switchyard model generate OUT.gguf       write a demo/test GGUF model with random weights (switchyard model -h for details)
  switchyard llama fetch [DIR]             install the pinned llama.cpp libraries in DIR (default .llama/lib), from the npm registry
  switchyard healthcheck [-url URL] [-timeout 2s]
                                           exit 0 if /healthz answers 200, else 1 (for container HEALTHCHECKs)
  switchyard version [-json] [-lib DIR]    print the version, Go, the module versions that matter and the llama.cpp libraries'
  switchyard --version                     the same as switchyard version
  switchyard help, -h, --help              print this; COMMAND -h prints a command's own help`

const serveUsage = `usage: switchyard [serve] [-config PATH]
  run the gateway with the configuration in PATH until SIGINT or SIGTERM`

const configUsage = `usage: switchyard config check [-config PATH]
  validate the configuration in PATH and print it resolved, secrets masked
  (on stdout); warnings go to stderr`

// isHelp reports whether arg asks for help where a command is expected.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// newFlagSet is a subcommand's flag set: its errors, and its help when
// asked for, go to stderr, the help being usage and then the flags.
// Parse returns flag.ErrHelp for -h, which run turns into success.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "flags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// run runs the command in args. Help asked for with -h (flag.ErrHelp
// from any subcommand's flag set, once that has printed its usage) is
// success, handled here for every subcommand.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := dispatch(args, stdin, stdout, stderr); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd, args = "help", args[1:]
	} else if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		cmd, args = "version", args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		path, err := configFlag("serve", serveUsage, args, stderr)
		if err != nil {
			return err
		}
		return serve(path, stderr)
	case "config":
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprintln(stdout, configUsage)
			return nil
		}
		if len(args) == 0 || args[0] != "check" {
			return errors.New("unknown config command; did you mean 'switchyard config check'?")
		}
		path, err := configFlag("config check", configUsage, args[1:], stderr)
		if err != nil {
			return err
		}
		cfg, err := config.Load(path)
		if err != nil {
			return err
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# %s is valid; resolved configuration, secrets masked:\n%s", path, out)
		// Warnings go to stderr: stdout stays the resolved YAML.
		pins, err := jurisdictionWarnings(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "warning: could not check the tenants' pinned jurisdictions: %v\n", err)
		}
		for _, p := range pins {
			fmt.Fprintf(stderr, "warning: %s\n", p)
		}
		for _, b := range cfg.Backends {
			if msg := b.MissingCredentials(); msg != "" {
				fmt.Fprintf(stderr, "warning: %s\n", msg)
			}
		}
		return nil
	case "key":
		return keyCmd(args, stdin, stdout, stderr)
	case "model":
		return modelCmd(args, stdout, stderr)
	case "llama":
		return llamaCmd(args, stdout, stderr)
	case "policy":
		return policyCmd(args, stdout, stderr)
	case "version":
		return versionCmd(args, stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(args, stderr)
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func configFlag(name, usage string, args []string, stderr io.Writer) (string, error) {
	fs := newFlagSet(name, usage, stderr)
	path := fs.String("config", "config.yaml", "path to the configuration file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return *path, nil
}

func serve(path string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, stop, path, stderr, nil)
}

// serveUntil runs the gateway until ctx is done, then shuts down; stop,
// called once ctx is done, restores the signals' default. listening, if
// not nil, is told the address once the gateway listens.
func serveUntil(ctx context.Context, stop func(), path string, stderr io.Writer, listening func(net.Addr)) error {
	// The first signal starts the shutdown, even while the libraries are
	// fetched or the models load; a second one kills.
	context.AfterFunc(ctx, stop)
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	provisionLocal(ctx, cfg.LocalEngine, log)
	if ctx.Err() != nil {
		return nil // interrupted while fetching or generating
	}
	srv, err := gateway.New(cfg, gateway.Options{Logger: log, Version: versionString()})
	if err != nil {
		return err
	}
	logJurisdictionWarnings(cfg, log)
	for _, b := range cfg.Backends {
		if msg := b.MissingCredentials(); msg != "" {
			log.Warn(msg+"; its deployments fail until it is set", "backend", b.Name)
		}
	}

	// Bind first, so "listening" is only logged when it is true.
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		_ = srv.Shutdown(context.Background()) // unload what New loaded
		return fmt.Errorf("listening on %s: %w", cfg.Server.Listen, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if addr := cfg.Server.DebugListen; addr != "" {
		_, stopDebug, err := serveDebug(addr, log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stopDebug()
	}
	log.Info("switchyard listening", "addr", cfg.Server.Listen, "version", versionString(),
		"backends", len(cfg.Backends), "models", len(cfg.Models), "keys", len(cfg.Keys))
	if listening != nil {
		listening(ln.Addr())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down; waiting for in-flight requests", "timeout", cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown deadline passed; closing remaining connections", "error", err)
	}
	if err := <-errc; err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	if len(revision) >= 12 {
		return "dev-" + revision[:12]
	}
	return "dev"
}
