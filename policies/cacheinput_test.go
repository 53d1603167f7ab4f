package policies

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A policy may decide on input.cache: a remembered decision is reused
// only for the same cache view.
func TestDecisionCacheKeepsTheCacheView(t *testing.T) {
	dir := copyShipped(t)
	rule := "package switchyard\n\nimport rego.v1\n\n" +
		"obligations[\"cache\"] := \"off\" if input.cache.match == \"semantic\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "semantic_off.rego"), []byte(rule), 0o644))
	e, err := New(context.Background(), dir, nil)
	require.NoError(t, err)
	ctx := context.Background()
	in := benchInput()
	in.Cache = Cache{Enabled: true, Mode: "semantic"}
	d, err := e.Decide(ctx, in)
	require.NoError(t, err)
	assert.Empty(t, d.Obligations.Cache)
	in2 := benchInput()
	in2.Cache = Cache{Enabled: true, Mode: "semantic", Available: true, Match: "semantic", Similarity: 0.97}
	d, err = e.Decide(ctx, in2)
	require.NoError(t, err)
	assert.False(t, d.Reused, "another cache view is another input")
	assert.Equal(t, "off", d.Obligations.Cache)
	d, err = e.Decide(ctx, in2)
	require.NoError(t, err)
	assert.True(t, d.Reused)
}
