package switchyard_test

import rego.v1

import data.switchyard

# Candidates: a local engine, a self-hosted pool in the EU, and two
# proprietary APIs, one with zero data retention.
local := {"id": "local/llama", "kind": "local", "jurisdiction": "EU", "region": "eu-west-1", "healthy": true, "est_cost_usd": 0, "p95_latency_ms": 900, "ttft_ms": 200}

vllm := {"id": "vllm/qwen", "kind": "selfhosted", "jurisdiction": "EU", "region": "eu-west-1", "healthy": true, "est_cost_usd": 0.0001, "p95_latency_ms": 400, "ttft_ms": 90}

openai := {"id": "openai/gpt-4o-mini", "kind": "proprietary", "jurisdiction": "US", "region": "us-east-1", "healthy": true, "est_cost_usd": 0.002, "p95_latency_ms": 300, "ttft_ms": 60, "zero_data_retention": false}

azure := {"id": "azure/gpt-4o-mini", "kind": "proprietary", "jurisdiction": "EU", "region": "westeurope", "healthy": true, "est_cost_usd": 0.003, "p95_latency_ms": 350, "ttft_ms": 70, "zero_data_retention": true}

all_candidates := [local, vllm, openai, azure]

req(overrides) := object.union({"model": "default", "entities": {}, "weak_entities": {}, "categories": {}, "data_class": "", "latency_slo_ms": 0}, overrides)

inp(r, subject) := {"request": req(r), "subject": subject, "budget": {}, "candidates": all_candidates}

plain := {"tenant": "t", "team": "t"}

test_public_request_keeps_config_order if {
	d := switchyard.decision with input as inp({}, plain)
	d.allow
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
	d.excluded == {}
	d.obligations.audit_level == "standard"
}

test_pii_stays_local if {
	d := switchyard.decision with input as inp({"entities": {"CREDIT_CARD": 1}}, plain)
	d.allow
	d.routes == ["local/llama", "vllm/qwen"]
	d.excluded["openai/gpt-4o-mini"][0].code == "LOCAL_ONLY"
	d.excluded["azure/gpt-4o-mini"][0].code == "LOCAL_ONLY"
	d.obligations.audit_level == "full"
}

test_secrets_stay_local_even_where_pii_is_redacted if {
	d := switchyard.decision with input as inp({"entities": {"API_KEY": 1}}, {"tenant": "acme", "team": "t"})
	d.routes == ["local/llama", "vllm/qwen"]
}

test_confidential_stays_local if {
	d := switchyard.decision with input as inp({"data_class": "confidential"}, plain)
	d.routes == ["local/llama", "vllm/qwen"]
}

test_zero_counts_are_not_entities if {
	d := switchyard.decision with input as inp({"entities": {"EMAIL": 0}}, plain)
	count(d.routes) == 4
}

test_redact_mode_sends_pii_out_masked if {
	d := switchyard.decision with input as inp({"entities": {"EMAIL": 2, "API_KEY": 0, "IP_ADDRESS": 1}}, {"tenant": "acme", "team": "t"})
	count(d.routes) == 4
	d.redact.proprietary == ["EMAIL", "IP_ADDRESS"]
}

test_no_redaction_by_default if {
	d := switchyard.decision with input as inp({}, plain)
	d.redact.proprietary == []
}

test_eu_pinned_tenant_never_leaves_the_eu if {
	d := switchyard.decision with input as inp({}, {"tenant": "eu-bank", "team": "t"})
	d.routes == ["local/llama", "vllm/qwen", "azure/gpt-4o-mini"]
	d.excluded["openai/gpt-4o-mini"] == [{"code": "DATA_RESIDENCY", "message": "tenant is pinned to EU"}]
}

test_internal_data_needs_zero_retention if {
	d := switchyard.decision with input as inp({"data_class": "internal"}, plain)
	d.routes == ["local/llama", "vllm/qwen", "azure/gpt-4o-mini"]
	d.excluded["openai/gpt-4o-mini"][0].code == "DATA_RETENTION"
}

test_cost_cap_excludes_expensive_backends if {
	d := switchyard.decision with input as inp({}, {"tenant": "t", "team": "finance"})
		with data.switchyard.config.teams.finance.max_request_usd as 0.0015
	d.excluded["openai/gpt-4o-mini"] == [{"code": "COST_CAP", "message": "estimated cost above the team's per-request cap"}]
	d.routes == ["local/llama", "vllm/qwen"]
}

test_cost_first_orders_by_cost if {
	d := switchyard.decision with input as inp({}, {"tenant": "t", "team": "finance"})
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
}

test_latency_first_orders_by_p95 if {
	d := switchyard.decision with input as inp({}, {"tenant": "t", "team": "research"})
	d.routes == ["openai/gpt-4o-mini", "azure/gpt-4o-mini", "vllm/qwen", "local/llama"]
}

test_low_budget_prefers_local if {
	i := object.union(inp({}, {"tenant": "t", "team": "finance"}), {"budget": {"team_remaining_usd": 3}})
	d := switchyard.decision with input as i with data.switchyard.config.teams.finance.preference as "latency"
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
}

test_over_budget_excludes_what_the_budget_cannot_pay if {
	i := object.union(inp({}, plain), {"budget": {"key_remaining_usd": 0.0025, "team_remaining_usd": 1}})
	d := switchyard.decision with input as i
	d.allow
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini"]
	d.excluded["azure/gpt-4o-mini"] == [{"code": "OVER_BUDGET", "message": "estimated cost above the remaining budget"}]
}

test_spent_budget_leaves_only_free_backends if {
	i := object.union(inp({}, plain), {"budget": {"team_remaining_usd": 0}})
	d := switchyard.decision with input as i
	d.routes == ["local/llama"]
}

test_no_tokens_left_denies if {
	i := object.union(inp({}, plain), {"budget": {"team_remaining_tokens": 0, "key_remaining_tokens": 500}})
	d := switchyard.decision with input as i
	not d.allow
	d.deny == [{"code": "OVER_BUDGET", "message": "no tokens left in the key's or the team's budget"}]
}

test_tokens_left_allow if {
	i := object.union(inp({}, plain), {"budget": {"team_remaining_tokens": 10, "key_remaining_tokens": 500}})
	d := switchyard.decision with input as i
	d.allow
}

test_local_first_preference if {
	d := switchyard.decision with input as inp({}, {"tenant": "t", "team": "ops"}) with data.switchyard.config.teams.ops as {"preference": "local"}
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
}

test_latency_slo_excludes_slow_backends if {
	d := switchyard.decision with input as inp({"latency_slo_ms": 500}, plain)
	d.routes == ["vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
	d.excluded["local/llama"][0].code == "LATENCY_SLO"
}

test_latency_slo_counts_time_to_first_token if {
	slow_start := object.union(vllm, {"p95_latency_ms": 100, "ttft_ms": 800})
	i := object.union(inp({"latency_slo_ms": 500}, plain), {"candidates": [slow_start]})
	d := switchyard.decision with input as i
	d.excluded["vllm/qwen"][0].code == "LATENCY_SLO"
}

test_model_not_allowed_is_denied if {
	d := switchyard.decision with input as inp({"model": "gpt-4o"}, {"tenant": "t", "team": "interns"})
	not d.allow
	d.deny == [{"code": "MODEL_NOT_ALLOWED", "message": "team may not use model gpt-4o"}]
}

test_allowed_model_with_output_cap if {
	d := switchyard.decision with input as inp({"model": "llama3.2"}, {"tenant": "t", "team": "interns"})
	d.allow
	d.obligations.max_output_tokens == 512
}

test_nothing_eligible_is_denied if {
	d := switchyard.decision with input as inp({"latency_slo_ms": 10}, plain)
	not d.allow
	d.deny == [{"code": "NO_ELIGIBLE_BACKEND", "message": "every deployment was excluded"}]
	count(d.excluded) == 4
}

test_several_reasons_for_one_backend if {
	d := switchyard.decision with input as inp({"entities": {"EMAIL": 1}, "latency_slo_ms": 200}, {"tenant": "eu-bank", "team": "t"})
	codes := {r.code | some r in d.excluded["openai/gpt-4o-mini"]}
	codes == {"LOCAL_ONLY", "DATA_RESIDENCY", "LATENCY_SLO"}
}

test_custom_secret_from_the_classifier_stays_local if {
	d := switchyard.decision with input as inp({"entities": {"PROJECT_NAME": 1}, "categories": {"PROJECT_NAME": "secret"}}, plain)
	d.routes == ["local/llama", "vllm/qwen"]
}

test_custom_pii_is_redacted_for_redacting_tenants if {
	d := switchyard.decision with input as inp({"entities": {"EMPLOYEE_ID": 1}, "categories": {"EMPLOYEE_ID": "pii"}}, {"tenant": "acme", "team": "t"})
	d.redact.proprietary == ["EMPLOYEE_ID"]
}

test_data_overrides_the_classifier_category if {
	d := switchyard.decision with input as inp({"entities": {"EMAIL": 1}, "categories": {"EMAIL": "secret"}}, {"tenant": "acme", "team": "t"})
	count(d.routes) == 4
	d.redact.proprietary == ["EMAIL"]
}

test_unknown_data_class_is_treated_as_confidential if {
	d := switchyard.decision with input as inp({"data_class": "confidential"}, plain)
	d.routes == ["local/llama", "vllm/qwen"]
}

test_public_data_class_is_public if {
	d := switchyard.decision with input as inp({"data_class": "public"}, plain)
	count(d.routes) == 4
}

test_tenant_default_latency_slo if {
	d := switchyard.decision with input as inp({}, {"tenant": "realtime", "team": "t"})
	d.excluded["local/llama"][0].code == "LATENCY_SLO"
}

test_request_slo_overrides_the_tenant_default if {
	d := switchyard.decision with input as inp({"latency_slo_ms": 1000}, {"tenant": "realtime", "team": "t"})
	not d.excluded["local/llama"]
}

# --- detection: weak signals count for strict tenants -------------------

clinic := {"tenant": "clinic", "team": "t"}

test_strict_tenant_keeps_a_weak_pii_signal_local if {
	d := switchyard.decision with input as inp({"weak_entities": {"US_SSN": 1}, "categories": {"US_SSN": "pii"}}, clinic)
	d.allow
	d.routes == ["local/llama", "vllm/qwen"]
	d.excluded["openai/gpt-4o-mini"] == [{"code": "LOCAL_ONLY", "message": "pii data may not leave local or self-hosted backends"}]
	d.obligations.audit_level == "full"
}

test_standard_tenant_ignores_weak_signals if {
	d := switchyard.decision with input as inp({"weak_entities": {"US_SSN": 1, "CREDIT_CARD": 2}, "categories": {"US_SSN": "pii", "CREDIT_CARD": "pii"}}, plain)
	d.routes == ["local/llama", "vllm/qwen", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
	d.excluded == {}
	d.obligations.audit_level == "standard"
}

test_strict_redacting_tenant_redacts_weak_labels if {
	r := {"entities": {"EMAIL": 1}, "weak_entities": {"CREDIT_CARD": 1, "EMAIL": 1}, "categories": {"EMAIL": "pii", "CREDIT_CARD": "pii"}}
	d := switchyard.decision with input as inp(r, {"tenant": "acme", "team": "t"})
		with data.switchyard.config.tenants.acme as {"pii_mode": "redact", "detection": "strict"}
	count(d.routes) == 4
	d.redact.proprietary == ["CREDIT_CARD", "EMAIL"]
}

test_standard_redacting_tenant_does_not_redact_weak_labels if {
	r := {"entities": {"EMAIL": 1}, "weak_entities": {"CREDIT_CARD": 1}, "categories": {"EMAIL": "pii", "CREDIT_CARD": "pii"}}
	d := switchyard.decision with input as inp(r, {"tenant": "acme", "team": "t"})
	d.redact.proprietary == ["EMAIL"]
}

test_strict_counts_add_label_by_label if {
	e := switchyard.entities with input as inp({"entities": {"EMAIL": 1, "IBAN": 0}, "weak_entities": {"EMAIL": 2, "US_SSN": 1}}, clinic)
	e == {"EMAIL": 3, "IBAN": 0, "US_SSN": 1}
}

test_zero_weak_counts_are_not_entities if {
	d := switchyard.decision with input as inp({"weak_entities": {"US_SSN": 0}}, clinic)
	count(d.routes) == 4
}

test_unknown_detection_is_treated_as_strict if {
	d := switchyard.decision with input as inp({"weak_entities": {"CREDIT_CARD": 1}}, clinic)
		with data.switchyard.config.tenants.clinic as {"detection": "Strict"}
	d.routes == ["local/llama", "vllm/qwen"]
}

test_absent_or_null_weak_entities_are_none if {
	absent := json.remove(inp({"entities": {"EMAIL": 1}}, clinic), ["request/weak_entities"])
	switchyard.entities == {"EMAIL": 1} with input as absent
	nulled := inp({"entities": {"EMAIL": 1}, "weak_entities": null}, clinic)
	switchyard.entities == {"EMAIL": 1} with input as nulled
	d := switchyard.decision with input as nulled
	d.routes == ["local/llama", "vllm/qwen"]
}

# A pii_mode the bundle does not know fails safe: personal data stays local.
test_misspelt_pii_mode_keeps_pii_local if {
	d := switchyard.decision with input as inp({"entities": {"IBAN": 1}}, plain)
		with data.switchyard.config.tenants.t as {"pii_mode": "local-only"}
	d.routes == ["local/llama", "vllm/qwen"]
	d.excluded["openai/gpt-4o-mini"][0].code == "LOCAL_ONLY"
	count(d.redact.proprietary) == 0
}

# The response cache: allowed unless the data class or the tenant forbids it.
test_cache_allowed_by_default if {
	d := switchyard.decision with input as inp({}, plain)
	not d.obligations.cache
}

test_cache_off_for_a_forbidden_data_class if {
	d := switchyard.decision with input as inp({"data_class": "confidential"}, plain)
	d.obligations.cache == "off"
}

test_cache_off_for_an_unknown_data_class if {
	d := switchyard.decision with input as inp({"data_class": "restricted"}, plain)
	d.obligations.cache == "off"
}

test_cache_off_for_a_tenant if {
	d := switchyard.decision with input as inp({}, {"tenant": "nocache", "team": "t"})
		with data.switchyard.config.tenants as {"nocache": {"cache": "off"}}
	d.obligations.cache == "off"
}
