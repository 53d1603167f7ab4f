package main

import (
	"cmp"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
)

// unmatchedPin is a tenant the policy bundle pins to a jurisdiction that
// no backend declares: every request of that tenant is refused.
type unmatchedPin struct{ tenant, jurisdiction string }

func (p unmatchedPin) String() string {
	return fmt.Sprintf("tenant %q is pinned to jurisdiction %q but no backend has jurisdiction %q; its requests will be refused (NO_ELIGIBLE_BACKEND)",
		p.tenant, p.jurisdiction, p.jurisdiction)
}

// configuredBundle reads the policy bundle cfg serves: the directory
// policy.bundle names, else the one shipped in the binary.
func configuredBundle(cfg *config.Config) (*policies.Bundle, error) {
	var fsys fs.FS = policies.Shipped()
	if dir := cfg.Policy.Bundle; dir != "" {
		fsys = os.DirFS(dir)
	}
	b, err := policies.LoadBundle(fsys)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", cmp.Or(cfg.Policy.Bundle, "(shipped)"), err)
	}
	return b, nil
}

// unmatchedPins compares the bundle's pinned jurisdictions with the
// backends' (exactly, as the policy does), sorted by tenant.
func unmatchedPins(pins map[string]string, backends []config.Backend) []unmatchedPin {
	have := map[string]bool{}
	for _, b := range backends {
		have[b.Jurisdiction] = true
	}
	var out []unmatchedPin
	for tenant, j := range pins {
		if !have[j] {
			out = append(out, unmatchedPin{tenant, j})
		}
	}
	slices.SortFunc(out, func(a, b unmatchedPin) int { return cmp.Compare(a.tenant, b.tenant) })
	return out
}

// jurisdictionWarnings lists the tenants of cfg's policy bundle that no
// backend of cfg can serve because of their pinned jurisdiction.
func jurisdictionWarnings(cfg *config.Config) ([]unmatchedPin, error) {
	b, err := configuredBundle(cfg)
	if err != nil {
		return nil, err
	}
	return unmatchedPins(b.PinnedJurisdictions(), cfg.Backends), nil
}

// logJurisdictionWarnings logs, at gateway start, what `config check`
// prints as warnings.
func logJurisdictionWarnings(cfg *config.Config, log *slog.Logger) {
	pins, err := jurisdictionWarnings(cfg)
	if err != nil {
		log.Warn("could not check the tenants' pinned jurisdictions", "error", err)
		return
	}
	for _, p := range pins {
		log.Warn(p.String(), "tenant", p.tenant, "jurisdiction", p.jurisdiction)
	}
}
