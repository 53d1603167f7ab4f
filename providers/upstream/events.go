package upstream

import (
	"errors"
	"io"
	"sync"

	"github.com/switchyard/switchyard/internal/sse"
)

// Events reads one upstream's Server-Sent Events for a provider's stream.
// Next returns each event that has data, restarting the between-chunks
// clock; once the provider has read its format's last event (Finish),
// Next returns io.EOF without reading further. The body ending before
// that is a stream cut short (BadResponse with the cut message), a read
// failure a TransportError (a timeout, the caller's cancellation). The
// first failure, the provider's own included (Fail), is kept: every later
// Next returns it. Close ends the attempt and closes the body, once.
type Events struct {
	c    *Client
	a    *Attempt
	body io.ReadCloser
	r    *sse.Reader
	cut  string
	once sync.Once
	done bool
	err  error
}

// Events starts reading body, the stream of attempt a. cut says how a
// body that ends early ended, e.g. "ended the stream before message_stop".
func (c *Client) Events(a *Attempt, body io.ReadCloser, cut string) *Events {
	return &Events{c: c, a: a, body: body, r: sse.NewReader(body), cut: cut}
}

// Next returns the next event with data; its Data is valid until the next
// call.
func (e *Events) Next() (sse.Event, error) {
	if e.err != nil {
		return sse.Event{}, e.err
	}
	if e.done {
		return sse.Event{}, io.EOF
	}
	ev, err := e.r.Next()
	if err != nil {
		if errors.Is(err, io.EOF) && e.a.Ctx.Err() == nil {
			e.err = e.c.BadResponse(io.ErrUnexpectedEOF, "%s", e.cut)
		} else {
			e.err = e.c.TransportError(e.a.Ctx, err)
		}
		return sse.Event{}, e.err
	}
	e.a.Progress()
	return ev, nil
}

// Finish records that the format's last event was read: the stream ends
// cleanly.
func (e *Events) Finish() { e.done = true }

// Fail ends the stream with err, unless it has already failed; it returns
// the stream's error.
func (e *Events) Fail(err error) error {
	if e.err == nil {
		e.err = err
	}
	return e.err
}

// Err is the stream's failure; nil while it has none.
func (e *Events) Err() error { return e.err }

// Close ends the attempt and closes the body. It is safe to call more than
// once and from another goroutine while Next blocks, which it then
// unblocks.
func (e *Events) Close() error {
	e.once.Do(func() {
		e.a.End()
		e.body.Close()
	})
	return nil
}
