package localengine

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestTextOut(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pieces  []string
		stops   []string
		want    []string // emitted per push
		stopped bool
		flush   string
	}{
		{"plain", []string{"Hel", "lo"}, nil, []string{"Hel", "lo"}, false, ""},
		{"euro split over three pieces", []string{"a\xe2", "\x82", "\xacb"}, nil, []string{"a", "", "€b"}, false, ""},
		{"emoji split", []string{"\xf0\x9f", "\x98\x80"}, nil, []string{"", "😀"}, false, ""},
		{"unfinished char at the end", []string{"x\xe2\x82"}, nil, []string{"x"}, false, "\uFFFD"},
		{"invalid byte passes", []string{"a\xffb"}, nil, []string{"a\xffb"}, false, ""},
		{"stop inside a piece", []string{"one two"}, []string{" tw"}, []string{"one"}, true, ""},
		{"stop across pieces", []string{"one ", "STO", "P more"}, []string{"STOP"}, []string{"one ", "", ""}, true, ""},
		{"near miss released", []string{"ST", "x"}, []string{"STOP"}, []string{"", "STx"}, false, ""},
		{"held at the end is flushed", []string{"abc S"}, []string{"STOP"}, []string{"abc "}, false, "S"},
		{"earliest stop wins", []string{"a;b.c"}, []string{".", ";"}, []string{"a"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &textOut{stops: tc.stops}
			var got []string
			stopped := false
			for _, p := range tc.pieces {
				s, st := o.push([]byte(p))
				got = append(got, s)
				if st {
					stopped = true
					break
				}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.stopped, stopped)
			require.Equal(t, tc.flush, o.flush())
		})
	}
}

// FuzzTextOut: whatever the pieces, the emitted text never ends inside a
// character that the next piece completes, and without stops everything
// pushed comes out exactly once.
func FuzzTextOut(f *testing.F) {
	f.Add([]byte("h\xc3\xa9llo \xe2\x82\xac"), uint8(3))
	f.Add([]byte("\xf0\x9f\x98\x80\xf0\x9f"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		n := int(step%5) + 1
		o := &textOut{}
		var out strings.Builder
		for i := 0; i < len(data); i += n {
			s, _ := o.push(data[i:min(i+n, len(data))])
			if utf8.ValidString(string(data)) {
				require.True(t, utf8.ValidString(s), "%q", s)
			}
			out.WriteString(s)
		}
		rest := o.flush()
		if utf8.Valid(data) {
			require.Equal(t, string(data), out.String()+rest)
		}
	})
}
