package dashboards_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The import variants: the provisioned dashboards as Grafana's "export for
// sharing externally" writes them, for Dashboards → New → Import. They
// live outside dashboards/ because Grafana's file provider reads every
// *.json under its path, subdirectories included, and a variant's
// ${DS_PROMETHEUS} means nothing to provisioning.
var importDir = filepath.Join("..", "deploy", "grafana", "import")

// updateEnv regenerates the import variants instead of checking them.
const updateEnv = "SWITCHYARD_UPDATE_DASHBOARDS"

const dsInput = "DS_PROMETHEUS"

// minGrafana is the Grafana the variants' __requires names: 10.4 writes
// the dashboards' schemaVersion (39).
const minGrafana = "10.4.0"

// panelNames are the panel plugins' names, for __requires.
var panelNames = map[string]string{
	"bargauge":       "Bar gauge",
	"gauge":          "Gauge",
	"stat":           "Stat",
	"state-timeline": "State timeline",
	"timeseries":     "Time series",
}

// The import variants are generated from the provisioned dashboards and
// kept in step with them: SWITCHYARD_UPDATE_DASHBOARDS=1 rewrites them,
// otherwise a difference fails.
func TestImportVariants(t *testing.T) {
	update := os.Getenv(updateEnv) == "1"
	if update {
		require.NoError(t, os.MkdirAll(importDir, 0o755))
	}
	for _, name := range dashboardFiles {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(name)
			require.NoError(t, err)
			want, err := importVariant(src)
			require.NoError(t, err)
			path := filepath.Join(importDir, name)
			if update {
				require.NoError(t, os.WriteFile(path, want, 0o644))
				return
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "run %s=1 go test ./dashboards -run TestImportVariants to generate it", updateEnv)
			if !bytes.Equal(want, got) {
				t.Errorf("%s is out of date with dashboards/%s: run %s=1 go test ./dashboards -run TestImportVariants", path, name, updateEnv)
			}
		})
	}
	if !update {
		// No stale variant of a dashboard that is gone.
		entries, err := os.ReadDir(importDir)
		require.NoError(t, err)
		for _, e := range entries {
			assert.Contains(t, dashboardFiles, e.Name(), "%s has no source in dashboards/", filepath.Join(importDir, e.Name()))
		}
	}
}

// A variant is what the import wizard needs: one data source input that
// every query uses, what it requires, and nothing that only provisioning
// resolves; otherwise the provisioned dashboard itself.
func TestImportVariantStructure(t *testing.T) {
	for _, name := range dashboardFiles {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(importDir, name))
			require.NoError(t, err)
			var v struct {
				Inputs []struct {
					Name     string `json:"name"`
					Type     string `json:"type"`
					PluginID string `json:"pluginId"`
				} `json:"__inputs"`
				Requires []struct {
					Type string `json:"type"`
					ID   string `json:"id"`
				} `json:"__requires"`
			}
			require.NoError(t, json.Unmarshal(raw, &v))
			require.Len(t, v.Inputs, 1)
			assert.Equal(t, dsInput, v.Inputs[0].Name)
			assert.Equal(t, "datasource", v.Inputs[0].Type)
			assert.Equal(t, "prometheus", v.Inputs[0].PluginID)
			var reqs []string
			for _, r := range v.Requires {
				reqs = append(reqs, r.Type+"/"+r.ID)
			}
			assert.Contains(t, reqs, "grafana/grafana")
			assert.Contains(t, reqs, "datasource/prometheus")
			assert.NotContains(t, string(raw), "$datasource")
			assert.NotContains(t, string(raw), "${datasource}")

			d := loadDashboard(t, filepath.Join(importDir, name))
			src := loadDashboard(t, name)
			assert.Equal(t, src.UID, d.UID, "the same dashboard: links between them keep working")
			assert.Equal(t, src.Title, d.Title)
			for _, v := range d.Templating.List {
				assert.NotEqual(t, "datasource", v.Type, "variable %s: the input chooses the data source", v.Name)
				if v.Datasource != nil {
					assert.Equal(t, dsRef{"prometheus", "${" + dsInput + "}"}, *v.Datasource, "variable %s", v.Name)
				}
			}
			srcPanels, panels := allPanels(src.Panels), allPanels(d.Panels)
			require.Len(t, panels, len(srcPanels))
			for i, p := range panels {
				assert.Equal(t, srcPanels[i].Title, p.Title)
				if p.Type == "row" {
					continue
				}
				assert.Contains(t, reqs, "panel/"+p.Type, "panel %q", p.Title)
				if assert.NotNil(t, p.Datasource, "panel %q", p.Title) {
					assert.Equal(t, dsRef{"prometheus", "${" + dsInput + "}"}, *p.Datasource, "panel %q", p.Title)
				}
				for _, k := range p.Targets {
					if k.Datasource != nil {
						assert.Equal(t, dsRef{"prometheus", "${" + dsInput + "}"}, *k.Datasource, "panel %q", p.Title)
					}
				}
				assert.Equal(t, srcPanels[i].Targets, stripDatasources(p.Targets, srcPanels[i].Targets), "panel %q: the provisioned dashboard's queries", p.Title)
			}
		})
	}
}

// stripDatasources is got with want's target data sources, to compare the
// rest.
func stripDatasources(got, want []target) []target {
	out := slices.Clone(got)
	for i := range out {
		if i < len(want) {
			out[i].Datasource = want[i].Datasource
		}
	}
	return out
}

// importVariant turns a provisioned dashboard into its import variant:
// __inputs (one Prometheus data source, DS_PROMETHEUS) and __requires
// first, the ${datasource} variable gone and every data source uid that
// named it naming the input instead. Key order and everything else are
// kept.
func importVariant(src []byte) ([]byte, error) {
	v, err := decodeOrdered(src)
	if err != nil {
		return nil, err
	}
	root, ok := v.(*jsonObject)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	if root.get("__inputs") != nil || root.get("__requires") != nil {
		return nil, errors.New("the source already has __inputs or __requires")
	}

	templating, _ := root.get("templating").(*jsonObject)
	if templating == nil {
		return nil, errors.New("no templating")
	}
	list, _ := templating.get("list").([]any)
	var kept []any
	dropped := 0
	for _, x := range list {
		if o, ok := x.(*jsonObject); ok && o.get("type") == "datasource" && o.get("name") == "datasource" {
			dropped++
			continue
		}
		kept = append(kept, x)
	}
	if dropped != 1 {
		return nil, fmt.Errorf("%d ${datasource} variables, want 1", dropped)
	}
	if kept == nil {
		kept = []any{}
	}
	templating.set("list", kept)

	rewritten := 0
	var walk func(any) error
	walk = func(x any) error {
		switch x := x.(type) {
		case *jsonObject:
			for i := range x.members {
				m := &x.members[i]
				if s, ok := m.val.(string); ok && m.key == "uid" && s == "${datasource}" {
					m.val = "${" + dsInput + "}"
					rewritten++
					continue
				}
				if err := walk(m.val); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case string:
			if strings.Contains(x, "$datasource") || strings.Contains(x, "${datasource") || strings.Contains(x, "[[datasource") {
				return fmt.Errorf("%q refers to the datasource variable outside a data source uid", x)
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	if rewritten == 0 {
		return nil, errors.New("no data source uid to rewrite")
	}

	// __requires: Grafana, the Prometheus data source, every panel type.
	types := map[string]bool{}
	var collect func(any)
	collect = func(x any) {
		ps, _ := x.([]any)
		for _, p := range ps {
			o, _ := p.(*jsonObject)
			if o == nil {
				continue
			}
			if ty, _ := o.get("type").(string); ty != "" && ty != "row" {
				types[ty] = true
			}
			collect(o.get("panels"))
		}
	}
	collect(root.get("panels"))
	requires := []any{
		obj("type", "grafana", "id", "grafana", "name", "Grafana", "version", minGrafana),
		obj("type", "datasource", "id", "prometheus", "name", "Prometheus", "version", "1.0.0"),
	}
	ids := make([]string, 0, len(types))
	for ty := range types {
		ids = append(ids, ty)
	}
	slices.Sort(ids)
	for _, ty := range ids {
		name, ok := panelNames[ty]
		if !ok {
			return nil, fmt.Errorf("panel type %q: add its name to panelNames", ty)
		}
		requires = append(requires, obj("type", "panel", "id", ty, "name", name, "version", ""))
	}
	inputs := []any{obj(
		"name", dsInput,
		"label", "Prometheus",
		"description", "The Prometheus that scrapes the Switchyard gateways' /metrics",
		"type", "datasource",
		"pluginId", "prometheus",
		"pluginName", "Prometheus",
	)}
	root.members = append([]member{{"__inputs", inputs}, {"__requires", requires}}, root.members...)

	var buf bytes.Buffer
	if err := encodeIndent(&buf, root, ""); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// --- JSON that keeps its key order -------------------------------------------

type member struct {
	key string
	val any
}

// jsonObject is a JSON object in its keys' order. Values are *jsonObject,
// []any, string, json.Number, bool or nil.
type jsonObject struct{ members []member }

func obj(kv ...string) *jsonObject {
	o := &jsonObject{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.members = append(o.members, member{kv[i], kv[i+1]})
	}
	return o
}

func (o *jsonObject) get(k string) any {
	for _, m := range o.members {
		if m.key == k {
			return m.val
		}
	}
	return nil
}

func (o *jsonObject) set(k string, v any) {
	for i := range o.members {
		if o.members[i].key == k {
			o.members[i].val = v
			return
		}
	}
	o.members = append(o.members, member{k, v})
}

func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch d {
	case '{':
		o := &jsonObject{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o.members = append(o.members, member{k.(string), v})
		}
		_, err := dec.Token()
		return o, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// encodeIndent writes v indented by two spaces, as the dashboards are.
func encodeIndent(buf *bytes.Buffer, v any, indent string) error {
	switch v := v.(type) {
	case *jsonObject:
		if len(v.members) == 0 {
			buf.WriteString("{}")
			return nil
		}
		buf.WriteString("{\n")
		for i, m := range v.members {
			buf.WriteString(indent + "  ")
			if err := encodeScalar(buf, m.key); err != nil {
				return err
			}
			buf.WriteString(": ")
			if err := encodeIndent(buf, m.val, indent+"  "); err != nil {
				return err
			}
			if i < len(v.members)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case []any:
		if len(v) == 0 {
			buf.WriteString("[]")
			return nil
		}
		buf.WriteString("[\n")
		for i, e := range v {
			buf.WriteString(indent + "  ")
			if err := encodeIndent(buf, e, indent+"  "); err != nil {
				return err
			}
			if i < len(v)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	default:
		return encodeScalar(buf, v)
	}
	return nil
}

func encodeScalar(buf *bytes.Buffer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}
