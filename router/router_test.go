package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// fake is a scripted provider: each call takes the next outcome.
type fake struct {
	outcomes []error
	calls    int
	events   []string
	// failFirstRecv makes the stream's first Recv return this error.
	failFirstRecv error
}

var _ providers.Provider = (*fake)(nil)

func (f *fake) next() error {
	f.calls++
	if len(f.outcomes) == 0 {
		return nil
	}
	err := f.outcomes[0]
	f.outcomes = f.outcomes[1:]
	return err
}

func (f *fake) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return &providers.Response{Body: []byte(`{"model":"` + req.Model + `"}`)}, nil
}

func (f *fake) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return &fakeStream{events: f.events, firstErr: f.failFirstRecv}, nil
}

type fakeStream struct {
	events   []string
	firstErr error
	closed   bool
}

func (s *fakeStream) Recv() (providers.Event, error) {
	if s.firstErr != nil {
		err := s.firstErr
		s.firstErr = nil
		return providers.Event{}, err
	}
	if len(s.events) == 0 {
		return providers.Event{}, io.EOF
	}
	e := s.events[0]
	s.events = s.events[1:]
	return providers.Event{Data: []byte(e)}, nil
}

func (s *fakeStream) Close() error { s.closed = true; return nil }

var (
	errRetryable = &providers.Error{Status: http.StatusServiceUnavailable, Retryable: true}
	errFinal     = &providers.Error{Status: http.StatusBadRequest}
)

func route(ps ...*fake) *Route {
	rt := &Route{Name: "m"}
	for i, p := range ps {
		rt.Deployments = append(rt.Deployments, &Deployment{Backend: string(rune('a' + i)), Model: "up-" + string(rune('a'+i)), Provider: p})
	}
	return rt
}

func TestDoFallback(t *testing.T) {
	for _, tc := range []struct {
		name        string
		outcomes    [][]error
		wantBackend string
		wantErr     error
		wantCalls   []int
	}{
		{"first succeeds", [][]error{nil, nil}, "a", nil, []int{1, 0}},
		{"retryable falls back", [][]error{{errRetryable}, nil}, "b", nil, []int{1, 1}},
		{"final error stops", [][]error{{errFinal}, nil}, "", errFinal, []int{1, 0}},
		{"all fail returns the last", [][]error{{errRetryable}, {errRetryable}}, "", errRetryable, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fakes []*fake
			for _, o := range tc.outcomes {
				fakes = append(fakes, &fake{outcomes: o})
			}
			var hooked []Attempt
			r := New([]*Route{route(fakes...)})
			r.OnAttempt = func(a Attempt) { hooked = append(hooked, a) }
			rt, ok := r.Lookup("m")
			require.True(t, ok)
			res, err := r.Do(context.Background(), rt, &providers.Request{Body: []byte(`{}`)})
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.wantBackend, res.Deployment.Backend)
				assert.Equal(t, `{"model":"up-`+tc.wantBackend+`"}`, string(res.Response.Body), "the deployment's model is used")
			}
			for i, f := range fakes {
				assert.Equal(t, tc.wantCalls[i], f.calls, "calls to deployment %d", i)
			}
			assert.Equal(t, res.Attempts, hooked)
		})
	}
}

func TestStreamFallsBackOnFirstEventFailure(t *testing.T) {
	first := &fake{failFirstRecv: errRetryable}
	second := &fake{events: []string{"one", "two"}}
	r := New([]*Route{route(first, second)})
	rt, _ := r.Lookup("m")
	res, err := r.Stream(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "b", res.Deployment.Backend)
	assert.Len(t, res.Attempts, 2)
	var got []string
	for {
		ev, err := res.Stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, string(ev.Data))
	}
	assert.Equal(t, []string{"one", "two"}, got, "the peeked first event is replayed")
}

func TestStreamEmptyIsSuccess(t *testing.T) {
	r := New([]*Route{route(&fake{})})
	rt, _ := r.Lookup("m")
	res, err := r.Stream(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	_, err = res.Stream.Recv()
	assert.ErrorIs(t, err, io.EOF)
}

func TestUnhealthySkipped(t *testing.T) {
	a := &fake{outcomes: []error{errRetryable, errRetryable, errRetryable}}
	b := &fake{}
	r := New([]*Route{route(a, b)})
	rt, _ := r.Lookup("m")
	for range FailureThreshold {
		_, err := r.Do(context.Background(), rt, &providers.Request{})
		require.NoError(t, err)
	}
	assert.False(t, rt.Deployments[0].Healthy(), "taken out after consecutive failures")
	assert.Equal(t, FailureThreshold, a.calls)

	res, err := r.Do(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "b", res.Deployment.Backend)
	assert.Equal(t, FailureThreshold, a.calls, "the unhealthy deployment is skipped")
	assert.Len(t, res.Attempts, 1)

	// After the cooldown it is tried again.
	rt.Deployments[0].health.downUntil.Store(time.Now().Add(-time.Second).UnixNano())
	res, err = r.Do(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "a", res.Deployment.Backend)
}

func TestHealthSharedAcrossRoutes(t *testing.T) {
	a := &fake{outcomes: []error{errRetryable, errRetryable, errRetryable}}
	b := &fake{}
	one, two := route(a, b), route(a, b)
	two.Name = "other"
	r := New([]*Route{one, two})
	for range FailureThreshold {
		_, err := r.Do(context.Background(), one, &providers.Request{})
		require.NoError(t, err)
	}
	res, err := r.Do(context.Background(), two, &providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "b", res.Deployment.Backend, "the other route skips the same backend and model too")
	assert.Len(t, res.Attempts, 1)
}

func TestRateLimitWinsOverLaterFailure(t *testing.T) {
	limited := &providers.Error{Status: http.StatusTooManyRequests, Retryable: true, RetryAfter: "9"}
	r := New([]*Route{route(&fake{outcomes: []error{limited}}, &fake{outcomes: []error{errRetryable}})})
	rt, _ := r.Lookup("m")
	res, err := r.Do(context.Background(), rt, &providers.Request{})
	assert.ErrorIs(t, err, limited, "the client should still learn to back off")
	assert.Len(t, res.Attempts, 2)
}

func TestAllUnhealthyStillTried(t *testing.T) {
	a := &fake{}
	r := New([]*Route{route(a)})
	rt, _ := r.Lookup("m")
	rt.Deployments[0].health.downUntil.Store(time.Now().Add(time.Hour).UnixNano())
	res, err := r.Do(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "a", res.Deployment.Backend)
}

func TestCallerGoneDoesNotHurtHealth(t *testing.T) {
	a := &fake{outcomes: []error{errRetryable, errRetryable, errRetryable}}
	r := New([]*Route{route(a)})
	rt, _ := r.Lookup("m")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range FailureThreshold {
		_, _ = r.Do(ctx, rt, &providers.Request{})
	}
	assert.True(t, rt.Deployments[0].Healthy())
}

func TestCanceledContextStopsFallback(t *testing.T) {
	a := &fake{outcomes: []error{errRetryable}}
	b := &fake{}
	r := New([]*Route{route(a, b)})
	rt, _ := r.Lookup("m")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Do(ctx, rt, &providers.Request{})
	assert.ErrorIs(t, err, errRetryable)
	assert.Zero(t, b.calls)
}

func TestLatencyWindow(t *testing.T) {
	var w window
	assert.Zero(t, w.p95())
	for i := 1; i <= 100; i++ {
		w.add(time.Duration(i) * time.Millisecond)
	}
	// The window holds the last 64 samples, 37..100 ms.
	assert.Equal(t, 97*time.Millisecond, w.p95())
}

func TestAttemptsFeedLatency(t *testing.T) {
	r := New([]*Route{route(&fake{}, &fake{events: []string{"x"}})})
	rt, _ := r.Lookup("m")
	_, err := r.Do(context.Background(), rt, &providers.Request{})
	require.NoError(t, err)
	assert.Positive(t, rt.Deployments[0].P95Latency())
	assert.Zero(t, rt.Deployments[0].P95TTFT())
	assert.Zero(t, rt.Deployments[1].P95Latency(), "never tried")
}

type ctxKey struct{}

// ctxProvider records the context value each attempt ran with.
type ctxProvider struct {
	fake
	seen []any
}

func (c *ctxProvider) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	c.seen = append(c.seen, ctx.Value(ctxKey{}))
	return c.fake.Do(ctx, req)
}

// StartAttempt gives every attempt its own context and is told how each
// ended, in order.
func TestStartAttemptHook(t *testing.T) {
	a := &ctxProvider{fake: fake{outcomes: []error{errRetryable}}}
	b := &ctxProvider{}
	r := New([]*Route{{Name: "m", Deployments: []*Deployment{
		{Backend: "a", Model: "up-a", Provider: a},
		{Backend: "b", Model: "up-b", Provider: b},
	}}})
	var ended []string
	r.StartAttempt = func(ctx context.Context, d *Deployment) (context.Context, func(Attempt)) {
		return context.WithValue(ctx, ctxKey{}, "attempt on "+d.Backend), func(at Attempt) {
			ended = append(ended, fmt.Sprintf("%s:%v", at.Deployment.Backend, at.Err != nil))
		}
	}
	rt, _ := r.Lookup("m")
	_, err := r.Do(context.Background(), rt, &providers.Request{Body: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, []any{"attempt on a"}, a.seen)
	assert.Equal(t, []any{"attempt on b"}, b.seen)
	assert.Equal(t, []string{"a:true", "b:false"}, ended)
}

// A deployment that starts every stream and cuts it mid-way is taken out
// of rotation like one that fails at once: the stream's start does not
// reset the failure count, only a clean end does.
func TestStreamsCutMidwayEject(t *testing.T) {
	cut := &providers.Error{Status: http.StatusBadGateway, Retryable: true}
	tests := []struct {
		name    string
		ends    []error // how each stream on deployment a ends, in turn
		healthy bool
	}{
		{"every stream cut", []error{cut, cut, cut}, false},
		{"cut, clean end, cut, cut", []error{cut, nil, cut, cut}, true},
		{"error event then clean ends", []error{cut, io.EOF, io.EOF}, true},
		{"client cancellations say nothing", []error{context.Canceled, context.Canceled, context.Canceled}, true},
		{"non-retryable refusals say nothing", []error{&providers.Error{Status: http.StatusBadRequest}, &providers.Error{Status: http.StatusBadRequest}, &providers.Error{Status: http.StatusBadRequest}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := &fake{events: []string{"one", "two"}}, &fake{events: []string{"one"}}
			r := New([]*Route{route(a, b)})
			rt, _ := r.Lookup("m")
			for _, end := range tc.ends {
				res, err := r.Stream(context.Background(), rt, &providers.Request{})
				require.NoError(t, err)
				require.Equal(t, "a", res.Deployment.Backend, "a is tried while healthy")
				_, err = res.Stream.Recv()
				require.NoError(t, err)
				r.Report(res.Deployment, end)
			}
			assert.Equal(t, tc.healthy, rt.Deployments[0].Healthy())
			res, err := r.Stream(context.Background(), rt, &providers.Request{})
			require.NoError(t, err)
			want := "a"
			if !tc.healthy {
				want = "b"
			}
			assert.Equal(t, want, res.Deployment.Backend, "the next stream goes to the healthy fallback")
		})
	}
}
