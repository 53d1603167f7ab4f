// Package sse reads Server-Sent Events as upstream LLM APIs send them.
package sse

import (
	"bufio"
	"bytes"
	"io"
)

// Event is one dispatched event. Data is only valid until the next call to
// Next.
type Event struct {
	Name string // the "event:" field; empty for the default "message"
	Data []byte // the "data:" lines joined by "\n"
}

// Reader splits a stream into events. It is not safe for concurrent use.
type Reader struct {
	r    *bufio.Reader
	data []byte
	name []byte
	line []byte
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 4<<10)}
}

// Next returns the next event with data. It returns io.EOF at the end of
// the stream, and the read error otherwise. An event cut off by the end of
// the stream (no blank line after it) is dropped, as the SSE specification
// says. Comment lines and events without data are skipped.
func (s *Reader) Next() (Event, error) {
	s.data, s.name = s.data[:0], s.name[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				return Event{Name: string(s.name), Data: s.data}, nil
			}
			s.name = s.name[:0]
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
		case "event":
			s.name = append(s.name[:0], value...)
		}
	}
}

// readLine returns one line without its line ending (LF, CRLF or CR-less).
// The returned slice is valid until the next call.
func (s *Reader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		s.line = append(s.line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		s.line = bytes.TrimSuffix(s.line, []byte{'\n'})
		s.line = bytes.TrimSuffix(s.line, []byte{'\r'})
		return s.line, err
	}
}
