package sse

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReader(t *testing.T) {
	in := ": comment\n\n" +
		"data: {\"a\":1}\n\n" +
		"event: message_start\r\ndata: x\r\n\r\n" +
		"data: line1\ndata: line2\n\n" +
		"data:nospace\n\n" +
		"id: 7\n\n" + // no data: skipped
		"data: " + strings.Repeat("z", 40000) + "\n\n" +
		"data: [DONE]\n\n" +
		"data: cut off"
	r := NewReader(strings.NewReader(in))
	var got []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, Event{Name: ev.Name, Data: append([]byte(nil), ev.Data...)})
	}
	require.Len(t, got, 6, "the event cut off by the end is dropped")
	assert.Equal(t, `{"a":1}`, string(got[0].Data))
	assert.Equal(t, "message_start", got[1].Name)
	assert.Equal(t, "x", string(got[1].Data))
	assert.Equal(t, "line1\nline2", string(got[2].Data))
	assert.Equal(t, "nospace", string(got[3].Data))
	assert.Len(t, got[4].Data, 40000)
	assert.Equal(t, "[DONE]", string(got[5].Data))
}

func TestReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\n"), errReader{boom}))
	ev, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "a", string(ev.Data))
	_, err = r.Next()
	assert.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
