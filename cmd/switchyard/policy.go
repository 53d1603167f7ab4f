package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
)

const policyUsage = `usage:
  switchyard policy test [-threshold PCT] [DIR]   run the bundle's Rego tests with coverage
  switchyard policy check [DIR]                   compile the bundle strictly (as opa check --strict)
  switchyard policy explain [-bundle DIR] [-request BODY.json [-config FILE]] INPUT.json
                                                  print the decision for a policy input, the excluded
                                                  deployments with reasons, and the rules that fired;
                                                  with -request, classify that request body first: its
                                                  entities replace the input's, and the detectors that
                                                  fired are listed by label and path (never the value),
                                                  with the config's custom detectors and phone regions
  switchyard policy export DIR                     write the bundle shipped in the binary to DIR (new or
                                                  empty of its files), as a starting point for your own:
                                                  edit it, add modules, then set policy.bundle: DIR
DIR defaults to the bundle shipped in the binary.`

const (
	policyTestUsage = `usage: switchyard policy test [-threshold PCT] [DIR]
  run the Rego tests of the bundle in DIR (default: the shipped bundle) and
  report coverage; fail when a test fails or coverage is below -threshold`
	policyCheckUsage = `usage: switchyard policy check [DIR]
  compile the bundle in DIR (default: the shipped bundle) strictly, as
  opa check --strict does`
	policyExplainUsage = `usage: switchyard policy explain [-bundle DIR] [-request BODY.json [-config FILE]] INPUT.json
  print the decision for the policy input INPUT.json, the excluded deployments
  with reasons, and the rules that fired; with -request, classify that request
  body first: its entities replace the input's, and the detectors that fired
  are listed by label and path (never the value)`
	policyExportUsage = `usage: switchyard policy export DIR
  write the bundle shipped in the binary to DIR (new or empty of its files),
  as a starting point for your own: edit it, add modules, then set
  policy.bundle: DIR. A DIR that starts with "-" goes after --.`
)

func policyCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(policyUsage)
	}
	if isHelp(args[0]) {
		fmt.Fprintln(stdout, policyUsage)
		return nil
	}
	ctx := context.Background()
	switch args[0] {
	case "test":
		fset := newFlagSet("policy test", policyTestUsage, stderr)
		threshold := fset.Float64("threshold", 0, "fail when coverage is below this percentage")
		if err := fset.Parse(args[1:]); err != nil {
			return err
		}
		b, err := loadBundleArg(fset.Args())
		if err != nil {
			return err
		}
		rep, err := policies.Test(ctx, b)
		if err != nil {
			return err
		}
		failed := 0
		for _, r := range rep.Results {
			status := "PASS"
			switch {
			case r.Skip:
				status = "SKIP"
			case !r.Pass:
				status, failed = "FAIL", failed+1
			}
			fmt.Fprintf(stdout, "%s %s", status, r.Name)
			if r.Error != "" {
				fmt.Fprintf(stdout, ": %s", r.Error)
			}
			fmt.Fprintln(stdout)
			if !r.Pass && r.Output != "" {
				fmt.Fprintf(stdout, "  output: %s\n", r.Output)
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed; coverage %.1f%% (bundle revision %s)\n", len(rep.Results)-failed, failed, rep.Coverage, b.Revision)
		switch {
		case !rep.Passed():
			return errors.New("policy tests failed")
		case rep.Coverage < *threshold:
			return fmt.Errorf("coverage %.1f%% is below the threshold %.1f%%", rep.Coverage, *threshold)
		}
		return nil
	case "export":
		fset := newFlagSet("policy export", policyExportUsage, stderr)
		if err := fset.Parse(args[1:]); err != nil {
			return err
		}
		if fset.NArg() != 1 {
			return errors.New(policyExportUsage)
		}
		dir := fset.Arg(0)
		if err := os.CopyFS(dir, policies.Shipped()); err != nil {
			return fmt.Errorf("exporting the shipped bundle: %w", err)
		}
		fmt.Fprintf(stdout, "wrote the shipped bundle to %s; check it with: switchyard policy test %[1]s\n", dir)
		return nil
	case "check":
		fset := newFlagSet("policy check", policyCheckUsage, stderr)
		if err := fset.Parse(args[1:]); err != nil {
			return err
		}
		b, err := loadBundleArg(fset.Args())
		if err != nil {
			return err
		}
		if err := policies.Check(b); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "bundle is valid: %d modules, revision %s\n", len(b.Modules), b.Revision)
		return nil
	case "explain":
		fset := newFlagSet("policy explain", policyExplainUsage, stderr)
		dir := fset.String("bundle", "", "bundle directory (default: the shipped bundle)")
		reqFile := fset.String("request", "", "an OpenAI request body to classify into the input")
		cfgFile := fset.String("config", "", "a config whose classification (custom detectors, phone regions) -request uses")
		if err := fset.Parse(args[1:]); err != nil {
			return err
		}
		if fset.NArg() != 1 {
			return errors.New("policy explain needs one INPUT.json (the policy input document; see docs/policy-contract.md)")
		}
		raw, err := os.ReadFile(fset.Arg(0))
		if err != nil {
			return err
		}
		var in policies.Input
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("%s: %w", fset.Arg(0), err)
		}
		var detections []classify.Detection
		if *reqFile != "" {
			if detections, err = classifyInto(&in, *reqFile, *cfgFile); err != nil {
				return err
			}
		}
		e, err := policies.New(ctx, *dir, nil)
		if err != nil {
			return err
		}
		x, err := e.Explain(ctx, &in)
		if err != nil {
			return err
		}
		var out []byte
		if *reqFile != "" {
			out, _ = json.MarshalIndent(struct {
				Detections []classify.Detection `json:"detections"`
				*policies.Explanation
			}{detections, x}, "", "  ")
		} else {
			out, _ = json.MarshalIndent(x, "", "  ")
		}
		fmt.Fprintln(stdout, string(out))
		return nil
	}
	return fmt.Errorf("unknown policy command %q\n%s", args[0], policyUsage)
}

// classifyInto scans a request body as the gateway would (with the
// classification of cfgFile, when given) and puts what it found into the
// policy input.
func classifyInto(in *policies.Input, file, cfgFile string) ([]classify.Detection, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%s: not valid JSON", file)
	}
	var o classify.Options
	if cfgFile != "" {
		cfg, err := config.Load(cfgFile)
		if err != nil {
			return nil, err
		}
		for _, d := range cfg.Classification.Custom {
			o.Custom = append(o.Custom, classify.Custom{Label: d.Label, Pattern: d.Pattern, Category: d.Category})
		}
		o.PhoneRegions = cfg.Classification.PhoneRegions
	}
	c, err := classify.NewWith(o)
	if err != nil {
		return nil, err
	}
	f := c.ScanRequest(body)
	in.Request.Entities, in.Request.WeakEntities = f.Counts(), f.WeakCounts()
	if in.Request.Entities == nil {
		in.Request.Entities = map[string]int{}
	}
	if in.Request.WeakEntities == nil {
		in.Request.WeakEntities = map[string]int{}
	}
	in.Request.Categories = map[string]string{}
	for _, l := range f.Labels() {
		in.Request.Categories[l] = c.Category(l)
	}
	d := f.Detections()
	if d == nil {
		d = []classify.Detection{}
	}
	return d, nil
}

func loadBundleArg(args []string) (*policies.Bundle, error) {
	var fsys fs.FS = policies.Shipped()
	switch len(args) {
	case 0:
	case 1:
		fsys = os.DirFS(args[0])
	default:
		return nil, errors.New("one bundle directory at most")
	}
	return policies.LoadBundle(fsys)
}
