// Package config loads, expands, defaults and validates Switchyard's
// configuration file (config.yaml).
//
// Loading happens in four steps, each in one place:
//  1. the YAML is parsed into a node tree;
//  2. every scalar is expanded: ${VAR} and ${VAR:-default} come from the
//     environment, so secrets never need to be written in the file;
//  3. the tree is checked strictly against the Go types (an unknown key is an
//     error naming its field path) and decoded;
//  4. defaults are applied and Validate reports every problem at once, each
//     prefixed with its field path, for example
//     "backends[2].price.input_per_mtok: must be >= 0".
package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Backend kinds.
const (
	KindLocal       = "local"       // the embedded open-model engine
	KindSelfHosted  = "selfhosted"  // a self-hosted pool: vLLM, SGLang, llama-server, Ollama
	KindProprietary = "proprietary" // a proprietary API: OpenAI, Anthropic, Gemini
)

// Provider types understood by this build.
const (
	ProviderOpenAI    = "openai"    // OpenAI and any OpenAI-compatible upstream
	ProviderLlamaCpp  = "llamacpp"  // the embedded llama.cpp engine (kind local)
	ProviderAnthropic = "anthropic" // Anthropic's Messages API
	ProviderGemini    = "gemini"    // Google's Gemini API
	ProviderAzure     = "azure"     // Azure OpenAI: deployment in the URL, api-version, api-key
	ProviderBedrock   = "bedrock"   // Amazon Bedrock's Converse API, SigV4-signed
)

// Presets are OpenAI-compatible providers known by name: provider: groq is
// the openai provider with Groq's base URL.
var Presets = map[string]string{
	"mistral":   "https://api.mistral.ai/v1",
	"groq":      "https://api.groq.com/openai/v1",
	"deepseek":  "https://api.deepseek.com/v1",
	"together":  "https://api.together.xyz/v1",
	"fireworks": "https://api.fireworks.ai/inference/v1",
}

// Config is the whole configuration file.
type Config struct {
	// Server is the HTTP listener.
	Server Server `yaml:"server"`
	// Log controls structured logging.
	Log Log `yaml:"log"`
	// Backends are the places requests can be sent to.
	Backends []Backend `yaml:"backends"`
	// Models are the public model names clients ask for, each mapped to an
	// ordered list of deployments.
	Models []Model `yaml:"models"`
	// Keys are the virtual API keys clients authenticate with.
	Keys []Key `yaml:"keys"`
	// Classification configures the detection of sensitive data in
	// requests.
	Classification Classification `yaml:"classification"`
	// Policy configures the OPA routing policy.
	Policy Policy `yaml:"policy"`
	// Admin configures the admin API (/v1/switchyard/...).
	Admin Admin `yaml:"admin"`
	// LocalEngine configures the embedded llama.cpp engine that backends of
	// kind local serve from.
	LocalEngine LocalEngine `yaml:"local_engine"`
	// Quotas limits requests, tokens and spend per key, team and tenant.
	Quotas Quotas `yaml:"quotas"`
	// Telemetry configures traces and metrics.
	Telemetry Telemetry `yaml:"telemetry"`
	// Ledger configures the cost ledger finance reconciles with.
	Ledger Ledger `yaml:"ledger"`
	// Responses configures the Responses API's stored responses
	// (store: true), which previous_response_id continues.
	Responses Responses `yaml:"responses"`
	// Cache configures the response cache, exact and semantic, opted into
	// per route (models[].cache) or per team (cache.teams).
	Cache Cache `yaml:"cache"`
	// DataDir is where the gateway keeps local state that must survive a
	// restart: the ledger's spool of entries not yet in the shared store.
	// Default "data" (relative to the working directory); created when
	// first needed.
	DataDir string `yaml:"data_dir"`
}

// Responses configures where the Responses API keeps stored responses
// and their conversations: the prompts and answers themselves, so they
// are kept no longer than TTL.
type Responses struct {
	// Store is memory (the default; one replica's, bounded) or redis
	// (quotas.redis's server, shared by replicas).
	Store string `yaml:"store"`
	// TTL is how long a stored response can be read or continued.
	// Default 720h (30 days, as OpenAI keeps them).
	TTL time.Duration `yaml:"ttl"`
	// MaxEntries and MaxBytes bound the memory store; the least recently
	// used responses go first. Defaults 10000 and 256 MiB.
	MaxEntries int      `yaml:"max_entries"`
	MaxBytes   ByteSize `yaml:"max_bytes"`
}

// Cache configures the response cache. It serves only the routes and
// teams that opt in; everything else is answered "bypass".
type Cache struct {
	// Store is memory (the default: this replica's, a bounded LRU) or
	// redis (quotas.redis's server, shared by replicas). Entries whose
	// request held sensitive data stay in memory unless their tenant is
	// in ShareSensitive.
	Store string `yaml:"store"`
	// TTL is how long an answer is served. Default 1h.
	TTL time.Duration `yaml:"ttl"`
	// MaxEntries bounds the memory store (least recently used first) and
	// the semantic index. Default 10000.
	MaxEntries int `yaml:"max_entries"`
	// MaxEntryBytes is the largest answer cached. Default 1 MiB.
	MaxEntryBytes ByteSize `yaml:"max_entry_bytes"`
	// MaxBytes bounds the memory store's entries together (the least
	// recently used go first). Default 256 MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Teams opts teams in, for every route they use: team name to exact
	// or semantic. A route's own models[].cache wins.
	Teams map[string]string `yaml:"teams"`
	// ShareSensitive lists tenants whose entries holding sensitive data
	// may go to the shared (redis) store.
	ShareSensitive []string `yaml:"share_sensitive"`
	// Semantic configures semantic lookups.
	Semantic SemanticCache `yaml:"semantic"`
}

// SemanticCache configures how near-repeated questions are found.
type SemanticCache struct {
	// EmbeddingModel is the public model (an embeddings route) that
	// embeds the lookup text. Only its local and self-hosted deployments
	// are used: a lookup never sends text to a proprietary API. Default:
	// the first route served by a local-engine embedding model.
	EmbeddingModel string `yaml:"embedding_model"`
	// Threshold is the cosine similarity at or above which a stored
	// answer is served for a new question. Default 0.95.
	Threshold float64 `yaml:"threshold"`
	// Timeout bounds the embedding of one lookup; past it the request
	// is a miss. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
}

// Telemetry configures OpenTelemetry.
type Telemetry struct {
	// Traces are exported over OTLP or to the console; off by default.
	Traces Traces `yaml:"traces"`
	// Metrics are served for Prometheus.
	Metrics Metrics `yaml:"metrics"`
}

// Traces configures trace export.
type Traces struct {
	// Exporter is none (the default), otlp-http, otlp-grpc or console.
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector: http://collector:4318 for otlp-http,
	// collector:4317 for otlp-grpc. Empty uses the OTEL_EXPORTER_OTLP_*
	// environment variables' defaults.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export, e.g. a hosted backend's key.
	Headers map[string]Secret `yaml:"headers"`
	// Insecure exports without TLS.
	Insecure bool `yaml:"insecure"`
	// SamplingRatio is the share of new traces kept, 0 to 1. Default 1.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Path is where metrics are served. Default /metrics; "off" serves
	// none.
	Path string `yaml:"path"`
}

// Ledger configures the cost ledger: one record per settled request.
type Ledger struct {
	// Store is memory (the default) or redis (quotas.redis's server; every
	// replica writes one shared ledger).
	Store string `yaml:"store"`
	// Retention is how long records are kept. Default 2160h (90 days).
	Retention time.Duration `yaml:"retention"`
	// Shards spreads each day of a redis ledger over this many streams
	// (Redis Cluster slots), so that no one primary takes every append.
	// Never lower it while retention keeps days written with more: their
	// higher shards would not be read. Default 1.
	Shards int `yaml:"shards"`
	// SpoolLimit bounds the local spool (in data_dir) that keeps entries
	// the shared store could not take until they are replayed into it.
	// Default 256 MiB.
	SpoolLimit ByteSize `yaml:"spool_limit"`
	// ReferenceModels price each team's savings: what the request would
	// have cost on this proprietary model (from the default price table)
	// minus what it cost. Key "default" applies to teams not listed.
	// Default {default: gpt-4o-mini}.
	ReferenceModels map[string]string `yaml:"reference_models"`
}

// Quotas configures request, token and spend limits.
type Quotas struct {
	// Store is memory (the default: one process) or redis (shared by every
	// replica).
	Store string `yaml:"store"`
	// Redis is the Redis server, Sentinel or Cluster, for store redis.
	Redis Redis `yaml:"redis"`
	// ReservationTTL is how long a request's reservation holds before it
	// is released unsettled (a crashed replica). Default 10m.
	ReservationTTL time.Duration `yaml:"reservation_ttl"`
	// DefaultMaxOutputTokens is the completion reserved for a request that
	// sets no max_tokens. Default 1024.
	DefaultMaxOutputTokens int64 `yaml:"default_max_output_tokens"`
	// OnStoreError is every limit's failure mode unless it sets its own:
	// fail_open (the default), fail_closed or local_only.
	OnStoreError string `yaml:"on_store_error"`
	// Limits are the limits; each applies to one scope.
	Limits []QuotaLimit `yaml:"limits"`
}

// Redis is how to reach Redis: one address is a single node, several a
// Cluster; with MasterName they are Sentinels.
type Redis struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   Secret   `yaml:"password"`
	DB         int      `yaml:"db"`
	// Timeout bounds dialling, reading and writing; a dead Redis costs a
	// request at most this long. Default 100ms.
	Timeout time.Duration `yaml:"timeout"`
	// Cluster treats a single address as a seed of a Redis Cluster (a
	// configuration endpoint); several addresses always mean a Cluster.
	Cluster bool `yaml:"cluster"`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// (with MasterName), when they differ from the master's.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword Secret `yaml:"sentinel_password"`
	// WaitReplicas, when > 0, makes every write (reservation, settlement,
	// ledger entry) succeed only once this many replicas confirm it (WAIT
	// after the write, on the same connection): Redis replicates
	// asynchronously, so without it a primary that dies right after
	// answering loses its last writes in the failover. A write the
	// replicas do not confirm within WaitTimeout is a store error (the
	// quota's on_store_error applies; a ledger entry is spooled and
	// replayed; both are safe to run twice). Default 0: no waiting.
	WaitReplicas int `yaml:"wait_replicas"`
	// WaitTimeout bounds that wait. Default half of Timeout.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// QuotaLimit is one limit. Zero fields are unlimited.
type QuotaLimit struct {
	// Scope is key, team or tenant.
	Scope string `yaml:"scope"`
	// ID names one key id, team or tenant; empty applies the limit to each
	// of them separately.
	ID                string  `yaml:"id"`
	RequestsPerMinute int64   `yaml:"requests_per_minute"`
	RequestsPerDay    int64   `yaml:"requests_per_day"`
	TokensPerMinute   int64   `yaml:"tokens_per_minute"`
	USDPerDay         float64 `yaml:"usd_per_day"`
	USDPerMonth       float64 `yaml:"usd_per_month"`
	// OnStoreError overrides quotas.on_store_error for this limit.
	OnStoreError string `yaml:"on_store_error"`
}

// LocalEngine configures the embedded llama.cpp engine.
type LocalEngine struct {
	// LibDir is the directory of llama.cpp's shared libraries
	// (libllama.so, libggml*.so and any GPU backend such as
	// libggml-cuda.so). Empty means $SWITCHYARD_LLAMA_LIB, else .llama/lib,
	// where scripts/fetch-llama.sh puts them.
	LibDir string `yaml:"lib_dir"`
	// FetchLibraries lets `switchyard serve` install the pinned llama.cpp
	// CPU libraries in LibDir before it starts, when LibDir has no
	// libllama.so (or an earlier pinned build, by its .version file): it
	// downloads the npm tarball of @node-llama-cpp/linux-x64 from
	// registry.npmjs.org over HTTPS (10.6 MB), refuses it unless its size
	// and SHA-512 integrity are the pinned ones, and unpacks only its .so
	// files. A build of your own (libllama.so without .version) is left
	// alone. linux/amd64 only; elsewhere, or when the download fails, a
	// warning says why and what to do, and the gateway starts without
	// the libraries. Default false: nothing is downloaded unless the
	// config asks for it (the shipped config.yaml does).
	FetchLibraries bool `yaml:"fetch_libraries"`
	// Models are the GGUF models to load at start.
	Models []LocalModel `yaml:"models"`
}

// GenerateShapes are the values of LocalModel.Generate: the shapes of
// `switchyard model generate` that make sense to write at start.
var GenerateShapes = []string{"tiny", "bench"}

// LocalModel is one GGUF model served by the local engine.
type LocalModel struct {
	// Name is what deployments of a local backend call the model.
	Name string `yaml:"name"`
	// Path is the GGUF file.
	Path string `yaml:"path"`
	// Generate, when set, lets `switchyard serve` write a model of that
	// shape to Path before it starts if there is no file there: tiny
	// (140k parameters, 0.6 MB) or bench (125M parameters, about 500 MB
	// of F32), with seeded random weights, as `switchyard model generate`
	// does: its text is noise, its speed is that of a real model of its
	// shape. For demos and tests. Default empty: a missing file is a model
	// that does not load (/readyz says why).
	Generate string `yaml:"generate"`
	// Context is each request's context window in tokens (prompt plus
	// completion). Default 2048; llama.cpp rounds it up to a multiple of
	// 256 and caps it at the model's training context.
	Context int `yaml:"context"`
	// Slots is how many requests are decoded together. Default 4.
	Slots int `yaml:"slots"`
	// Queue is how many requests may wait for a slot before the engine
	// answers a retryable 503, which the router turns into a fallback.
	// Default 64.
	Queue int `yaml:"queue"`
	// Batch is the most tokens one decode step takes. Default 512.
	Batch int `yaml:"batch"`
	// GPULayers is how many layers to offload to a GPU (-1: all). Default 0.
	GPULayers int `yaml:"gpu_layers"`
	// Threads is the CPU threads per decode step. Default half the CPUs,
	// at least 1.
	Threads int `yaml:"threads"`
	// ChatTemplate overrides the GGUF's own chat template: a llama.cpp
	// built-in name (chatml, llama3, mistral-v7, ...) or a template text.
	ChatTemplate string `yaml:"chat_template"`
	// Embeddings loads the model for /v1/embeddings only.
	Embeddings bool `yaml:"embeddings"`
}

// Admin configures the admin API. With no keys it is disabled.
type Admin struct {
	// Keys are admin keys, stored as SHA-256 like virtual keys; they are
	// separate from virtual keys and cannot call the model API.
	Keys []AdminKey `yaml:"keys"`
}

// AdminKey is one admin credential.
type AdminKey struct {
	ID     string `yaml:"id"`
	SHA256 string `yaml:"sha256"`
}

// Policy configures the routing policy.
type Policy struct {
	// Bundle is the directory of the Rego bundle; empty serves the bundle
	// shipped in the binary (policies/bundle). Changes on disk are picked
	// up without a restart.
	Bundle string `yaml:"bundle"`
	// OnError is what an evaluation error does: closed (refuse the
	// request, the default) or open (route as configured, unfiltered).
	OnError string `yaml:"on_error"`
	// Audit is where every decision is written as one JSON line: stdout
	// (the default), stderr, none, or a file path.
	Audit string `yaml:"audit"`
}

// Classification configures sensitive-data detection. The built-in
// detectors (email, phone, payment card, IBAN, US SSN, IP address, API
// keys, private keys, JWTs) always run.
type Classification struct {
	// Custom adds detectors: every match of Pattern is an entity Label.
	Custom []CustomDetector `yaml:"custom"`
	// PhoneRegions are the ISO 3166 regions whose numbering plans national
	// phone numbers (written without +) are checked against. Empty means
	// the classifier's defaults (classify.DefaultPhoneRegions).
	PhoneRegions []string `yaml:"phone_regions"`
}

// CustomDetector is a regular expression (RE2 syntax) that finds one kind
// of entity.
type CustomDetector struct {
	// Label names the entity in policies and logs: A-Z, 0-9 and _.
	Label   string `yaml:"label"`
	Pattern string `yaml:"pattern"`
	// Category is pii or secret. Default pii.
	Category string `yaml:"category"`
}

// Server configures the HTTP listener.
type Server struct {
	// Listen is the address to listen on. Default ":8080".
	Listen string `yaml:"listen"`
	// BodyLimit is the largest request body accepted; larger bodies get 413.
	// Accepts a byte count or a size such as "8MiB". Default 8 MiB.
	BodyLimit ByteSize `yaml:"body_limit"`
	// ShutdownTimeout is how long shutdown takes at most: in-flight
	// requests, streams included, may run until its last quarter (at most
	// its last 2 s); requests still running then are canceled, streams
	// end with an error event, and every request is billed. Quota
	// settlements, ledger writes and the span export still running then
	// get what is left, at least 1 s each. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StreamKeepalive is how often an SSE comment is written to a streaming
	// client while the upstream is silent, and how often the client's
	// connection is checked while an upstream has not answered yet. Both let
	// the gateway notice a client that went away and cancel the upstream
	// request. Default 100ms.
	StreamKeepalive time.Duration `yaml:"stream_keepalive"`
	// ReadTimeout bounds reading one request, headers and body. Default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is how long a client may take to accept response bytes
	// before it is disconnected; it restarts with every stream event.
	// Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long an idle keep-alive connection stays open.
	// Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// JSON bounds the shape of request bodies, checked in one linear pass
	// before any other work; a body past a bound gets a 400 naming it.
	JSON JSONLimits `yaml:"json"`
	// MaxInFlight bounds the model API's requests open at once, those
	// waiting on a model and streams until their last event included; one
	// more is refused at once with 503 and Retry-After rather than queued.
	// They cost memory rather than CPU. 0 means 256 per CPU; -1 means no
	// bound.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxProcessing bounds the model API's requests the gateway works on at
	// once: from arrival until their upstream call starts (parsing,
	// classification, policy, quotas), and a JSON answer from its arrival
	// until it is sent; not while waiting on a model (the CPU-bound part). One more is
	// refused as past MaxInFlight. 0 means 64 per CPU; -1 means no bound.
	MaxProcessing int `yaml:"max_processing"`
	// MaxConnections bounds the client connections served at once, idle
	// keep-alive ones included; one more is answered 503 and closed. 0
	// means no bound of Switchyard's own (fasthttp's 262144).
	MaxConnections int `yaml:"max_connections"`
	// DebugListen, when set, serves Go's profiles (net/http/pprof, under
	// /debug/pprof/) on this address, unauthenticated: keep it on
	// loopback. Default: off.
	DebugListen string `yaml:"debug_listen"`
}

// JSONLimits bound a request body's shape. Zero fields take their
// defaults.
type JSONLimits struct {
	// MaxDepth is the deepest nesting of arrays and objects. Default 64.
	MaxDepth int `yaml:"max_depth"`
	// MaxStringBytes is the longest string or key, in bytes as sent
	// (escapes included). Default: body_limit.
	MaxStringBytes ByteSize `yaml:"max_string_bytes"`
	// MaxArrayItems is the most elements in one array, and the most
	// members in one object. Default 100000.
	MaxArrayItems int `yaml:"max_array_items"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// Backend is one upstream: a local engine, a self-hosted pool or a
// proprietary API.
type Backend struct {
	// Name identifies the backend in routes, logs, metrics and the
	// x-switchyard-backend response header.
	Name string `yaml:"name"`
	// Kind is local, selfhosted or proprietary.
	Kind string `yaml:"kind"`
	// Provider is the wire protocol: openai (OpenAI and every
	// OpenAI-compatible server), anthropic, gemini, azure, bedrock,
	// llamacpp (the embedded engine), or a preset over openai: mistral,
	// groq, deepseek, together, fireworks.
	Provider string `yaml:"provider"`
	// BaseURL is the API root, for example https://api.openai.com/v1. The
	// anthropic, gemini and bedrock providers and the presets default it.
	BaseURL string `yaml:"base_url"`
	// APIKey is the upstream credential: a bearer token (openai), x-api-key
	// (anthropic), x-goog-api-key (gemini), api-key (azure). Write it as
	// ${ENV_VAR}.
	APIKey Secret `yaml:"api_key"`
	// APIKeyEnv names the environment variables api_key was read from
	// (${NAME} in the file), for messages about a missing key.
	APIKeyEnv []string `yaml:"-"`
	// APIVersion is Azure's api-version (required there) or Anthropic's
	// anthropic-version header (default 2023-06-01).
	APIVersion string `yaml:"api_version"`
	// Beta lists Anthropic beta features (the anthropic-beta header).
	Beta []string `yaml:"beta"`
	// AWS holds Bedrock's credentials; empty uses the AWS SDK's default
	// chain (environment, shared config, instance or task role). The AWS
	// region is Region.
	AWS AWSCredentials `yaml:"aws"`
	// Retry retries transient failures (429, 5xx, 529, resets) on this
	// backend before the router falls back. Default: 3 attempts for
	// proprietary backends, none for others.
	Retry Retry `yaml:"retry"`
	// Region is where the backend runs, for example eu-west-1.
	Region string `yaml:"region"`
	// Jurisdiction is the legal area of the region, for example EU or US.
	// Local and self-hosted backends declare where their host runs too:
	// Kind says who operates a backend, Jurisdiction where it is, and a
	// tenant the policy pins to a jurisdiction only uses backends in it.
	Jurisdiction string `yaml:"jurisdiction"`
	// Models lists the upstream model names this backend serves. When it is
	// not empty, every deployment on this backend must name one of them.
	Models []string `yaml:"models"`
	// Price is what the backend charges per million tokens; it is the
	// default for every deployment on this backend.
	Price Price `yaml:"price"`
	// Timeouts bound each upstream attempt.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxIdleConns is the size of the keep-alive pool to this backend.
	// Default 256.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// ZeroDataRetention is true when the provider contractually keeps no
	// prompts or completions; policies use it for internal data.
	ZeroDataRetention bool `yaml:"zero_data_retention"`
	// ContextWindow is the largest prompt plus completion, in tokens, the
	// backend's models accept; 0 when unknown.
	ContextWindow int64 `yaml:"context_window"`
	// ResponsesAPI says how a request to POST /v1/responses reaches an
	// openai backend: native (sent as the client wrote it, to the
	// upstream's own /responses, stateless), translate (to chat
	// completions, which every OpenAI-compatible server speaks) or auto
	// (native until the upstream shows it has no /responses, answering 404,
	// 405 or 501: then that request and every later one is translated).
	// Default: native when the base URL is OpenAI's own (api.openai.com),
	// auto for other proprietary backends, translate for self-hosted and
	// local ones.
	ResponsesAPI string `yaml:"responses_api"`
}

// Ways Responses requests reach an openai backend (ResponsesAPI).
const (
	ResponsesNative    = "native"
	ResponsesAuto      = "auto"
	ResponsesTranslate = "translate"
)

// ResponsesMode is how Responses requests reach this backend: one of
// ResponsesNative, ResponsesAuto, ResponsesTranslate (always for
// providers other than openai).
func (b Backend) ResponsesMode() string {
	if b.Provider != ProviderOpenAI {
		return ResponsesTranslate
	}
	if b.ResponsesAPI != "" {
		return b.ResponsesAPI
	}
	if u, err := url.Parse(b.BaseURL); err == nil && strings.EqualFold(u.Hostname(), "api.openai.com") {
		return ResponsesNative
	}
	if b.Kind == KindProprietary {
		return ResponsesAuto
	}
	return ResponsesTranslate
}

// AWSCredentials are static AWS credentials.
type AWSCredentials struct {
	AccessKeyID     Secret `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	SessionToken    Secret `yaml:"session_token"`
}

// Retry is a backend's retry policy.
type Retry struct {
	// Attempts is the most tries per request; 1 disables retries.
	Attempts int `yaml:"attempts"`
	// Base is the first backoff, doubled per retry up to Max, with full
	// jitter. Defaults 250ms and 4s; a Retry-After longer than Max is not
	// waited for (the router falls back instead).
	Base time.Duration `yaml:"base"`
	Max  time.Duration `yaml:"max"`
}

// Price is a price list in US dollars per one million tokens.
type Price struct {
	InputPerMTok  float64 `yaml:"input_per_mtok"`
	OutputPerMTok float64 `yaml:"output_per_mtok"`
	// CachedInputPerMTok prices prompt tokens served from the provider's
	// cache. Unset means the input price: cached tokens are never billed
	// at zero by omission.
	CachedInputPerMTok *float64 `yaml:"cached_input_per_mtok"`
	// CacheWritePerMTok prices prompt tokens written to the provider's
	// cache (Anthropic's cache creation, 1.25x input there). Unset means
	// the input price.
	CacheWritePerMTok *float64 `yaml:"cache_write_per_mtok"`
}

// IsZero reports whether no price was written at all.
func (p Price) IsZero() bool {
	return p.InputPerMTok == 0 && p.OutputPerMTok == 0 && p.CachedInputPerMTok == nil && p.CacheWritePerMTok == nil
}

// CacheWrite is the price of cache-written input tokens, the input price
// when unset.
func (p Price) CacheWrite() float64 {
	if p.CacheWritePerMTok == nil {
		return p.InputPerMTok
	}
	return *p.CacheWritePerMTok
}

// Cached is the price of cached input tokens, the input price when unset.
func (p Price) Cached() float64 {
	if p.CachedInputPerMTok == nil {
		return p.InputPerMTok
	}
	return *p.CachedInputPerMTok
}

// Timeouts bound one upstream attempt. Zero means the default.
type Timeouts struct {
	// Connect bounds dialling the upstream (TCP and TLS). Default 5s.
	Connect time.Duration `yaml:"connect"`
	// FirstByte bounds the wait for the response headers and, for a
	// stream, its first event. For a non-streaming request this is the
	// whole generation. Default 120s.
	FirstByte time.Duration `yaml:"first_byte"`
	// BetweenChunks bounds the silence between two stream events. Default 30s.
	BetweenChunks time.Duration `yaml:"between_chunks"`
}

// Model is a public model name and the deployments that serve it, in order
// of preference.
type Model struct {
	// Name is what clients put in the request's "model" field.
	Name string `yaml:"name"`
	// Aliases are other names clients may use for the same route.
	Aliases []string `yaml:"aliases"`
	// Deployments are tried in order; the next is used when one fails
	// before the first byte reached the client.
	Deployments []Deployment `yaml:"deployments"`
	// Cache opts the route into the response cache: exact, semantic
	// (exact first, then near-repeated questions) or off (even for teams
	// in cache.teams). Default: cache.teams decides.
	Cache string `yaml:"cache"`
}

// Deployment is one backend serving a model.
type Deployment struct {
	// Backend names a backend.
	Backend string `yaml:"backend"`
	// Model is the upstream model name. Default: the route's name.
	Model string `yaml:"model"`
	// Price overrides the backend's price for this model.
	Price *Price `yaml:"price"`
}

// Key is a virtual API key. Only the SHA-256 of the key is stored.
type Key struct {
	// ID names the key in logs and metrics; it is not secret.
	ID string `yaml:"id"`
	// SHA256 is the lowercase hex SHA-256 of the key
	// (`switchyard key hash` prints it).
	SHA256 string `yaml:"sha256"`
	Tenant string `yaml:"tenant"`
	Team   string `yaml:"team"`
	User   string `yaml:"user"`
	// Models restricts the key to these public model names or aliases;
	// empty allows every model.
	Models []string `yaml:"models"`
}

// Secret is a string that never prints: fmt, logs and YAML show it masked.
type Secret string

// MissingCredentials says why b cannot authenticate to its upstream: a
// proprietary API (Amazon Bedrock aside, which signs with AWS
// credentials) with an empty api_key, naming the variables it was to come
// from; "" when nothing is missing.
func (b Backend) MissingCredentials() string {
	if b.Kind != KindProprietary || b.Provider == ProviderBedrock || b.APIKey != "" {
		return ""
	}
	if len(b.APIKeyEnv) == 0 {
		return fmt.Sprintf("backend %q has no API key (api_key is empty)", b.Name)
	}
	return fmt.Sprintf("backend %q has no API key: set %s", b.Name, strings.Join(b.APIKeyEnv, " or "))
}

// Mask is what a non-empty secret prints as.
const Mask = "********"

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Mask
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Value returns the secret itself, for the one place that sends it upstream.
func (s Secret) Value() string { return string(s) }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
