package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(status)
		case "/slow":
			time.Sleep(500 * time.Millisecond)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// An address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name    string
		status  int
		args    []string
		wantErr string // "" means exit 0
		stderr  string
	}{
		{name: "200", status: 200, args: []string{"-url", srv.URL + "/healthz"}, stderr: "healthy: " + srv.URL + "/healthz answered 200 OK\n"},
		{name: "503", status: 503, args: []string{"-url", srv.URL + "/healthz"}, wantErr: "unhealthy: " + srv.URL + "/healthz answered 503 Service Unavailable"},
		{name: "redirect is not 200", status: 200, args: []string{"-url", srv.URL + "/moved"}, wantErr: "answered 302 Found"},
		{name: "unreachable", args: []string{"-url", "http://" + closed + "/healthz"}, wantErr: "connection refused"},
		{name: "timeout", args: []string{"-url", srv.URL + "/slow", "-timeout", "50ms"}, wantErr: "Client.Timeout exceeded"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected arguments: now"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status = c.status
			var stdout, stderr bytes.Buffer
			err := run(append([]string{"healthcheck"}, c.args...), strings.NewReader(""), &stdout, &stderr)
			assert.Empty(t, stdout.String())
			if c.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, c.stderr, stderr.String())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
			assert.NotContains(t, err.Error(), "\n", "main prints it as one line")
		})
	}

	// The default URL comes from SWITCHYARD_LISTEN, as config.yaml's listen does.
	status = 200
	t.Setenv("SWITCHYARD_LISTEN", ":"+srv.URL[strings.LastIndex(srv.URL, ":")+1:])
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"healthcheck"}, strings.NewReader(""), &stdout, &stderr))
	assert.Equal(t, "healthy: http://127.0.0.1"+srv.URL[strings.LastIndex(srv.URL, ":"):]+"/healthz answered 200 OK\n", stderr.String())
}

func TestDefaultHealthURL(t *testing.T) {
	cases := []struct{ listen, want, err string }{
		{"", "http://127.0.0.1:8080/healthz", ""},
		{":8080", "http://127.0.0.1:8080/healthz", ""},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/healthz", ""},
		{"[::]:8080", "http://[::1]:8080/healthz", ""},
		{"127.0.0.1:8081", "http://127.0.0.1:8081/healthz", ""},
		{"10.1.2.3:80", "http://10.1.2.3:80/healthz", ""},
		{"gateway.internal:8080", "http://gateway.internal:8080/healthz", ""},
		{"[::1]:8080", "http://[::1]:8080/healthz", ""},
		{"8080", "", "is not host:port"},
		{"host:", "", "has no port"},
	}
	for _, c := range cases {
		got, err := defaultHealthURL(c.listen)
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.listen)
			continue
		}
		require.NoError(t, err, c.listen)
		assert.Equal(t, c.want, got, c.listen)
	}
}
