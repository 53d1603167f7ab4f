package policies

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation is a decision with the rules that produced it.
type Explanation struct {
	Decision *Decision `json:"decision"`
	// Fired lists the rules that evaluated to a value, as
	// "file:line rule", in file order.
	Fired []string `json:"fired"`
}

// Explain evaluates the current bundle with tracing: what
// `switchyard policy explain` and the admin explain endpoint print. It is
// slow (a trace per call) and not for the request path.
func (e *Engine) Explain(ctx context.Context, in *Input) (*Explanation, error) {
	c := e.cur.Load()
	v := inputValue(in)
	tracer := topdown.NewBufferTracer()
	rs, err := c.pq.Eval(ctx, rego.EvalParsedInput(v), rego.EvalQueryTracer(tracer), rawResult)
	if err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	d, err := decode(rs, c.revision)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	type fired struct {
		file string
		row  int
		name string
	}
	var out []fired
	for _, ev := range *tracer {
		if ev.Op != topdown.ExitOp {
			continue
		}
		r, ok := ev.Node.(*ast.Rule)
		if !ok || r.Location == nil || strings.HasPrefix(r.Head.Name.String(), "test_") {
			continue
		}
		key := fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, fired{r.Location.File, r.Location.Row, key + " " + r.Head.Ref().GroundPrefix().String()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].file != out[j].file {
			return out[i].file < out[j].file
		}
		return out[i].row < out[j].row
	})
	x := &Explanation{Decision: d}
	for _, f := range out {
		x.Fired = append(x.Fired, f.name)
	}
	return x, nil
}
