package upstream

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 1500)
	for _, tc := range []struct {
		name   string
		length int64
		r      io.Reader
		want   string
		err    bool
	}{
		{"its Content-Length", 1500, strings.NewReader(body), body, false},
		{"in small reads", 1500, iotest.OneByteReader(strings.NewReader(body)), body, false},
		{"no Content-Length", -1, strings.NewReader(body), body, false},
		{"longer than it said", 10, strings.NewReader(body), body, false},
		{"shorter than it said", 3000, strings.NewReader(body), body, false},
		{"empty", 0, strings.NewReader(""), "", false},
		{"a read error", 1500, iotest.ErrReader(errors.New("reset")), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(&http.Response{ContentLength: tc.length, Body: io.NopCloser(tc.r)})
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if string(got) != tc.want {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}
