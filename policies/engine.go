package policies

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Query is the rule the gateway evaluates.
const Query = "data.switchyard.decision"

//go:embed bundle
var shipped embed.FS

//go:embed schema/input.json
var inputSchemaJSON []byte

// schemas types `input` in every module against the contract's JSON
// Schema, so a rule that reads a field the gateway never sends fails to
// compile instead of silently never firing.
func schemas() *ast.SchemaSet {
	var schema any
	if err := json.Unmarshal(inputSchemaJSON, &schema); err != nil {
		panic(fmt.Sprintf("policies: embedded input schema: %v", err))
	}
	ss := ast.NewSchemaSet()
	ss.Put(ast.SchemaRootRef, schema)
	return ss
}

// Shipped is the bundle that comes with Switchyard.
func Shipped() fs.FS {
	sub, err := fs.Sub(shipped, "bundle")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// Bundle is a loaded, not yet compiled policy bundle: Rego modules (tests
// included) and the data document.
type Bundle struct {
	Modules  map[string]string // file path -> source
	Data     map[string]any
	Revision string // content hash
}

// LoadBundle reads every .rego file and every data.json below root; a
// data.json in directory a/b is placed at data.a.b.
func LoadBundle(fsys fs.FS) (*Bundle, error) {
	b := &Bundle{Modules: map[string]string{}, Data: map[string]any{}}
	h := sha256.New()
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && strings.HasPrefix(d.Name(), ".") {
			// Hidden directories: .git, and the ..2026_… copies a
			// Kubernetes ConfigMap mount links its files from.
			return fs.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".rego") || path.Base(p) == "data.json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading bundle: %w", err)
	}
	sort.Strings(files)
	for _, p := range files {
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		h.Write([]byte(p))
		h.Write(src)
		if strings.HasSuffix(p, ".rego") {
			b.Modules[p] = string(src)
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(src, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		dst := b.Data
		if dir := path.Dir(p); dir != "." {
			for _, k := range strings.Split(dir, "/") {
				next, _ := dst[k].(map[string]any)
				if next == nil {
					next = map[string]any{}
					dst[k] = next
				}
				dst = next
			}
		}
		for k, v := range doc {
			dst[k] = v
		}
	}
	if len(b.Modules) == 0 {
		return nil, errors.New("bundle has no .rego files")
	}
	b.Revision = hex.EncodeToString(h.Sum(nil))[:12]
	return b, nil
}

// isTest reports whether a module holds Rego tests, which are compiled for
// `policy test` but not for serving.
func isTest(p string) bool { return strings.HasSuffix(p, "_test.rego") }

// compiled is one prepared bundle.
type compiled struct {
	pq       rego.PreparedEvalQuery
	revision string
}

// prepare compiles the bundle's policy modules strictly (unused
// variables, imports and arguments are errors, as `opa check --strict`)
// and prepares the decision query.
func prepare(ctx context.Context, b *Bundle) (*compiled, error) {
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Strict(true),
		rego.Schemas(schemas()),
		// AST values on read: the data document is not converted again on
		// every evaluation.
		rego.Store(inmem.NewFromObjectWithOpts(b.Data, inmem.OptReturnASTValuesOnRead(true))),
	}
	for p, src := range b.Modules {
		if !isTest(p) {
			opts = append(opts, rego.Module(p, src))
		}
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &compiled{pq: pq, revision: b.Revision}, nil
}

// CacheSize is how many distinct decisions an Engine remembers.
const CacheSize = 10000

// Engine evaluates the current bundle. It is safe for concurrent use.
//
// A decision is a pure function of the bundle and the input, so an Engine
// remembers recent decisions, keyed by the bundle revision and the input
// without the request id, and reuses them: the gateway rounds the input's
// numbers to two significant figures so that similar requests share a key.
// A reload changes the revision and so never reuses an old decision.
type Engine struct {
	dir   string // "" serves the shipped bundle, which never reloads
	log   *slog.Logger
	cache *lru.Cache[string, *Decision]

	cur     atomic.Pointer[compiled]
	mu      sync.Mutex // serialises reloads and guards lastErr
	lastErr error
	errors  atomic.Int64
}

// Status is what /readyz shows about the policy.
type Status struct {
	Revision string `json:"revision"`
	// LastError is the error of the last failed load, if the bundle on
	// disk is broken; the previous revision stays in force.
	LastError string `json:"last_error,omitempty"`
	// LoadErrors counts failed loads since start.
	LoadErrors int64 `json:"load_errors"`
}

// New loads and prepares the bundle in dir, or the shipped bundle when dir
// is empty. The first load must succeed.
func New(ctx context.Context, dir string, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := lru.New[string, *Decision](CacheSize)
	if err != nil {
		return nil, err
	}
	e := &Engine{dir: dir, log: log, cache: cache}
	c, err := e.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading policy bundle %s: %w", e.where(), err)
	}
	e.cur.Store(c)
	return e, nil
}

func (e *Engine) where() string {
	if e.dir == "" {
		return "(shipped)"
	}
	return e.dir
}

func (e *Engine) load(ctx context.Context) (*compiled, error) {
	fsys := Shipped()
	if e.dir != "" {
		fsys = os.DirFS(e.dir)
	}
	b, err := LoadBundle(fsys)
	if err != nil {
		return nil, err
	}
	return prepare(ctx, b)
}

// Reload re-reads the bundle. On failure the current one stays in force,
// and the error is logged, counted and reported by Status.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.load(ctx)
	if err != nil {
		e.lastErr = err
		e.errors.Add(1)
		e.log.Error("policy bundle refused; the previous one stays in force",
			"dir", e.where(), "revision_in_force", e.cur.Load().revision, "error", err)
		return err
	}
	e.lastErr = nil
	if old := e.cur.Swap(c); old.revision != c.revision {
		e.log.Info("policy bundle loaded", "dir", e.where(), "revision", c.revision, "previous", old.revision)
	}
	return nil
}

// Status reports the revision in force and the last load error.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Revision: e.cur.Load().revision, LoadErrors: e.errors.Load()}
	if e.lastErr != nil {
		s.LastError = e.lastErr.Error()
	}
	return s
}

// ErrUndefined is returned when the bundle does not define the decision:
// the gateway fails closed on it like on any evaluation error.
var ErrUndefined = errors.New("policy decision is undefined")

// Decide evaluates the policy for one request, or reuses the decision
// made for an identical input under the same bundle (Decision.Reused).
// The returned decision is shared: callers must not modify it.
func (e *Engine) Decide(ctx context.Context, in *Input) (*Decision, error) {
	c := e.cur.Load()
	key, err := cacheKey(c.revision, in)
	if err != nil {
		return nil, err
	}
	if d, ok := e.cache.Get(key); ok {
		reused := *d
		reused.Reused = true
		return &reused, nil
	}
	d, err := e.evaluate(ctx, c, in)
	if err != nil {
		return nil, err
	}
	e.cache.Add(key, d)
	return d, nil
}

// cacheKey is the revision and every field of the input but the request
// id, which is the only one that differs between otherwise identical
// requests. It is built by hand: json.Marshal made it the dearest part of
// a reused decision.
func cacheKey(revision string, in *Input) (string, error) {
	b := make([]byte, 0, 256+128*len(in.Candidates))
	b = append(b, revision...)
	sep := func() { b = append(b, 0) }
	str := func(s string) { sep(); b = strconv.AppendQuote(b, s) }
	num := func(n int64) { sep(); b = strconv.AppendInt(b, n, 10) }
	flt := func(f float64) { sep(); b = strconv.AppendFloat(b, f, 'g', -1, 64) }
	flag := func(v bool) { sep(); b = strconv.AppendBool(b, v) }
	optF := func(f *float64) {
		if f == nil {
			str("-")
		} else {
			flt(*f)
		}
	}
	optI := func(n *int64) {
		if n == nil {
			str("-")
		} else {
			num(*n)
		}
	}
	r := in.Request
	str(r.Operation)
	str(r.Model)
	flag(r.Stream)
	num(r.EstimatedInputTokens)
	num(r.MaxOutputTokens)
	str(r.DataClass)
	str(r.OriginRegion)
	num(r.LatencySLOMs)
	for _, l := range slices.Sorted(maps.Keys(r.Entities)) {
		str(l)
		num(int64(r.Entities[l]))
		str(r.Categories[l])
	}
	str("~")
	for _, l := range slices.Sorted(maps.Keys(r.WeakEntities)) {
		str(l)
		num(int64(r.WeakEntities[l]))
		str(r.Categories[l])
	}
	str("|")
	str(in.Subject.Tenant)
	str(in.Subject.Team)
	str(in.Subject.User)
	str(in.Subject.KeyID)
	optF(in.Budget.KeyRemainingUSD)
	optF(in.Budget.TeamRemainingUSD)
	optI(in.Budget.KeyRemainingTokens)
	optI(in.Budget.TeamRemainingTokens)
	str("cache")
	flag(in.Cache.Enabled)
	str(in.Cache.Mode)
	flag(in.Cache.Available)
	str(in.Cache.Match)
	flt(in.Cache.Similarity)
	for _, c := range in.Candidates {
		str("|")
		str(c.ID)
		str(c.Backend)
		str(c.Provider)
		str(c.Kind)
		str(c.Region)
		str(c.Jurisdiction)
		flag(c.Healthy)
		flt(c.P95LatencyMs)
		flt(c.TTFTMs)
		flt(c.EstCostUSD)
		num(c.ContextWindow)
		flag(c.ZeroDataRetention)
	}
	return string(b), nil
}

func (e *Engine) evaluate(ctx context.Context, c *compiled, in *Input) (*Decision, error) {
	v := inputValue(in)
	rs, err := c.pq.Eval(ctx, rego.EvalParsedInput(v), rawResult)
	if err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	return decode(rs, c.revision)
}

// Watch reloads the bundle when files under its directory change, until
// ctx is done. Bursts of events (an editor saving, a checkout) are
// debounced into one reload.
func (e *Engine) Watch(ctx context.Context, debounce time.Duration) error {
	if e.dir == "" {
		return nil // the shipped bundle is compiled in
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", e.dir, err)
	}
	defer w.Close()
	err = fs.WalkDir(os.DirFS(e.dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = w.Add(path.Join(e.dir, p))
		}
		return err
	})
	// A ConfigMap mount swaps its ..data link on update: watching the
	// directory itself catches that; its hidden targets need no watch.
	if err != nil {
		return fmt.Errorf("watching %s: %w", e.dir, err)
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = w.Add(ev.Name)
				}
			}
			timer = time.After(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("policy bundle watch error", "dir", e.dir, "error", err)
		case <-timer:
			timer = nil
			_ = e.Reload(ctx)
		}
	}
}
