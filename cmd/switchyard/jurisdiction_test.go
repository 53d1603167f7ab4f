package main

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
)

// shippedConfig loads the repository's config.yaml with the environment
// it reads left unset, so its defaults apply.
func shippedConfig(t *testing.T) *config.Config {
	t.Helper()
	for _, v := range []string{"SWITCHYARD_JURISDICTION", "SWITCHYARD_REGION", "SWITCHYARD_POLICY_BUNDLE"} {
		t.Setenv(v, "")
	}
	cfg, err := config.Load("../../config.yaml")
	require.NoError(t, err)
	return cfg
}

// TestShippedConfigServesPinnedTenants: every tenant the shipped bundle
// pins to a jurisdiction (eu-bank -> EU) has a deployment of the shipped
// `default` route in it, and the shipped policy routes its requests there,
// personal data included, instead of refusing them.
func TestShippedConfigServesPinnedTenants(t *testing.T) {
	cfg := shippedConfig(t)
	b, err := policies.LoadBundle(policies.Shipped())
	require.NoError(t, err)
	pins := b.PinnedJurisdictions()
	require.Equal(t, "EU", pins["eu-bank"])

	backends := map[string]config.Backend{}
	for _, be := range cfg.Backends {
		backends[be.Name] = be
	}
	var route *config.Model
	for i := range cfg.Models {
		if cfg.Models[i].Name == "default" {
			route = &cfg.Models[i]
		}
	}
	require.NotNil(t, route, "config.yaml has a default route")
	var candidates []policies.Candidate
	for _, d := range route.Deployments {
		be := backends[d.Backend]
		candidates = append(candidates, policies.Candidate{
			ID: d.Backend + "/" + cmp.Or(d.Model, route.Name), Backend: d.Backend, Provider: be.Provider, Kind: be.Kind,
			Region: be.Region, Jurisdiction: be.Jurisdiction, Healthy: true,
		})
	}

	e, err := policies.New(context.Background(), "", nil)
	require.NoError(t, err)
	for tenant, j := range pins {
		var inJurisdiction []string
		for _, c := range candidates {
			if c.Jurisdiction == j {
				inJurisdiction = append(inJurisdiction, c.ID)
			}
		}
		require.NotEmpty(t, inJurisdiction, "tenant %s is pinned to %s: route default needs a backend there", tenant, j)

		for _, entities := range []map[string]int{{}, {"CREDIT_CARD": 1}} {
			in := &policies.Input{
				Request:    policies.Request{Operation: "chat", Model: "default", Entities: entities, WeakEntities: map[string]int{}, Categories: map[string]string{"CREDIT_CARD": "pii"}},
				Subject:    policies.Subject{Tenant: tenant, Team: "dev"},
				Candidates: candidates,
			}
			d, err := e.Decide(context.Background(), in)
			require.NoError(t, err)
			assert.True(t, d.Allow, "tenant %s, entities %v: %+v", tenant, entities, d.Deny)
			assert.NotEmpty(t, d.Routes)
			assert.Subset(t, inJurisdiction, d.Routes, "tenant %s is only routed inside %s", tenant, j)
		}
	}
	assert.Empty(t, unmatchedPins(pins, cfg.Backends))
}

func TestConfigCheckWarnsAboutUnservablePinnedTenants(t *testing.T) {
	// The shipped config and bundle agree: no warning (with the
	// providers' keys set).
	for _, v := range []string{"SWITCHYARD_JURISDICTION", "SWITCHYARD_POLICY_BUNDLE"} {
		t.Setenv(v, "")
	}
	for _, v := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"} {
		t.Setenv(v, "sk-test")
	}
	out, err := runCmd(t, "", "config", "check", "-config", "../../config.yaml")
	require.NoError(t, err)
	assert.NotContains(t, out, "warning:")

	// The local backends moved to the US: eu-bank has nowhere to go.
	t.Setenv("SWITCHYARD_JURISDICTION", "US")
	out, err = runCmd(t, "", "config", "check", "-config", "../../config.yaml")
	require.NoError(t, err, "a warning, not an error")
	assert.Contains(t, out, `warning: tenant "eu-bank" is pinned to jurisdiction "EU" but no backend has jurisdiction "EU"; its requests will be refused (NO_ELIGIBLE_BACKEND)`)

	// A bundle directory named by policy.bundle is the one read.
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	require.NoError(t, os.Mkdir(bundle, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "p.rego"), []byte("package switchyard\n\nimport rego.v1\n\ndecision := {}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "data.json"), []byte(`{"switchyard": {"config": {"tenants": {
		"swiss": {"jurisdiction": "CH"}, "us": {"jurisdiction": "US"}, "free": {}, "broken": {"jurisdiction": null}}}}}`), 0o600))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
backends:
  - name: openai
    kind: proprietary
    base_url: https://api.openai.com/v1
    region: us
    jurisdiction: US
models:
  - name: gpt-4o-mini
    deployments:
      - backend: openai
policy:
  bundle: `+bundle+`
`), 0o600))
	out, err = runCmd(t, "", "config", "check", "-config", path)
	require.NoError(t, err)
	assert.Contains(t, out, `warning: tenant "swiss" is pinned to jurisdiction "CH" but no backend has jurisdiction "CH"`)
	assert.Contains(t, out, `warning: tenant "broken" is pinned to jurisdiction "null"`)
	assert.NotContains(t, out, `"us"`)
	assert.NotContains(t, out, `"free"`)
	assert.NotContains(t, out, "eu-bank")

	// A bundle that cannot be read is a warning too; the config is valid.
	require.NoError(t, os.RemoveAll(bundle))
	out, err = runCmd(t, "", "config", "check", "-config", path)
	require.NoError(t, err)
	assert.Contains(t, out, "warning: could not check the tenants' pinned jurisdictions: policy bundle "+bundle)
}

func TestGatewayStartLogsUnservablePinnedTenants(t *testing.T) {
	cfg := shippedConfig(t)
	for i := range cfg.Backends {
		if cfg.Backends[i].Jurisdiction == "EU" {
			cfg.Backends[i].Jurisdiction = "local"
		}
	}
	var buf bytes.Buffer
	logJurisdictionWarnings(cfg, slog.New(slog.NewJSONHandler(&buf, nil)))
	assert.Contains(t, buf.String(), `"level":"WARN"`)
	assert.Contains(t, buf.String(), `tenant \"eu-bank\" is pinned to jurisdiction \"EU\" but no backend has jurisdiction \"EU\"; its requests will be refused (NO_ELIGIBLE_BACKEND)`)
	assert.Contains(t, buf.String(), `"tenant":"eu-bank","jurisdiction":"EU"`)

	buf.Reset()
	logJurisdictionWarnings(shippedConfig(t), slog.New(slog.NewJSONHandler(&buf, nil)))
	assert.Empty(t, buf.String())
}
