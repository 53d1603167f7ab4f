# METADATA
# title: Switchyard routing policy
# description: |
#   Decides, for every request, which deployments may serve it and in what
#   order. Cost and latency arithmetic happens in Go; these rules compare
#   and decide. Compliance teams edit data.json, not these rules.
package switchyard

import rego.v1

cfg := data.switchyard.config

# The subject's tenant and team settings, with defaults.
tenant := object.get(cfg.tenants, input.subject.tenant, {})

team := object.union(cfg.team_defaults, object.get(cfg.teams, input.subject.team, {}))

# A label's category: the bundle's data decides, else the classifier's
# (which knows the custom detectors).
category(label) := c if {
	c := cfg.categories[label]
} else := input.request.categories[label]

# Detection: "standard" (the default) acts on the classifier's strong
# detections only; "strict" also counts its weak signals (a 9-digit number
# with no context, a card-like number failing its checksum) as if they were
# strong. A value the bundle does not know is treated as strict: a typo
# must not let data out.
strict if object.get(tenant, "detection", "standard") != "standard"

# A count map of the request (entities, weak_entities); absent or null is
# none.
request_counts(field) := c if {
	c := input.request[field]
	is_object(c)
} else := {}

# The entity counts every rule acts on, by label: the strong detections,
# plus the weak signals for strict tenants, summed label by label.
entities := request_counts("entities") if not strict

else := {label: n |
	strong := request_counts("entities")
	weak := request_counts("weak_entities")
	some label in object.keys(strong) | object.keys(weak)
	n := object.get(strong, label, 0) + object.get(weak, label, 0)
}

categories := {c | some label, n in entities; n > 0; c := category(label)}

# A request is sensitive when it carries secrets, or personal data in a
# tenant that keeps personal data local, or is declared confidential. Only
# the exact word "redact" lets personal data out (masked): a pii_mode the
# bundle does not know ("local-only", "Redact") keeps it local, so a typo
# fails safe.
sensitive_reason := "secret" if "secret" in categories

else := "pii" if {
	"pii" in categories
	object.get(tenant, "pii_mode", "local_only") != "redact"
}

else := "confidential" if input.request.data_class == "confidential"

# A class the bundle does not know is treated as the strictest one: a
# typo must not make data public.
else := "confidential" if not input.request.data_class in {"", "public", "internal", "confidential"}

# --- exclusions: deployment -> reasons ---------------------------------

exclusion contains {"id": c.id, "code": "LOCAL_ONLY", "message": sprintf("%s data may not leave local or self-hosted backends", [sensitive_reason])} if {
	sensitive_reason
	some c in input.candidates
	c.kind == "proprietary"
}

exclusion contains {"id": c.id, "code": "DATA_RESIDENCY", "message": sprintf("tenant is pinned to %s", [pinned])} if {
	pinned := tenant.jurisdiction
	some c in input.candidates
	c.jurisdiction != pinned
}

exclusion contains {"id": c.id, "code": "DATA_RETENTION", "message": "internal data needs a zero-data-retention backend"} if {
	input.request.data_class == "internal"
	some c in input.candidates
	c.kind == "proprietary"
	not c.zero_data_retention
}

exclusion contains {"id": c.id, "code": "COST_CAP", "message": "estimated cost above the team's per-request cap"} if {
	cap := team.max_request_usd
	cap > 0
	some c in input.candidates
	c.est_cost_usd > cap
}

# The request's latency SLO (x-switchyard-max-latency-ms), else the
# tenant's default from data.json.
latency_slo := input.request.latency_slo_ms if input.request.latency_slo_ms > 0

else := object.get(tenant, "latency_slo_ms", 0)

exclusion contains {"id": c.id, "code": "LATENCY_SLO", "message": "observed latency above the request's SLO"} if {
	slo := latency_slo
	slo > 0
	some c in input.candidates
	max([c.p95_latency_ms, c.ttft_ms]) > slo
}

# The least USD budget the quota layer reports for the key or the team.
remaining_usd := min({r | some k in ["key_remaining_usd", "team_remaining_usd"]; r := input.budget[k]})

exclusion contains {"id": c.id, "code": "OVER_BUDGET", "message": "estimated cost above the remaining budget"} if {
	remaining := remaining_usd
	some c in input.candidates
	c.est_cost_usd > remaining
}

# A complete object, evaluated once per decision and then indexed.
excluded := {id: reasons |
	some id in {e.id | some e in exclusion}
	reasons := [{"code": e.code, "message": e.message} | some e in exclusion; e.id == id]
}

# --- request-level denials --------------------------------------------

deny contains {"code": "MODEL_NOT_ALLOWED", "message": sprintf("team may not use model %s", [input.request.model])} if {
	allowed := team.allowed_models
	count(allowed) > 0
	not input.request.model in allowed
}

deny contains {"code": "OVER_BUDGET", "message": "no tokens left in the key's or the team's budget"} if {
	some k in ["key_remaining_tokens", "team_remaining_tokens"]
	input.budget[k] <= 0
}

deny contains {"code": "NO_ELIGIBLE_BACKEND", "message": "every deployment was excluded"} if {
	count(input.candidates) > 0
	count(routes) == 0
}

default allow := false

allow if count(deny) == 0

# --- ordering -----------------------------------------------------------

# The team's preference; a team low on budget prefers local backends.
preference := "local" if {
	remaining := input.budget.team_remaining_usd
	remaining < team.low_budget_usd
} else := team.preference

kind_rank := {"local": 0, "selfhosted": 1, "proprietary": 2}

sort_key(c, i) := [c.est_cost_usd, c.p95_latency_ms, i] if preference == "cost"

else := [c.p95_latency_ms, c.est_cost_usd, i] if preference == "latency"

else := [kind_rank[c.kind], c.est_cost_usd, i] if preference == "local"

else := [i]

routes := [x[count(x) - 1] |
	ranked := sort([array.concat(sort_key(c, i), [c.id]) |
		some i, c in input.candidates
		not excluded[c.id]
	])
	some x in ranked
]

# --- obligations --------------------------------------------------------

# Entity labels to mask before the request leaves for a proprietary
# backend, for tenants that send personal data out redacted.
redact contains label if {
	object.get(tenant, "pii_mode", "local_only") == "redact"
	some label, n in entities
	n > 0
	category(label) == "pii"
}

obligations["max_output_tokens"] := team.max_output_tokens if team.max_output_tokens > 0

obligations["audit_level"] := "full" if sensitive_reason

else := "standard"

# No answer from the response cache, and none stored, for a tenant with
# "cache": "off" or a request whose declared data class is listed in
# cache_forbidden_data_classes.
cache_forbidden if object.get(tenant, "cache", "on") == "off"

cache_forbidden if input.request.data_class in object.get(cfg, "cache_forbidden_data_classes", [])

# A class the bundle does not know is treated as the strictest one here too.
cache_forbidden if not input.request.data_class in {"", "public", "internal", "confidential"}

obligations["cache"] := "off" if cache_forbidden

# --- the decision -------------------------------------------------------

decision := {
	"allow": allow,
	"deny": sort([d | some d in deny]),
	"routes": routes,
	"excluded": excluded,
	"redact": {"proprietary": sort([l | some l in redact])},
	"obligations": obligations,
}
