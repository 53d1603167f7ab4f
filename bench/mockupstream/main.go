// Command mockupstream runs a zero-delay OpenAI-compatible upstream for load
// benchmarks (see package bench/internal/mock for what it serves).
//
//	mockupstream -addr 127.0.0.1:18081
//
// It only listens on loopback addresses. Once listening it prints
// "listening on ADDR" on stdout; it exits on SIGINT or SIGTERM. It logs
// nothing per request.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/bench/internal/mock"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on (port 0 picks a free port)")
	flag.Parse()

	srv, err := mock.Start(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", srv.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := srv.Close(5 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream: shutdown:", err)
		os.Exit(1)
	}
}
