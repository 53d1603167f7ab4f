package dashboards_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var dashboardFiles = []string{"cost.json", "traffic.json", "policy.json"}

type dashboard struct {
	ID            *int   `json:"id"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Inputs        any    `json:"__inputs"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Datasource *dsRef `json:"datasource"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a collapsed row's
	TimeFrom   string   `json:"timeFrom"`
}

type target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Datasource *dsRef `json:"datasource"`
}

func loadDashboard(t testing.TB, name string) dashboard {
	t.Helper()
	raw, err := os.ReadFile(name)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d), name)
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// A panel's or target's data source is the ${datasource} variable: no
// hard-coded uid, nothing the import wizard alone resolves.
func TestDashboardStructure(t *testing.T) {
	uids := map[string]string{}
	for _, name := range dashboardFiles {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(name)
			require.NoError(t, err)
			var generic map[string]any
			require.NoError(t, json.Unmarshal(raw, &generic))
			// Provisioning does not resolve __inputs: the import variants
			// (import_test.go) carry them.
			assert.NotContains(t, generic, "__inputs", "file provisioning does not resolve __inputs")
			assert.NotContains(t, string(raw), "DS_PROMETHEUS")

			d := loadDashboard(t, name)
			assert.Nil(t, d.ID, "id must be null: Grafana assigns it")
			assert.NotEmpty(t, d.UID)
			assert.NotContains(t, uids, d.UID, "uid shared with %s", uids[d.UID])
			uids[d.UID] = name
			assert.NotEmpty(t, d.Title)
			assert.GreaterOrEqual(t, d.SchemaVersion, 36)

			require.NotEmpty(t, d.Templating.List)
			ds := d.Templating.List[0]
			assert.Equal(t, "datasource", ds.Name)
			assert.Equal(t, "datasource", ds.Type)
			assert.Equal(t, "prometheus", ds.Query)
			for _, v := range d.Templating.List[1:] {
				if v.Datasource != nil {
					assert.Equal(t, dsRef{"prometheus", "${datasource}"}, *v.Datasource, "variable %s", v.Name)
				}
			}

			ids := map[int]string{}
			exprs := 0
			for _, p := range allPanels(d.Panels) {
				assert.Positive(t, p.ID, "panel %q", p.Title)
				assert.NotContains(t, ids, p.ID, "panel %q reuses the id of %q", p.Title, ids[p.ID])
				ids[p.ID] = p.Title
				assert.NotEmpty(t, p.Title, "panel %d", p.ID)
				if p.Type == "row" {
					continue
				}
				if assert.NotNil(t, p.Datasource, "panel %q", p.Title) {
					assert.Equal(t, dsRef{"prometheus", "${datasource}"}, *p.Datasource, "panel %q", p.Title)
				}
				if !assert.NotEmpty(t, p.Targets, "panel %q", p.Title) {
					continue
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					assert.NotEmpty(t, tg.Expr, "panel %q target %s", p.Title, tg.RefID)
					assert.NotEmpty(t, tg.RefID, "panel %q", p.Title)
					assert.False(t, refs[tg.RefID], "panel %q repeats refId %s", p.Title, tg.RefID)
					refs[tg.RefID] = true
					if tg.Datasource != nil {
						assert.Equal(t, dsRef{"prometheus", "${datasource}"}, *tg.Datasource, "panel %q", p.Title)
					}
					assert.NotContains(t, tg.Expr, "${datasource}")
					// The request, token, latency and cost metrics carry
					// switchyard_backend_kind: joining the health gauge on
					// model names to guess it miscounts a model name that
					// several kinds serve.
					if strings.Contains(tg.Expr, "switchyard_backend_healthy") {
						assert.NotRegexp(t, join, tg.Expr, "panel %q target %s joins the health gauge", p.Title, tg.RefID)
					}
					exprs++
				}
			}
			assert.Positive(t, exprs)
		})
	}
}

// join is PromQL that matches one vector's series against another's.
var join = regexp.MustCompile(`\b(?:and|unless|on|ignoring|group_left|group_right|label_replace)\b`)

// The provisioning files are Grafana's formats: a file provider and a
// Prometheus data source.
func TestProvisioning(t *testing.T) {
	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	raw, err := os.ReadFile(filepath.Join("provisioning", "dashboards.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &dash))
	assert.Equal(t, 1, dash.APIVersion)
	require.Len(t, dash.Providers, 1)
	assert.Equal(t, "file", dash.Providers[0].Type)
	assert.True(t, filepath.IsAbs(dash.Providers[0].Options.Path))

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name string `yaml:"name"`
			Type string `yaml:"type"`
			UID  string `yaml:"uid"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	raw, err = os.ReadFile(filepath.Join("provisioning", "datasource.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &ds))
	assert.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	assert.Regexp(t, regexp.MustCompile(`^https?://`), ds.Datasources[0].URL)
}
