package policies

import "encoding/json"

// PinnedJurisdictions returns the jurisdiction each tenant is pinned to
// by the bundle's data (data.switchyard.config.tenants[TENANT].jurisdiction),
// which the shipped rules enforce with DATA_RESIDENCY: such a tenant is
// never sent to a deployment of another jurisdiction. Tenants without a
// pin are left out. A pin that is not a string, which no backend can
// match, is given as its JSON text (`null`, `1`).
func (b *Bundle) PinnedJurisdictions() map[string]string {
	pins := map[string]string{}
	tenants, _ := dig(b.Data, "switchyard", "config", "tenants").(map[string]any)
	for name, tenant := range tenants {
		t, _ := tenant.(map[string]any)
		v, ok := t["jurisdiction"]
		if !ok {
			continue
		}
		if s, isString := v.(string); isString {
			pins[name] = s
			continue
		}
		raw, _ := json.Marshal(v)
		pins[name] = string(raw)
	}
	return pins
}

// dig follows keys through nested objects; nil when one is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
