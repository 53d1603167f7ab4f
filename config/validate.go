package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults, applied by Load to every field left at its zero value.
const (
	DefaultListen          = ":8080"
	DefaultBodyLimit       = 8 << 20
	DefaultShutdownTimeout = 30 * time.Second
	DefaultStreamKeepalive = 100 * time.Millisecond
	DefaultReadTimeout     = 60 * time.Second
	DefaultWriteTimeout    = 60 * time.Second
	DefaultIdleTimeout     = 120 * time.Second
	DefaultConnect         = 5 * time.Second
	DefaultFirstByte       = 120 * time.Second
	DefaultBetweenChunks   = 30 * time.Second
	DefaultMaxIdleConns    = 256

	DefaultJSONMaxDepth      = 64
	DefaultJSONMaxArrayItems = 100_000
	DefaultSpoolLimit        = 256 << 20
)

func (c *Config) applyDefaults() {
	s := &c.Server
	orDefault(&s.Listen, DefaultListen)
	orDefault(&s.BodyLimit, DefaultBodyLimit)
	orDefault(&s.ShutdownTimeout, DefaultShutdownTimeout)
	orDefault(&s.StreamKeepalive, DefaultStreamKeepalive)
	orDefault(&s.ReadTimeout, DefaultReadTimeout)
	orDefault(&s.WriteTimeout, DefaultWriteTimeout)
	orDefault(&s.IdleTimeout, DefaultIdleTimeout)
	orDefault(&s.JSON.MaxDepth, DefaultJSONMaxDepth)
	orDefault(&s.JSON.MaxStringBytes, s.BodyLimit)
	orDefault(&s.JSON.MaxArrayItems, DefaultJSONMaxArrayItems)
	orDefault(&c.DataDir, "data")
	orDefault(&c.Ledger.SpoolLimit, DefaultSpoolLimit)
	orDefault(&c.Cache.Store, "memory")
	orDefault(&c.Cache.TTL, time.Hour)
	orDefault(&c.Cache.MaxEntries, 10_000)
	orDefault(&c.Cache.MaxEntryBytes, 1<<20)
	orDefault(&c.Cache.MaxBytes, 256<<20)
	orDefault(&c.Cache.Semantic.Threshold, 0.95)
	orDefault(&c.Cache.Semantic.Timeout, 2*time.Second)
	orDefault(&c.Responses.Store, "memory")
	orDefault(&c.Responses.TTL, 30*24*time.Hour)
	orDefault(&c.Responses.MaxEntries, 10_000)
	orDefault(&c.Responses.MaxBytes, 256<<20)
	orDefault(&c.Log.Level, "info")
	orDefault(&c.Log.Format, "json")
	orDefault(&c.Policy.OnError, "closed")
	orDefault(&c.Policy.Audit, "stdout")
	orDefault(&c.Telemetry.Traces.Exporter, "none")
	if c.Telemetry.Traces.SamplingRatio == nil {
		one := 1.0
		c.Telemetry.Traces.SamplingRatio = &one
	}
	orDefault(&c.Telemetry.Metrics.Path, "/metrics")
	orDefault(&c.Ledger.Store, "memory")
	orDefault(&c.Ledger.Retention, 90*24*time.Hour)
	orDefault(&c.Ledger.Shards, 1)
	if len(c.Ledger.ReferenceModels) == 0 {
		c.Ledger.ReferenceModels = map[string]string{"default": "gpt-4o-mini"}
	}
	q := &c.Quotas
	orDefault(&q.Store, "memory")
	orDefault(&q.ReservationTTL, 10*time.Minute)
	orDefault(&q.DefaultMaxOutputTokens, 1024)
	orDefault(&q.OnStoreError, "fail_open")
	orDefault(&q.Redis.Timeout, 100*time.Millisecond)
	orDefault(&q.Redis.WaitTimeout, q.Redis.Timeout/2)
	for i := range q.Limits {
		orDefault(&q.Limits[i].OnStoreError, q.OnStoreError)
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		// No API key holds whitespace: a key read from a file with its
		// newline, or a variable set to spaces, is the key or none.
		b.APIKey = Secret(strings.TrimSpace(string(b.APIKey)))
		if b.Kind == KindLocal {
			orDefault(&b.Provider, ProviderLlamaCpp)
		}
		orDefault(&b.Provider, ProviderOpenAI)
		if url, ok := Presets[b.Provider]; ok {
			orDefault(&b.BaseURL, url)
		}
		if b.Kind == KindProprietary {
			orDefault(&b.Retry.Attempts, 3)
		}
		orDefault(&b.Retry.Attempts, 1)
		orDefault(&b.Retry.Base, 250*time.Millisecond)
		orDefault(&b.Retry.Max, 4*time.Second)
		orDefault(&b.Timeouts.Connect, DefaultConnect)
		orDefault(&b.Timeouts.FirstByte, DefaultFirstByte)
		orDefault(&b.Timeouts.BetweenChunks, DefaultBetweenChunks)
		orDefault(&b.MaxIdleConns, DefaultMaxIdleConns)
	}
	for i := range c.Models {
		m := &c.Models[i]
		for j := range m.Deployments {
			orDefault(&m.Deployments[j].Model, m.Name)
		}
	}
}

// orDefault sets *v to def when it holds its zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports every problem in c, each as "field.path: message",
// joined with errors.Join. It expects defaults to have been applied.
func (c *Config) Validate() error {
	v := &validator{}
	s := c.Server
	if s.BodyLimit < 0 {
		v.add("server.body_limit", "must be > 0")
	}
	v.nonNegative("server.shutdown_timeout", s.ShutdownTimeout)
	v.nonNegative("server.stream_keepalive", s.StreamKeepalive)
	v.nonNegative("server.read_timeout", s.ReadTimeout)
	v.nonNegative("server.write_timeout", s.WriteTimeout)
	v.nonNegative("server.idle_timeout", s.IdleTimeout)
	if s.MaxConnections < 0 {
		v.add("server.max_connections", "must be >= 0 (0 for no bound); got %d", s.MaxConnections)
	}
	if s.MaxInFlight < -1 {
		v.add("server.max_in_flight", "must be >= 0 (0 for 256 per CPU), or -1 for no bound; got %d", s.MaxInFlight)
	}
	if s.MaxProcessing < -1 {
		v.add("server.max_processing", "must be >= 0 (0 for 64 per CPU), or -1 for no bound; got %d", s.MaxProcessing)
	}
	if s.JSON.MaxDepth < 0 || s.JSON.MaxDepth > 10_000 {
		v.add("server.json.max_depth", "must be between 1 and 10000; got %d", s.JSON.MaxDepth)
	}
	if s.JSON.MaxStringBytes < 0 {
		v.add("server.json.max_string_bytes", "must be > 0")
	}
	if s.JSON.MaxArrayItems < 0 {
		v.add("server.json.max_array_items", "must be > 0")
	}
	if c.Ledger.SpoolLimit < 0 {
		v.add("ledger.spool_limit", "must be > 0")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.add("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		v.add("log.format", "must be json or text; got %q", c.Log.Format)
	}

	backends := map[string]*Backend{}
	for i := range c.Backends {
		b := &c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			v.add(p+".name", "is required")
		case backends[b.Name] != nil:
			v.add(p+".name", "duplicate backend %q", b.Name)
		default:
			backends[b.Name] = b
		}
		if !slices.Contains([]string{KindLocal, KindSelfHosted, KindProprietary}, b.Kind) {
			v.add(p+".kind", "must be one of local, selfhosted, proprietary; got %q", b.Kind)
		}
		switch {
		case b.Provider == ProviderLlamaCpp && b.Kind != KindLocal:
			v.add(p+".provider", "llamacpp is the embedded engine; its backends are kind local")
		case b.Kind == KindLocal && b.Provider != ProviderLlamaCpp:
			v.add(p+".provider", "a local backend is served by the embedded engine (provider llamacpp); use kind selfhosted for a local server you call over HTTP")
		case !knownProvider(b.Provider):
			v.add(p+".provider", "unknown provider %q (known: %s)", b.Provider, strings.Join(providerNames(), ", "))
		}
		if b.Provider == ProviderAzure && b.APIVersion == "" {
			v.add(p+".api_version", "is required for azure (for example 2024-10-21)")
		}
		if b.Provider == ProviderBedrock && b.Region == "" {
			v.add(p+".region", "is required for bedrock (the AWS region, for example us-east-1)")
		}
		if (b.AWS.AccessKeyID == "") != (b.AWS.SecretAccessKey == "") {
			v.add(p+".aws", "access_key_id and secret_access_key go together")
		}
		if b.Retry.Attempts < 0 {
			v.add(p+".retry.attempts", "must be >= 0")
		}
		if b.Provider == ProviderLlamaCpp {
			if b.BaseURL != "" {
				v.add(p+".base_url", "must be empty for the embedded engine")
			}
			for j, m := range b.Models {
				if !slices.ContainsFunc(c.LocalEngine.Models, func(lm LocalModel) bool { return lm.Name == m }) {
					v.add(fmt.Sprintf("%s.models[%d]", p, j), "no local_engine model named %q", m)
				}
			}
		} else if b.BaseURL == "" {
			if b.Provider == ProviderOpenAI || b.Provider == ProviderAzure {
				v.add(p+".base_url", "is required")
			}
		} else if u, err := url.Parse(b.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".base_url", "must be an absolute http or https URL; got %q", b.BaseURL)
		}
		for j, m := range b.Models {
			if m == "" {
				v.add(fmt.Sprintf("%s.models[%d]", p, j), "must not be empty")
			}
		}
		v.price(p+".price", b.Price)
		v.nonNegative(p+".timeouts.connect", b.Timeouts.Connect)
		v.nonNegative(p+".timeouts.first_byte", b.Timeouts.FirstByte)
		v.nonNegative(p+".timeouts.between_chunks", b.Timeouts.BetweenChunks)
		if b.MaxIdleConns < 0 {
			v.add(p+".max_idle_conns", "must be >= 0")
		}
	}

	names := map[string]string{} // public name or alias -> path that defined it
	claim := func(name, path string) {
		if name == "" {
			v.add(path, "must not be empty")
			return
		}
		if prev, ok := names[name]; ok {
			v.add(path, "model name %q already used at %s", name, prev)
			return
		}
		names[name] = path
	}
	for i, m := range c.Models {
		p := fmt.Sprintf("models[%d]", i)
		claim(m.Name, p+".name")
		for j, a := range m.Aliases {
			claim(a, fmt.Sprintf("%s.aliases[%d]", p, j))
		}
		if len(m.Deployments) == 0 {
			v.add(p+".deployments", "at least one deployment is required")
		}
		for j, d := range m.Deployments {
			dp := fmt.Sprintf("%s.deployments[%d]", p, j)
			b := backends[d.Backend]
			switch {
			case d.Backend == "":
				v.add(dp+".backend", "is required")
			case b == nil:
				v.add(dp+".backend", "unknown backend %q", d.Backend)
			case len(b.Models) > 0 && !slices.Contains(b.Models, d.Model):
				v.add(dp+".model", "backend %q does not serve %q (its models: %s)", b.Name, d.Model, strings.Join(b.Models, ", "))
			case b.Provider == ProviderLlamaCpp && !slices.ContainsFunc(c.LocalEngine.Models, func(lm LocalModel) bool { return lm.Name == d.Model }):
				v.add(dp+".model", "no local_engine model named %q", d.Model)
			}
			if d.Price != nil {
				v.price(dp+".price", *d.Price)
			}
		}
	}

	hashes := map[string]bool{}
	ids := map[string]bool{}
	for i, k := range c.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.ID == "":
			v.add(p+".id", "is required")
		case ids[k.ID]:
			v.add(p+".id", "duplicate key id %q", k.ID)
		}
		ids[k.ID] = true
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 || strings.ToLower(k.SHA256) != k.SHA256 {
			v.add(p+".sha256", "must be 64 lowercase hex digits (run: switchyard key hash)")
		} else if hashes[k.SHA256] {
			v.add(p+".sha256", "duplicate key hash")
		}
		hashes[k.SHA256] = true
		if k.Tenant == "" {
			v.add(p+".tenant", "is required")
		}
		for j, m := range k.Models {
			if _, ok := names[m]; !ok {
				v.add(fmt.Sprintf("%s.models[%d]", p, j), "unknown model %q", m)
			}
		}
	}
	for i, k := range c.Admin.Keys {
		p := fmt.Sprintf("admin.keys[%d]", i)
		if k.ID == "" {
			v.add(p+".id", "is required")
		}
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 || strings.ToLower(k.SHA256) != k.SHA256 {
			v.add(p+".sha256", "must be 64 lowercase hex digits (run: switchyard key hash)")
		} else if hashes[k.SHA256] {
			v.add(p+".sha256", "the same key is a virtual key too; admin keys must be separate")
		}
	}
	local := map[string]bool{}
	for i, m := range c.LocalEngine.Models {
		p := fmt.Sprintf("local_engine.models[%d]", i)
		switch {
		case m.Name == "":
			v.add(p+".name", "is required")
		case local[m.Name]:
			v.add(p+".name", "duplicate local model %q", m.Name)
		}
		local[m.Name] = true
		if m.Path == "" {
			v.add(p+".path", "is required")
		}
		if m.Generate != "" && !slices.Contains(GenerateShapes, m.Generate) {
			v.add(p+".generate", "must be %s, or empty; got %q", strings.Join(GenerateShapes, " or "), m.Generate)
		}
		for _, f := range []struct {
			name string
			n    int
		}{{"context", m.Context}, {"slots", m.Slots}, {"queue", m.Queue}, {"batch", m.Batch}, {"threads", m.Threads}} {
			if f.n < 0 {
				v.add(p+"."+f.name, "must be >= 0")
			}
		}
		if m.GPULayers < -1 {
			v.add(p+".gpu_layers", "must be >= -1 (-1 offloads every layer)")
		}
	}
	c.validateQuotas(v)
	if !slices.Contains([]string{"none", "otlp-http", "otlp-grpc", "console"}, c.Telemetry.Traces.Exporter) {
		v.add("telemetry.traces.exporter", "must be none, otlp-http, otlp-grpc or console; got %q", c.Telemetry.Traces.Exporter)
	}
	if r := *c.Telemetry.Traces.SamplingRatio; r < 0 || r > 1 {
		v.add("telemetry.traces.sampling_ratio", "must be between 0 and 1")
	}
	if p := c.Telemetry.Metrics.Path; p != "off" && !strings.HasPrefix(p, "/") {
		v.add("telemetry.metrics.path", "must start with / (or be off); got %q", p)
	}
	v.sharedStore("ledger.store", c.Ledger.Store, c.Quotas.Redis)
	if c.Ledger.Shards < 1 || c.Ledger.Shards > 256 {
		v.add("ledger.shards", "must be between 1 and 256; got %d", c.Ledger.Shards)
	}
	v.sharedStore("responses.store", c.Responses.Store, c.Quotas.Redis)
	if c.Responses.TTL < 0 {
		v.add("responses.ttl", "must be positive")
	}
	if c.Responses.MaxEntries < 0 {
		v.add("responses.max_entries", "must be positive")
	}
	if c.Responses.MaxBytes < 0 {
		v.add("responses.max_bytes", "must be positive")
	}
	v.sharedStore("cache.store", c.Cache.Store, c.Quotas.Redis)
	if c.Cache.TTL < 0 {
		v.add("cache.ttl", "must be positive")
	}
	if c.Cache.MaxEntries < 0 {
		v.add("cache.max_entries", "must be positive")
	}
	if c.Cache.MaxEntryBytes < 0 {
		v.add("cache.max_entry_bytes", "must be positive")
	}
	if c.Cache.MaxBytes < 0 {
		v.add("cache.max_bytes", "must be positive")
	}
	if t := c.Cache.Semantic.Threshold; !(t > 0 && t <= 1) {
		v.add("cache.semantic.threshold", "must be in (0, 1]; got %v", t)
	}
	for team, mode := range c.Cache.Teams {
		if mode != "exact" && mode != "semantic" {
			v.add("cache.teams."+team, "must be exact or semantic; got %q", mode)
		}
	}
	for i, m := range c.Models {
		if m.Cache != "" && m.Cache != "exact" && m.Cache != "semantic" && m.Cache != "off" {
			v.add(fmt.Sprintf("models[%d].cache", i), "must be exact, semantic or off; got %q", m.Cache)
		}
	}
	if !slices.Contains([]string{"closed", "open"}, c.Policy.OnError) {
		v.add("policy.on_error", "must be closed or open; got %q", c.Policy.OnError)
	}
	if c.Backends != nil {
		for i, b := range c.Backends {
			if b.ContextWindow < 0 {
				v.add(fmt.Sprintf("backends[%d].context_window", i), "must be >= 0")
			}
			switch b.ResponsesAPI {
			case "", ResponsesTranslate:
			case ResponsesNative, ResponsesAuto:
				if b.Provider != ProviderOpenAI {
					v.add(fmt.Sprintf("backends[%d].responses_api", i), "%s needs provider openai; got %q", b.ResponsesAPI, b.Provider)
				}
			default:
				v.add(fmt.Sprintf("backends[%d].responses_api", i), "must be native, auto or translate; got %q", b.ResponsesAPI)
			}
		}
	}
	for i, d := range c.Classification.Custom {
		p := fmt.Sprintf("classification.custom[%d]", i)
		if d.Label == "" || strings.Trim(d.Label, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			v.add(p+".label", "must be non-empty and use only A-Z, 0-9 and _; got %q", d.Label)
		}
		if _, err := regexp.Compile(d.Pattern); err != nil || d.Pattern == "" {
			v.add(p+".pattern", "must be a valid regular expression (RE2 syntax): %v", err)
		}
		if !slices.Contains([]string{"", "pii", "secret"}, d.Category) {
			v.add(p+".category", "must be pii or secret; got %q", d.Category)
		}
	}
	return v.err()
}

type validator struct{ errs []error }

// sharedStore checks a store that is memory, or redis on quotas.redis's
// server.
func (v *validator) sharedStore(path, store string, r Redis) {
	switch store {
	case "memory":
	case "redis":
		if len(r.Addrs) == 0 {
			v.add(path, "redis needs quotas.redis.addrs")
		}
	default:
		v.add(path, "must be memory or redis; got %q", store)
	}
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) nonNegative(path string, d time.Duration) {
	if d < 0 {
		v.add(path, "must be >= 0")
	}
}

func (v *validator) price(path string, p Price) {
	for _, f := range []struct {
		name string
		val  float64
	}{{"input_per_mtok", p.InputPerMTok}, {"output_per_mtok", p.OutputPerMTok}, {"cached_input_per_mtok", orZero(p.CachedInputPerMTok)}, {"cache_write_per_mtok", orZero(p.CacheWritePerMTok)}} {
		if f.val < 0 {
			v.add(path+"."+f.name, "must be >= 0")
		}
	}
}

func knownProvider(p string) bool {
	return slices.Contains(providerNames(), p)
}

func providerNames() []string {
	names := []string{ProviderOpenAI, ProviderLlamaCpp, ProviderAnthropic, ProviderGemini, ProviderAzure, ProviderBedrock}
	for k := range Presets {
		names = append(names, k)
	}
	slices.Sort(names[6:])
	return names
}

// orZero is an optional price as written; unset is not an error of its
// own even when the input price it defaults to is.
func orZero(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (c *Config) validateQuotas(v *validator) {
	q := c.Quotas
	modes := []string{"fail_open", "fail_closed", "local_only"}
	switch q.Store {
	case "memory":
	case "redis":
		if len(q.Redis.Addrs) == 0 {
			v.add("quotas.redis.addrs", "is required for store redis")
		}
	default:
		v.add("quotas.store", "must be memory or redis; got %q", q.Store)
	}
	if q.Redis.WaitReplicas < 0 {
		v.add("quotas.redis.wait_replicas", "must be >= 0; got %d", q.Redis.WaitReplicas)
	}
	if q.Redis.WaitReplicas > 0 && q.Redis.WaitTimeout >= q.Redis.Timeout {
		v.add("quotas.redis.wait_timeout", "must be below quotas.redis.timeout (%s), or the read times out before WAIT answers; got %s", q.Redis.Timeout, q.Redis.WaitTimeout)
	}
	if q.Redis.Cluster && q.Redis.MasterName != "" {
		v.add("quotas.redis.cluster", "cannot be set with master_name (Sentinel)")
	}
	if !slices.Contains(modes, q.OnStoreError) {
		v.add("quotas.on_store_error", "must be one of %s; got %q", strings.Join(modes, ", "), q.OnStoreError)
	}
	seen := map[string]string{}
	for i, l := range q.Limits {
		p := fmt.Sprintf("quotas.limits[%d]", i)
		if !slices.Contains([]string{"key", "team", "tenant"}, l.Scope) {
			v.add(p+".scope", "must be key, team or tenant; got %q", l.Scope)
		}
		if prev, ok := seen[l.Scope+"\x00"+l.ID]; ok {
			v.add(p, "the same scope and id as %s: merge them", prev)
		}
		seen[l.Scope+"\x00"+l.ID] = p
		for _, f := range []struct {
			name string
			val  float64
		}{{"requests_per_minute", float64(l.RequestsPerMinute)}, {"requests_per_day", float64(l.RequestsPerDay)},
			{"tokens_per_minute", float64(l.TokensPerMinute)}, {"usd_per_day", l.USDPerDay}, {"usd_per_month", l.USDPerMonth}} {
			if f.val < 0 {
				v.add(p+"."+f.name, "must be >= 0")
			}
		}
		if !slices.Contains(modes, l.OnStoreError) {
			v.add(p+".on_store_error", "must be one of %s; got %q", strings.Join(modes, ", "), l.OnStoreError)
		}
	}
}
