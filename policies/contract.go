// Package policies decides with OPA, on every request, which deployments
// may serve it and in what order, what must be redacted, and why. The Rego
// bundle is compiled strictly and its query prepared once; a reload
// re-prepares and swaps atomically, and a bundle that fails keeps the last
// good one in force. The input and output documents are the contract
// between the gateway and the compliance team's policies
// (docs/policy-contract.md).
package policies

// Input is what the policy sees about one request. The gateway computes
// every number (costs, latencies, budgets) in Go; the policy compares.
type Input struct {
	Request    Request     `json:"request"`
	Subject    Subject     `json:"subject"`
	Budget     Budget      `json:"budget"`
	Candidates []Candidate `json:"candidates"`
	Cache      Cache       `json:"cache"`
}

// Cache is the response cache's view of the request, so that a policy
// can forbid caching (obligations.cache: "off") for some data.
type Cache struct {
	// Enabled is true when the route or team opted into the cache and
	// the cache may either serve or store the answer: false only when the
	// client sent both no-cache and no-store. With no-cache alone nothing
	// is served (the response says bypass) but the answer is stored, so
	// a rule forbidding caching must still see it enabled.
	Enabled bool `json:"enabled"`
	// Mode is exact or semantic when Enabled.
	Mode string `json:"mode,omitempty"`
	// Available is true when a stored answer was found; it is served only
	// when the decision allows caching and names the same deployments,
	// in the same order, as the decision that made it.
	Available bool `json:"available"`
	// Match is how it was found: exact or semantic.
	Match string `json:"match,omitempty"`
	// Similarity is a semantic match's cosine similarity (rounded down
	// to two decimals, so that similar requests share a cached
	// decision), 1 for an exact one.
	Similarity float64 `json:"similarity,omitempty"`
}

// Request describes the call.
type Request struct {
	ID                   string `json:"id"`
	Operation            string `json:"operation"` // chat, text_completion, embeddings
	Model                string `json:"model"`     // the public model name asked for
	Stream               bool   `json:"stream"`
	EstimatedInputTokens int64  `json:"estimated_input_tokens"`
	MaxOutputTokens      int64  `json:"max_output_tokens"`
	// DataClass is declared by the client in x-switchyard-data-class
	// (public, internal, confidential); empty when not declared.
	DataClass string `json:"data_class"`
	// Entities counts the sensitive data found, by label (EMAIL, API_KEY…).
	Entities map[string]int `json:"entities"`
	// WeakEntities counts the classifier's weak signals, by label: a
	// 9-digit number with no context (US_SSN), a card-like number failing
	// its checksum (CREDIT_CARD). They count only for tenants with
	// detection: strict, where they add to Entities label by label.
	WeakEntities map[string]int `json:"weak_entities"`
	// Categories gives the category (pii or secret) of each label found,
	// in Entities or in WeakEntities, as the classifier knows it, custom
	// detectors included; the bundle's data may override it.
	Categories   map[string]string `json:"categories"`
	OriginRegion string            `json:"origin_region"`
	// LatencySLOMs is the latency budget from x-switchyard-max-latency-ms or
	// the tenant's default; 0 when none.
	LatencySLOMs int64 `json:"latency_slo_ms"`
}

// Subject is who the request acts for.
type Subject struct {
	Tenant string `json:"tenant"`
	Team   string `json:"team"`
	User   string `json:"user"`
	KeyID  string `json:"key_id"`
}

// Budget is what the quota layer knows; fields are absent until quotas
// exist.
type Budget struct {
	KeyRemainingUSD     *float64 `json:"key_remaining_usd,omitempty"`
	TeamRemainingUSD    *float64 `json:"team_remaining_usd,omitempty"`
	KeyRemainingTokens  *int64   `json:"key_remaining_tokens,omitempty"`
	TeamRemainingTokens *int64   `json:"team_remaining_tokens,omitempty"`
}

// Candidate is one deployment that could serve the request.
type Candidate struct {
	ID                string  `json:"id"` // backend/model
	Backend           string  `json:"backend"`
	Provider          string  `json:"provider"`
	Kind              string  `json:"kind"` // local, selfhosted, proprietary
	Region            string  `json:"region"`
	Jurisdiction      string  `json:"jurisdiction"`
	Healthy           bool    `json:"healthy"`
	P95LatencyMs      float64 `json:"p95_latency_ms"`
	TTFTMs            float64 `json:"ttft_ms"`
	EstCostUSD        float64 `json:"est_cost_usd"`
	ContextWindow     int64   `json:"context_window"`
	ZeroDataRetention bool    `json:"zero_data_retention"`
}

// Reason is a stable code and a human message.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Decision is the policy's answer.
type Decision struct {
	Allow bool `json:"allow"`
	// Deny holds the reasons a request is refused (MODEL_NOT_ALLOWED,
	// NO_ELIGIBLE_BACKEND, …).
	Deny []Reason `json:"deny"`
	// Routes are the allowed deployments, in the order to try them.
	Routes []string `json:"routes"`
	// Excluded maps each excluded deployment to why.
	Excluded map[string][]Reason `json:"excluded"`
	// Redact maps a deployment kind to the entity labels to mask before
	// the request leaves for a deployment of that kind.
	Redact      map[string][]string `json:"redact"`
	Obligations Obligations         `json:"obligations"`
	// Revision identifies the bundle that decided.
	Revision string `json:"revision"`
	// Reused is true when the decision was remembered from an identical
	// input rather than evaluated again.
	Reused bool `json:"-"`
}

// Obligations are conditions on an allowed request.
type Obligations struct {
	MaxOutputTokens int64  `json:"max_output_tokens,omitempty"`
	AuditLevel      string `json:"audit_level,omitempty"`
	// Cache "off" forbids answering the request from the response cache
	// and storing its answer.
	Cache string `json:"cache,omitempty"`
}
