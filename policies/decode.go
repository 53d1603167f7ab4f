package policies

import (
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// rawResult keeps a query's result as the OPA value it is: decodeDecision
// reads it without the Go-value and JSON round trips, about a fifth of a
// decision's cost.
var rawResult = rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) {
	return t.Value, nil
})

// decode reads a decision from a result set evaluated with rawResult;
// undefined is an error.
func decode(rs rego.ResultSet, revision string) (*Decision, error) {
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, ErrUndefined
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("policy result is %T, not an OPA value", rs[0].Expressions[0].Value)
	}
	d, err := decodeDecision(v)
	if err != nil {
		return nil, fmt.Errorf("policy result does not match the contract: %w", err)
	}
	d.Revision = revision
	return d, nil
}

// decodeDecision follows encoding/json's rules for the Decision struct:
// unknown keys are ignored, null leaves the zero value, a value of the
// wrong type is an error naming its path.
func decodeDecision(v ast.Value) (*Decision, error) {
	d := &Decision{}
	err := eachField(v, "decision", func(k string, v ast.Value) error {
		var err error
		switch k {
		case "allow":
			d.Allow, err = asBool(v, "allow")
		case "deny":
			d.Deny, err = asReasons(v, "deny")
		case "routes":
			d.Routes, err = asStrings(v, "routes")
		case "excluded":
			if !isNull(v) {
				d.Excluded = map[string][]Reason{}
			}
			err = eachField(v, "excluded", func(id string, v ast.Value) error {
				rs, err := asReasons(v, "excluded."+id)
				d.Excluded[id] = rs
				return err
			})
		case "redact":
			if !isNull(v) {
				d.Redact = map[string][]string{}
			}
			err = eachField(v, "redact", func(kind string, v ast.Value) error {
				ls, err := asStrings(v, "redact."+kind)
				d.Redact[kind] = ls
				return err
			})
		case "obligations":
			err = eachField(v, "obligations", func(k string, v ast.Value) error {
				var err error
				switch k {
				case "max_output_tokens":
					d.Obligations.MaxOutputTokens, err = asInt(v, "obligations.max_output_tokens")
				case "audit_level":
					d.Obligations.AuditLevel, err = asString(v, "obligations.audit_level")
				case "cache":
					d.Obligations.Cache, err = asString(v, "obligations.cache")
				}
				return err
			})
		}
		return err
	})
	return d, err
}

func isNull(v ast.Value) bool { _, ok := v.(ast.Null); return ok }

// eachField calls f for every string-keyed field of an object; null is an
// object without fields.
func eachField(v ast.Value, path string, f func(string, ast.Value) error) error {
	if isNull(v) {
		return nil
	}
	o, ok := v.(ast.Object)
	if !ok {
		return fmt.Errorf("%s: want an object, got %s", path, ast.ValueName(v))
	}
	var errs []error
	o.Foreach(func(k, v *ast.Term) {
		s, ok := k.Value.(ast.String)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: key %v is not a string", path, k))
			return
		}
		if err := f(string(s), v.Value); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// elems returns the elements of an array or a set (which JSON writes as
// an array).
func elems(v ast.Value, path string) ([]*ast.Term, error) {
	switch x := v.(type) {
	case ast.Null:
		return nil, nil
	case *ast.Array:
		out := make([]*ast.Term, 0, x.Len())
		x.Foreach(func(t *ast.Term) { out = append(out, t) })
		return out, nil
	case ast.Set:
		return append(make([]*ast.Term, 0, x.Len()), x.Slice()...), nil
	}
	return nil, fmt.Errorf("%s: want an array, got %s", path, ast.ValueName(v))
}

func asReasons(v ast.Value, path string) ([]Reason, error) {
	ts, err := elems(v, path)
	if err != nil || ts == nil {
		return nil, err
	}
	out := make([]Reason, len(ts))
	for i, t := range ts {
		p := fmt.Sprintf("%s[%d]", path, i)
		err := eachField(t.Value, p, func(k string, v ast.Value) error {
			var err error
			switch k {
			case "code":
				out[i].Code, err = asString(v, p+".code")
			case "message":
				out[i].Message, err = asString(v, p+".message")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func asStrings(v ast.Value, path string) ([]string, error) {
	ts, err := elems(v, path)
	if err != nil || ts == nil {
		return nil, err
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		if out[i], err = asString(t.Value, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func asString(v ast.Value, path string) (string, error) {
	switch x := v.(type) {
	case ast.String:
		return string(x), nil
	case ast.Null:
		return "", nil
	}
	return "", fmt.Errorf("%s: want a string, got %s", path, ast.ValueName(v))
}

func asBool(v ast.Value, path string) (bool, error) {
	switch x := v.(type) {
	case ast.Boolean:
		return bool(x), nil
	case ast.Null:
		return false, nil
	}
	return false, fmt.Errorf("%s: want a boolean, got %s", path, ast.ValueName(v))
}

func asInt(v ast.Value, path string) (int64, error) {
	switch x := v.(type) {
	case ast.Number:
		if n, ok := x.Int64(); ok {
			return n, nil
		}
		return 0, fmt.Errorf("%s: %s is not an integer", path, x)
	case ast.Null:
		return 0, nil
	}
	return 0, fmt.Errorf("%s: want a number, got %s", path, ast.ValueName(v))
}
