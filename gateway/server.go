// Package gateway is Switchyard's HTTP front door: a Fiber app serving the
// OpenAI API. It authenticates the caller, validates the request, hands it
// to the router and relays the answer, JSON or SSE, reporting the chosen
// backend and the cost. It is the only package that imports Fiber.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/switchyard/switchyard/cache"
	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/conversations"
	"github.com/switchyard/switchyard/ledger"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/policies"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/quota"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/telemetry"
)

// Response headers that tell the caller where a request went and what it
// cost. Streams carry the backend headers too; their cost arrives at the end
// of the stream (see stream.go).
const (
	HeaderRequestID = "X-Request-Id"
	HeaderBackend   = "X-Switchyard-Backend"
	HeaderModel     = "X-Switchyard-Model"
	HeaderKind      = "X-Switchyard-Backend-Kind"
	HeaderCost      = "X-Switchyard-Cost-Usd"
	HeaderEstimated = "X-Switchyard-Usage-Estimated"
	HeaderAttempts  = "X-Switchyard-Attempts"
)

// Keys of values kept in Fiber's per-request locals.
const (
	localPrincipal = "switchyard.principal"
	localRequestID = "switchyard.request_id"
	localError     = "switchyard.error"
	localStreaming = "switchyard.streaming"
	localLog       = "switchyard.log"
)

// Options are the gateway's collaborators. The zero value is usable.
type Options struct {
	// Logger receives access and error logs; nil discards them.
	Logger *slog.Logger
	// Version is reported by /healthz.
	Version string
	// LocalEngine serves the config's local_engine models; nil means New
	// loads them (and Shutdown unloads them).
	LocalEngine *localengine.Pool
	// SpanExporter, if set, receives the spans instead of the configured
	// exporter (tests use an in-memory one).
	SpanExporter sdktrace.SpanExporter
}

// Server is the gateway. Create it with New, run it with Serve or Listen,
// stop it with Shutdown.
type Server struct {
	cfg         *config.Config
	app         *fiber.App
	router      *router.Router
	keys        keyring
	admins      adminKeys
	classifier  *classify.Classifier
	policy      *policies.Engine
	backends    map[string]config.Backend
	local       *localengine.Pool
	tel         *telemetry.Telemetry
	references  map[string]pricing.Price // per team, for savings
	ledger      ledger.Store
	cache       *responseCache // nil when no route or team opts in
	closeLedger func() error
	// conversations keeps the Responses API's stored responses.
	conversations      conversations.Store
	closeConversations func() error
	quota              *quota.Limiter
	closeRedis         func() error // the client quotas and the ledger share
	// requests counts requests from accessLog to emit; background counts
	// quota settlements and ledger writes. Shutdown waits for both.
	requests   *tracker
	labelSets  labelCache             // metric attribute sets (metricsets.go)
	hostPorts  map[string]hostAndPort // backend name -> its base URL's, for spans
	inFlight   inFlight               // admission control (admission.go)
	background *tracker
	ownsLocal  bool // New loaded the pool, Shutdown unloads it
	auditLog   *auditSink
	stopWatch  context.CancelFunc
	log        *slog.Logger
	version    string
	started    time.Time
	draining   atomic.Bool
	lnMu       sync.Mutex
	listeners  []net.Listener // given to Serve, closed by Shutdown
	closed     bool           // Shutdown has begun: Serve refuses

	// base is the parent of every upstream call's context; abort cancels
	// it when the shutdown deadline passes.
	base  context.Context
	abort context.CancelCauseFunc
	// aborting (under streamsMu) stops new relays from starting once
	// shutdown has aborted the requests still running.
	streamsMu sync.Mutex
	aborting  bool
}

// New builds the gateway from a validated config.
func New(cfg *config.Config, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	local, ownsLocal := o.LocalEngine, false
	if local == nil {
		local, ownsLocal = localengine.OpenPool(cfg.LocalEngine.LibDir, localSpecs(cfg.LocalEngine), log), true
	}
	built := false
	defer func() {
		if ownsLocal && !built {
			local.Close() // a later step failed: unload what New loaded
		}
	}()
	r, err := buildRouter(cfg, local)
	if err != nil {
		return nil, err
	}
	warmEncodings(r)
	keys, err := newKeyring(cfg.Keys, r)
	if err != nil {
		return nil, err
	}
	var custom []classify.Custom
	for _, d := range cfg.Classification.Custom {
		custom = append(custom, classify.Custom{Label: d.Label, Pattern: d.Pattern, Category: d.Category})
	}
	classifier, err := classify.NewWith(classify.Options{Custom: custom, PhoneRegions: cfg.Classification.PhoneRegions})
	if err != nil {
		return nil, err
	}
	engine, err := policies.New(context.Background(), cfg.Policy.Bundle, log)
	if err != nil {
		return nil, err
	}
	audit, err := openAudit(cfg.Policy.Audit)
	if err != nil {
		return nil, err
	}
	shared, closeRedis := openSharedRedis(cfg)
	defer func() {
		if !built {
			_ = closeRedis()
		}
	}()
	limiter, err := newLimiter(cfg.Quotas, shared)
	if err != nil {
		return nil, err
	}
	costs, closeLedger, err := openLedger(cfg, log, shared)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !built {
			_ = closeLedger() // a later step failed: release the spool's lock
		}
	}()
	responseCache, err := newResponseCache(cfg, r, shared, log)
	if err != nil {
		return nil, err
	}
	convs, closeConvs := openConversations(cfg)
	defer func() {
		if !built {
			_ = closeConvs()
		}
	}()
	tr := cfg.Telemetry.Traces
	headers := make(map[string]string, len(tr.Headers))
	for k, v := range tr.Headers {
		headers[k] = v.Value()
	}
	tel, err := telemetry.New(context.Background(), telemetry.Options{Exporter: tr.Exporter, Endpoint: tr.Endpoint, Headers: headers,
		Insecure: tr.Insecure, SamplingRatio: *tr.SamplingRatio, SpanExporter: o.SpanExporter, Version: o.Version})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	backends := make(map[string]config.Backend, len(cfg.Backends))
	hostPorts := make(map[string]hostAndPort, len(cfg.Backends))
	for _, b := range cfg.Backends {
		backends[b.Name] = b
		host, port := hostPort(b.BaseURL)
		hostPorts[b.Name] = hostAndPort{host, port}
	}
	s := &Server{cfg: cfg, router: r, keys: keys, admins: newAdminKeys(cfg.Admin.Keys), classifier: classifier, policy: engine, backends: backends, hostPorts: hostPorts, auditLog: audit, local: local, ownsLocal: ownsLocal, quota: limiter, closeRedis: closeRedis, tel: tel, references: referencePrices(cfg.Ledger.ReferenceModels), ledger: costs, closeLedger: closeLedger, cache: responseCache, conversations: convs, closeConversations: closeConvs, requests: newTracker(), background: newTracker(),
		log: log, version: o.Version, started: time.Now()}
	s.base, s.abort = context.WithCancelCause(context.Background())
	s.app = fiber.New(fiber.Config{
		AppName:               "switchyard",
		BodyLimit:             readLimit(int(cfg.Server.BodyLimit)),
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		ReadBufferSize:        8 << 10, // request line and headers
		ReduceMemoryUsage:     true,    // idle keep-alive connections give their buffers back
		Concurrency:           maxConnections(cfg.Server.MaxConnections),
		ReadTimeout:           cfg.Server.ReadTimeout,
		WriteTimeout:          cfg.Server.WriteTimeout, // from the response's start; streams extend it per event
		IdleTimeout:           cfg.Server.IdleTimeout,
	})
	s.app.Server().ConnState = connDeadlines(cfg.Server.ReadTimeout)
	// Connection goroutines left idle after a burst exit (with the stacks
	// the burst grew) after 2 s instead of fasthttp's 10 s.
	s.app.Server().MaxIdleWorkerDuration = 2 * time.Second
	r.StartAttempt = s.startAttempt
	if err := s.registerGauges(); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if err := s.registerLedgerMetrics(); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	s.inFlight.limit = bound(cfg.Server.MaxInFlight, perCPUInFlight)
	s.inFlight.processingLimit = bound(cfg.Server.MaxProcessing, perCPUProcessing)
	if err := s.registerInFlight(); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	s.routes()
	built = true
	// The background work starts last: a New that failed leaves none.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	s.stopWatch = stopWatch
	go func() {
		if err := engine.Watch(watchCtx, 250*time.Millisecond); err != nil {
			log.Error("policy bundle is not watched; changes need a restart", "error", err)
		}
	}()
	if responseCache != nil {
		// Other replicas' semantic entries, indexed as they store them.
		go responseCache.c.Follow(watchCtx, cache.FollowOptions{OnError: func(err error) {
			log.Debug("response cache: following the shared index", "error", err)
		}})
	}
	return s, nil
}

func (s *Server) routes() {
	app := s.app
	app.Use(recover.New())
	app.Use(s.bodyLimit)
	app.Use(s.requestID)
	app.Use(s.admitInFlight)
	app.Use(s.accessLog)
	app.Get("/healthz", s.healthz)
	if p := s.cfg.Telemetry.Metrics.Path; p != "off" {
		app.Get(p, adaptor.HTTPHandler(s.tel.MetricsHandler()))
	}
	app.Get("/readyz", s.readyz)
	// The built-in cost dashboard: a static page that asks for an admin
	// key and reads the costs API with it.
	app.Get("/dashboard", s.dashboardPage)
	app.Get("/dashboard/*", s.dashboardAsset)

	// The admin API authenticates admin keys, before the model API's
	// virtual-key middleware would.
	app.Post("/v1/switchyard/explain", s.adminAuth, s.explain)
	app.Get("/v1/switchyard/quota", s.adminAuth, s.quotaUsage)
	app.Post("/v1/switchyard/quota/reset", s.adminAuth, s.quotaReset)
	app.Get("/v1/switchyard/costs", s.adminAuth, s.costs)
	app.Get("/v1/switchyard/costs/report", s.adminAuth, s.costsReport)
	app.Delete("/v1/switchyard/cache", s.adminAuth, s.cachePurge)
	// Any other path or method of the admin API: an admin key learns it
	// does not exist (rather than that it is not a virtual key).
	app.All("/v1/switchyard/*", s.adminAuth, unknownAdmin(app))

	v1 := app.Group("/v1", s.authenticate)
	v1.Post("/chat/completions", s.proxy(providers.OpChat))
	v1.Post("/completions", s.proxy(providers.OpCompletion))
	v1.Post("/embeddings", s.proxy(providers.OpEmbeddings))
	v1.Post("/messages", s.messagesHandler)
	v1.Post("/messages/count_tokens", s.countTokens)
	v1.Post("/responses", s.responsesHandler)
	v1.Get("/responses/:id", s.getResponse)
	v1.Delete("/responses/:id", s.deleteResponse)
	v1.Get("/models", s.listModels)
	v1.Get("/models/*", s.getModel)
}

// Router exposes the router, for hooks such as telemetry.
func (s *Server) Router() *router.Router { return s.router }

// Listen serves on the configured address until Shutdown.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Server.Listen)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// ErrServerClosed is what Serve returns when Shutdown came first.
var ErrServerClosed = errors.New("gateway: server closed")

// Serve serves on ln until Shutdown, which closes ln. Called after
// Shutdown has begun, it closes ln and returns ErrServerClosed at once.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.closed {
		s.lnMu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, ln)
	s.lnMu.Unlock()
	return s.app.Listener(ln)
}

// Shutdown stops accepting connections and waits for in-flight requests,
// streams included, within ctx's deadline. The end of that time, a
// quarter of it but at most abortGrace, is kept for the requests still
// running then: they are canceled with ErrShuttingDown, and a stream ends
// with an error event and is logged and billed for what it used. Then the
// quota settlements and ledger writes still running, and the span export,
// get what is left of the deadline, but at least backgroundGrace each
// (a Redis that stopped answering costs at most that), so Shutdown
// returns within ctx's deadline plus at most 2 x backgroundGrace. It
// returns ctx's error when requests had to be canceled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.stopWatch()
	s.lnMu.Lock()
	s.closed = true
	listeners := s.listeners
	s.lnMu.Unlock()
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close() // a Serve that began after the server's own shutdown
		}
	}()
	deadline, hasDeadline := ctx.Deadline()
	left := func(floor time.Duration) time.Duration {
		if !hasDeadline {
			return max(floor, abortGrace)
		}
		return max(time.Until(deadline), floor)
	}
	drain := ctx
	if hasDeadline {
		grace := min(abortGrace, time.Until(deadline)/4)
		var cancel context.CancelFunc
		drain, cancel = context.WithDeadline(ctx, deadline.Add(-grace))
		defer cancel()
	}
	err := s.app.ShutdownWithContext(drain)
	if err != nil {
		s.streamsMu.Lock()
		s.aborting = true
		s.streamsMu.Unlock()
		s.abort(ErrShuttingDown)
	}
	// Every request, streams included, ends in emit, which settles its
	// quota and writes its ledger entry: wait for them (aborted ones end
	// quickly), then for those writes, and only then close what they use.
	s.requests.wait(left(0), true)
	s.background.wait(left(backgroundGrace), true)
	if s.ownsLocal {
		s.local.Close()
	}
	tctx, cancel := context.WithTimeout(context.Background(), left(backgroundGrace))
	_ = s.tel.Shutdown(tctx) // flush the last spans
	cancel()
	s.closeLedger()
	_ = s.closeConversations()
	_ = s.closeRedis()
	s.auditLog.close()
	return err
}

// abortGrace is the most of Shutdown's time kept for aborted streams to
// write their error event; backgroundGrace is the least given to the
// writes that follow them.
const (
	abortGrace      = 2 * time.Second
	backgroundGrace = time.Second
)

// streamStarted reports whether a new relay may start: not once shutdown
// is aborting requests (it waits for running ones through s.requests).
func (s *Server) streamStarted() bool {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	return !s.aborting
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// App is the underlying Fiber app, for in-process tests and benchmarks
// (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// requestID takes the client's x-request-id when it is sane, or makes one,
// and echoes it in the response. The id is sent upstream, logged and
// audited, so one that holds anything the classifier finds (a customer's
// email as a correlation id) is replaced too.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(HeaderRequestID)
	if saneID(id) && len(s.classifier.Find(id)) == 0 {
		id = strings.Clone(id) // Fiber's string aliases a buffer that is reused
	} else {
		id = newRequestID()
	}
	c.Locals(localRequestID, id)
	c.Set(HeaderRequestID, id)
	return c.Next()
}

func saneID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}
