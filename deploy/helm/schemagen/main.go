// Command schemagen writes the JSON schemas kubeconform validates the Helm
// chart against, offline, in kubeconform's layout
// (<kind>-<group>-<version>.json, as its -schema-location template names
// them), from sources the Go module proxy serves:
//
//   - the Kubernetes API: api/openapi-spec/swagger.json of the module
//     k8s.io/kubernetes at the given version;
//   - custom resources: CustomResourceDefinitions (JSON) inside other
//     modules, such as prometheus-operator's ServiceMonitor.
//
// It does what kubeconform's openapi2jsonschema does for its published
// schemas: every object with declared properties refuses others
// (additionalProperties: false, the "-strict" variants), int-or-string
// fields take an integer or a string, quantities a number or a string.
// Each file is standalone: the kind's definition with the definitions it
// reaches. Descriptions are dropped.
//
//	go run . -out DIR -kubernetes v1.37.2 \
//	  -crd github.com/prometheus-operator/prometheus-operator@v0.85.0:jsonnet/prometheus-operator/servicemonitors-crd.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

type crdFlags []string

func (c *crdFlags) String() string     { return strings.Join(*c, ",") }
func (c *crdFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	out := flag.String("out", "", "directory to write the schemas to")
	k8s := flag.String("kubernetes", "", "version of the module k8s.io/kubernetes whose swagger.json to convert")
	var crds crdFlags
	flag.Var(&crds, "crd", "MODULE@VERSION:PATH of a CustomResourceDefinition in JSON (repeatable)")
	flag.Parse()
	if *out == "" || *k8s == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *k8s, crds); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(out, k8sVersion string, crds []string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	dir, err := moduleDir("k8s.io/kubernetes", k8sVersion)
	if err != nil {
		return err
	}
	n, err := fromSwagger(filepath.Join(dir, "api", "openapi-spec", "swagger.json"), out)
	if err != nil {
		return err
	}
	fmt.Printf("schemagen: %d schemas from k8s.io/kubernetes@%s api/openapi-spec/swagger.json\n", n, k8sVersion)
	for _, c := range crds {
		modVer, path, ok := strings.Cut(c, ":")
		mod, ver, ok2 := strings.Cut(modVer, "@")
		if !ok || !ok2 {
			return fmt.Errorf("-crd %q: want MODULE@VERSION:PATH", c)
		}
		dir, err := moduleDir(mod, ver)
		if err != nil {
			return err
		}
		names, err := fromCRD(filepath.Join(dir, filepath.FromSlash(path)), out)
		if err != nil {
			return err
		}
		fmt.Printf("schemagen: %s from %s %s\n", strings.Join(names, ", "), modVer, path)
	}
	return nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its directory.
func moduleDir(mod, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", mod+"@"+version)
	cmd.Dir = os.TempDir() // outside any module: nothing is added to a go.mod
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(b, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", mod, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", mod, version, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory in %s", mod, version, b)
	}
	return info.Dir, nil
}

type object = map[string]any

// fileName is kubeconform's name for a kind's schema:
// {{ .ResourceKind }}{{ .KindSuffix }}.json.
func fileName(kind, group, version string) string {
	suffix := "-" + strings.ToLower(version)
	if group != "" {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
	}
	return strings.ToLower(kind) + suffix + ".json"
}

func fromSwagger(path, out string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]object `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Definitions) == 0 {
		return 0, fmt.Errorf("%s: no definitions", path)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = convert(d)
	}
	// The two string types that the API also accepts as numbers.
	defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = object{"oneOf": []any{object{"type": "string"}, object{"type": "integer"}}}
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = object{"oneOf": []any{object{"type": "string"}, object{"type": "number"}}}

	written := map[string]string{}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		gvks, _ := doc.Definitions[name]["x-kubernetes-group-version-kind"].([]any)
		if len(gvks) != 1 {
			continue // not a kind, or a shared type (DeleteOptions, WatchEvent)
		}
		g, _ := gvks[0].(object)
		group, _ := g["group"].(string)
		version, _ := g["version"].(string)
		kind, _ := g["kind"].(string)
		if kind == "" || version == "" {
			continue
		}
		file := fileName(kind, group, version)
		if prev, ok := written[file]; ok {
			return 0, fmt.Errorf("%s and %s both map to %s", prev, name, file)
		}
		written[file] = name
		schema := object{"$schema": "http://json-schema.org/draft-04/schema#"}
		for k, v := range defs[name].(object) {
			schema[k] = v
		}
		reach := map[string]any{}
		collect(defs[name], defs, reach)
		if len(reach) > 0 {
			schema["definitions"] = reach
		}
		if err := writeJSON(filepath.Join(out, file), schema); err != nil {
			return 0, err
		}
	}
	if len(written) == 0 {
		return 0, errors.New("no kinds found in " + path)
	}
	return len(written), nil
}

// collect adds to reach every definition that v refers to, transitively.
func collect(v any, defs map[string]any, reach map[string]any) {
	switch t := v.(type) {
	case object:
		if ref, ok := t["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if _, seen := reach[name]; !seen {
				d, ok := defs[name]
				if !ok {
					panic("unresolved reference " + ref)
				}
				reach[name] = d
				collect(d, defs, reach)
			}
		}
		for _, c := range t {
			collect(c, defs, reach)
		}
	case []any:
		for _, c := range t {
			collect(c, defs, reach)
		}
	}
}

// convert returns a copy of schema s made strict: an object with declared
// properties refuses others, unless it says otherwise or keeps unknown
// fields; int-or-string fields take both; nullable ones take null.
// Descriptions are dropped.
func convert(s object) object {
	out := object{}
	for k, v := range s {
		switch k {
		case "description":
			continue
		case "properties", "definitions", "patternProperties":
			m, _ := v.(object)
			props := object{}
			for name, p := range m {
				if ps, ok := p.(object); ok {
					props[name] = convert(ps)
				} else {
					props[name] = p
				}
			}
			out[k] = props
		case "items", "additionalProperties", "not":
			if ps, ok := v.(object); ok {
				out[k] = convert(ps)
			} else {
				out[k] = v // a boolean, or a list of items
			}
		case "allOf", "anyOf", "oneOf":
			l, _ := v.([]any)
			var list []any
			for _, p := range l {
				if ps, ok := p.(object); ok {
					list = append(list, convert(ps))
				} else {
					list = append(list, p)
				}
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	if f, _ := s["format"].(string); f == "int-or-string" || s["x-kubernetes-int-or-string"] == true {
		if _, has := out["anyOf"]; !has {
			delete(out, "type")
			delete(out, "format")
			out["oneOf"] = []any{object{"type": "string"}, object{"type": "integer"}}
		}
	}
	if _, ok := out["properties"]; ok {
		if _, set := out["additionalProperties"]; !set && out["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
	}
	if s["nullable"] == true {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
	}
	return out
}

func fromCRD(path, out string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Kind string `json:"kind"`
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema object `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if crd.Kind != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s: kind %q, want CustomResourceDefinition", path, crd.Kind)
	}
	var names []string
	for _, v := range crd.Spec.Versions {
		if v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		schema := convert(v.Schema.OpenAPIV3Schema)
		schema["$schema"] = "http://json-schema.org/draft-04/schema#"
		file := fileName(crd.Spec.Names.Kind, crd.Spec.Group, v.Name)
		if err := writeJSON(filepath.Join(out, file), schema); err != nil {
			return nil, err
		}
		names = append(names, fmt.Sprintf("%s %s/%s", crd.Spec.Names.Kind, crd.Spec.Group, v.Name))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no version has a schema", path)
	}
	return names, nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
