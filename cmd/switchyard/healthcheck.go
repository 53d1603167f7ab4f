package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const healthcheckUsage = `usage: switchyard healthcheck [-url URL] [-timeout 2s]
  GET URL (default: /healthz on $SWITCHYARD_LISTEN, else on 127.0.0.1:8080)
  and exit 0 on 200, 1 otherwise, with one line on stderr. For container
  HEALTHCHECKs on images without curl; loads no config.`

func healthcheckCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, healthcheckUsage) }
	target := fs.String("url", "", "URL to GET")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	u := *target
	if u == "" {
		var err error
		if u, err = defaultHealthURL(os.Getenv("SWITCHYARD_LISTEN")); err != nil {
			return err
		}
	}
	client := &http.Client{
		Timeout: *timeout,
		// No proxy from the environment (this is a check of this host), no
		// kept connection, and a redirect is an answer, not 200.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(u)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(stderr, "healthy: %s answered %s\n", u, resp.Status)
	return nil
}

// defaultHealthURL is /healthz on the address the shipped config.yaml
// listens on: $SWITCHYARD_LISTEN, else 127.0.0.1:8080. An unspecified host
// (":8080", "0.0.0.0:8080", "[::]:8080") is reached on loopback.
func defaultHealthURL(listen string) (string, error) {
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("SWITCHYARD_LISTEN=%q is not host:port (%w); pass -url", listen, err)
	}
	if port == "" {
		return "", errors.New("SWITCHYARD_LISTEN has no port; pass -url")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
