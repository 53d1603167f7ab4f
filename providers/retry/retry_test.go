package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// scripted answers each call with the next error (nil: success).
type scripted struct {
	errs  []error
	calls int
}

var _ providers.Provider = (*scripted)(nil)

func (s *scripted) next() error {
	s.calls++
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func (s *scripted) Do(context.Context, *providers.Request) (*providers.Response, error) {
	if err := s.next(); err != nil {
		return nil, err
	}
	return &providers.Response{Body: []byte(`{}`)}, nil
}

func (s *scripted) Stream(context.Context, *providers.Request) (providers.Stream, error) {
	return nil, s.next()
}

func status(code int, retryAfter string) error {
	return &providers.Error{Status: code, Retryable: true, RetryAfter: retryAfter, Code: "x"}
}

func TestRetries(t *testing.T) {
	auth := &providers.Error{Status: 502, Code: providers.CodeUpstreamAuth, Retryable: true}
	bad := &providers.Error{Status: 400, Code: "invalid_request"}
	for _, tc := range []struct {
		name   string
		errs   []error
		calls  int
		ok     bool
		sleeps []time.Duration
	}{
		{"success first", nil, 1, true, nil},
		{"429 then success", []error{status(429, "")}, 2, true, []time.Duration{50 * time.Millisecond}},
		{"529 overloaded, 503, then success", []error{status(529, ""), status(503, "")}, 3, true, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"gives up after three", []error{status(500, ""), status(502, ""), status(504, "")}, 3, false, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"Retry-After honoured", []error{status(429, "2")}, 2, true, []time.Duration{2 * time.Second}},
		{"Retry-After too long: fall back now", []error{status(429, "30")}, 1, false, nil},
		{"credentials are not retried here", []error{auth}, 1, false, nil},
		{"client errors are not retried", []error{bad}, 1, false, nil},
		{"404 is the router's", []error{status(404, "")}, 1, false, nil},
		{"plain errors are not retried", []error{errors.New("canceled")}, 1, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &scripted{errs: tc.errs}
			var slept []time.Duration
			p := Wrap(up, Policy{Attempts: 3, Base: 100 * time.Millisecond, Max: time.Second, MaxRetryAfter: 5 * time.Second,
				Jitter: func() float64 { return 0.5 },
				Sleep:  func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
			_, err := p.Do(context.Background(), &providers.Request{})
			require.Equal(t, tc.ok, err == nil, "%v", err)
			require.Equal(t, tc.calls, up.calls)
			require.Equal(t, tc.sleeps, slept)
		})
	}
}

func TestRetryStaysWithinTheDeadline(t *testing.T) {
	up := &scripted{errs: []error{status(503, "1"), status(503, "")}}
	p := Wrap(up, Policy{Attempts: 3, Base: 10 * time.Millisecond, Max: time.Second, MaxRetryAfter: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Stream(ctx, &providers.Request{})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, http.StatusServiceUnavailable, pe.Status)
	require.Equal(t, 1, up.calls, "a 1 s Retry-After does not fit a 300 ms deadline")
	require.Less(t, time.Since(start), 200*time.Millisecond)
}

func TestOneAttemptIsTheProviderItself(t *testing.T) {
	up := &scripted{}
	require.Same(t, providers.Provider(up), Wrap(up, Policy{Attempts: 1}))
}

func TestHTTPDateRetryAfter(t *testing.T) {
	d, ok := retryAfter(status(429, time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat)))
	require.True(t, ok)
	require.InDelta(t, 3*time.Second, d, float64(1500*time.Millisecond))
}

// native is a provider that speaks one native format.
type native struct{ scripted }

func (native) SpeaksNative(format string) bool { return format == providers.FormatAnthropicMessages }

// TestSpeaksNative: the wrapper answers for the provider it wraps.
func TestSpeaksNative(t *testing.T) {
	pol := Policy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}
	ns, ok := Wrap(&native{}, pol).(providers.NativeSpeaker)
	require.True(t, ok)
	require.True(t, ns.SpeaksNative(providers.FormatAnthropicMessages))
	require.False(t, ns.SpeaksNative("other.format"))
	ns, ok = Wrap(&scripted{}, pol).(providers.NativeSpeaker)
	require.True(t, ok)
	require.False(t, ns.SpeaksNative(providers.FormatAnthropicMessages), "a provider that speaks nothing natively")
}
