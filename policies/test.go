package policies

import (
	"context"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is one Rego test's outcome.
type TestResult struct {
	Name   string // package.rule
	Pass   bool
	Skip   bool
	Error  string
	Output string // print() output of a failing test
}

// TestReport is the outcome of a bundle's Rego tests.
type TestReport struct {
	Results []TestResult
	// Coverage is the percentage of the policy modules' lines (tests
	// excluded) that the tests evaluated.
	Coverage float64
}

// Passed reports whether every test passed and there was at least one.
func (r TestReport) Passed() bool {
	if len(r.Results) == 0 {
		return false
	}
	for _, t := range r.Results {
		if !t.Pass && !t.Skip {
			return false
		}
	}
	return true
}

// Check parses and compiles every module of the bundle, tests included,
// in strict mode: what `switchyard policy check` runs.
func Check(b *Bundle) error {
	mods, err := parse(b)
	if err != nil {
		return err
	}
	c := ast.NewCompiler().WithStrict(true).WithSchemas(schemas())
	if c.Compile(mods); c.Failed() {
		return c.Errors
	}
	return nil
}

func parse(b *Bundle) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(b.Modules))
	for p, src := range b.Modules {
		m, err := ast.ParseModuleWithOpts(p, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		mods[p] = m
	}
	return mods, nil
}

// Test runs the bundle's Rego tests (rules named test_* in *_test.rego)
// with coverage, through OPA's tester.
func Test(ctx context.Context, b *Bundle) (TestReport, error) {
	if err := Check(b); err != nil {
		return TestReport{}, err
	}
	mods, err := parse(b)
	if err != nil {
		return TestReport{}, err
	}
	cov := cover.New()
	runner := tester.NewRunner().
		SetStore(inmem.NewFromObject(b.Data)).
		SetCoverageQueryTracer(cov).
		SetModules(mods)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return TestReport{}, fmt.Errorf("running policy tests: %w", err)
	}
	var rep TestReport
	for r := range ch {
		tr := TestResult{Name: r.Package + "." + r.Name, Pass: r.Pass(), Skip: r.Skip, Output: string(r.Output)}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		rep.Results = append(rep.Results, tr)
	}
	sort.Slice(rep.Results, func(i, j int) bool { return rep.Results[i].Name < rep.Results[j].Name })
	policy := map[string]*ast.Module{}
	for p, m := range mods {
		if !isTest(p) {
			policy[p] = m
		}
	}
	rep.Coverage = cov.Report(policy).Coverage
	return rep, nil
}
