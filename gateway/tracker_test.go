package gateway

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTracker(t *testing.T) {
	tr := newTracker()
	var ran atomic.Int32
	release := make(chan struct{})
	tr.goOrRun(func() { <-release; ran.Add(1) })
	require.False(t, tr.wait(20*time.Millisecond, false), "work is still running")
	require.True(t, tr.start(), "work may be added while someone waits")
	tr.done()
	close(release)
	require.True(t, tr.wait(time.Second, true))
	require.EqualValues(t, 1, ran.Load())
	require.False(t, tr.start(), "closed")
	tr.goOrRun(func() { ran.Add(1) }) // inline once closed
	require.EqualValues(t, 2, ran.Load())
}
