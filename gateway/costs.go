package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/ledger"
)

// LedgerSpoolDir is the spool's directory under config data_dir.
const LedgerSpoolDir = "ledger-spool"

// ledgerCloseTimeout bounds the spool's last replay at shutdown; what it
// does not replay stays on disk for the next start.
const ledgerCloseTimeout = time.Second

// openLedger builds the cost ledger: in memory, or in the quotas' Redis so
// every replica appends to one ledger. A Redis ledger is wrapped in a
// durable local spool (ledger.Spooled) in <data_dir>/ledger-spool,
// created with mode 0700, bounded by ledger.spool_limit: an entry Redis
// does not take (down, slow, failing over) is written there and replayed
// into Redis when it is back, so that a Redis outage loses no entry; each
// entry's ID keeps a retried or replayed entry from being counted twice.
// It is an error when the directory cannot be created or is used by
// another process. The replayer runs until the returned close function,
// which makes one last replay attempt (at most ledgerCloseTimeout) and
// leaves what is still pending on disk for the next start.
func openLedger(cfg *config.Config, log *slog.Logger, shared *sharedRedis) (ledger.Store, func() error, error) {
	if cfg.Ledger.Store != "redis" {
		return ledger.NewMemory(cfg.Ledger.Retention, nil), func() error { return nil }, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := ledger.NewRedis(shared.bg, "sy", cfg.Ledger.Retention, ledger.WithBatcher(shared.later), ledger.WithShards(cfg.Ledger.Shards))
	spool, err := ledger.OpenSpooled(store, filepath.Join(cfg.DataDir, LedgerSpoolDir),
		ledger.SpoolOptions{Limit: int64(cfg.Ledger.SpoolLimit), Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("cost ledger: %w", err)
	}
	spool.Start(context.Background())
	return spool, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), ledgerCloseTimeout)
		defer cancel()
		return spool.Close(ctx)
	}, nil
}

// spooledLedger is a ledger with a spool: what it holds that the shared
// store does not have yet, and what it had to refuse.
type spooledLedger interface {
	Pending() ledger.Pending
	Refused() int64
}

// ledgerPending is what the ledger's spool holds; zeros without one.
func (s *Server) ledgerPending() ledger.Pending {
	if sp, ok := s.ledger.(spooledLedger); ok {
		return sp.Pending()
	}
	return ledger.Pending{}
}

// registerLedgerMetrics exports the spool's state: entries and bytes
// waiting for replay (gauges) and entries refused, hence lost (a
// counter). Without a spool they stay at zero.
func (s *Server) registerLedgerMetrics() error {
	pending, err := s.tel.Meter.Int64ObservableGauge("switchyard.ledger.pending",
		metric.WithDescription("Cost ledger entries spooled locally, waiting to be replayed into the shared store."))
	if err != nil {
		return err
	}
	pendingBytes, err := s.tel.Meter.Int64ObservableGauge("switchyard.ledger.pending_bytes",
		metric.WithDescription("Size of the cost ledger's local spool."), metric.WithUnit("By"))
	if err != nil {
		return err
	}
	refused, err := s.tel.Meter.Int64ObservableCounter("switchyard.ledger.refused",
		metric.WithDescription("Cost ledger entries lost: the shared store and the local spool (full) both refused them."))
	if err != nil {
		return err
	}
	_, err = s.tel.Meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		p, n := ledger.Pending{}, int64(0)
		if sp, ok := s.ledger.(spooledLedger); ok {
			p, n = sp.Pending(), sp.Refused()
		}
		o.ObserveInt64(pending, p.Entries)
		o.ObserveInt64(pendingBytes, p.Bytes)
		o.ObserveInt64(refused, n)
		return nil
	}, pending, pendingBytes, refused)
	return err
}

// appendLedger records a settled request, in the background like the
// quota settlement; Shutdown waits for it. Requests that reached no
// backend cost nothing and are not recorded. Each record gets a new
// random entry ID (not the request ID, which a client may repeat), so
// that the spool's replay and retries record it once. The store is tried
// for up to a second; then the spool takes the entry. Only an entry that
// even the spool refused (full: see ledger.Spooled) is lost, and logged
// at error level as "cost ledger append failed" (and counted in
// switchyard.ledger.refused).
func (s *Server) appendLedger(r *record) {
	if r.usage == nil || r.backend == "" {
		return
	}
	b := s.backends[r.backend]
	e := ledger.Entry{
		ID: ledger.NewID(), Time: time.Now().UTC(), RequestID: r.requestID, DecisionID: r.decisionID,
		Model: r.model, Backend: r.backend, Kind: b.Kind, Provider: b.Provider, UpstreamModel: r.upstream,
		PromptTokens: r.usage.PromptTokens, CompletionTokens: r.usage.CompletionTokens,
		CachedTokens: r.usage.CachedTokens, CacheWriteTokens: r.usage.CacheWriteTokens,
		CostPicoUSD: int64(r.cost), SavingsPicoUSD: int64(r.savings), Estimated: r.usage.Estimated,
	}
	if r.cacheHit {
		e.Cache = "hit"
	}
	if p := r.principal; p != nil {
		e.Tenant, e.Team, e.KeyID = p.Tenant, p.Team, p.KeyID
	}
	write := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.ledger.Append(ctx, e); err != nil {
			s.log.Error("cost ledger append failed", "request_id", e.RequestID, "error", err)
		}
	}
	if _, inProcess := s.ledger.(*ledger.Memory); inProcess {
		write() // a few µs under a lock: cheaper than a goroutine
		return
	}
	s.background.goOrRun(write)
}

// HeaderLedgerPending is set on every costs API response to the number of
// ledger entries spooled locally and not yet in the shared store.
const HeaderLedgerPending = "X-Switchyard-Ledger-Pending"

// costs is GET /v1/switchyard/costs?from=&to=&group_by=&format=: totals
// from the ledger between from (inclusive) and to (exclusive), RFC 3339
// or YYYY-MM-DD, default the current UTC month; format=csv exports the
// entries instead (format is json, the default, or csv, in any case).
//
// Its parameters are checked as the report's are, each error a 400 that
// names the parameter: to must be after from, and the range, from the
// Unix epoch on, may cover at most ledger.MaxRangeDays UTC days (fewer
// with a sharded Redis ledger: it reads one stream per day and shard, and
// refuses a range of more than ledger.MaxRangeKeys streams before sending
// anything).
//
// Entries still in this gateway's spool (the shared store was down when
// they were settled) are not in the totals nor the export yet: the JSON
// reports them as "pending": {"entries": N, "bytes": B} (always present;
// zeros without a spool), and every response, CSV and errors included,
// carries the X-Switchyard-Ledger-Pending: N header. Other replicas'
// spools are not counted.
func (s *Server) costs(c *fiber.Ctx) error {
	pending := s.ledgerPending()
	c.Set(HeaderLedgerPending, strconv.FormatInt(pending.Entries, 10))
	now := time.Now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := now.Add(time.Second)
	var err error
	if v := c.Query("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			return invalidRequest("invalid_value", "from", "from must be RFC 3339 or YYYY-MM-DD.")
		}
	}
	if v := c.Query("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			return invalidRequest("invalid_value", "to", "to must be RFC 3339 or YYYY-MM-DD.")
		}
	}
	if !to.After(from) {
		return invalidRequest("invalid_value", "to", "to must be after from.")
	}
	csvOut, apiErr := parseFormat(c.Query("format"))
	if apiErr != nil {
		return apiErr
	}
	if err := ledger.CheckRange(from, to); err != nil {
		return rangeTooLong(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if csvOut {
		var buf bytes.Buffer
		if err := ledger.WriteCSV(ctx, s.ledger, &buf, from, to); err != nil {
			return ledgerError(err)
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="switchyard-costs.csv"`)
		return c.Send(buf.Bytes())
	}
	by, err := ledger.ParseGroup(c.Query("group_by"))
	if err != nil {
		return invalidRequest("invalid_value", "group_by", "group_by must be one of team, model, backend, key, tenant, kind, provider, or empty.")
	}
	totals, err := ledger.Totals(ctx, s.ledger, from, to, by)
	if err != nil {
		return ledgerError(err)
	}
	if totals == nil {
		totals = []ledger.Total{}
	}
	return c.JSON(fiber.Map{"from": from, "to": to, "group_by": string(by), "totals": totals, "pending": pending})
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", v)
}

// parseFormat reads a costs API's format parameter: json (the default)
// or csv, in any case; anything else is a 400 naming format.
func parseFormat(v string) (csv bool, err *APIError) {
	switch strings.ToLower(v) {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	}
	return false, invalidRequest("invalid_value", "format", "format must be json or csv.")
}

// rangeTooLong is the 400 for a range the ledger does not read at once
// (an error wrapping ledger.ErrRangeTooLong).
func rangeTooLong(err error) *APIError {
	msg := fmt.Sprintf("The range covers more than %d UTC days: choose a shorter range.", ledger.MaxRangeDays)
	var rt *ledger.RangeTooLongError
	if errors.As(err, &rt) {
		msg = fmt.Sprintf("The range covers %d UTC days (the ledger holds nothing before 1970-01-01); "+
			"it reads at most %d at once: choose a shorter range.", rt.Days, rt.MaxDays)
	}
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_value", Param: "to", Message: msg, Err: err}
}

// ledgerError is the response to a ledger read that failed: a 400 for a
// range too long for the store, else ledgerUnavailable.
func ledgerError(err error) error {
	if errors.Is(err, ledger.ErrRangeTooLong) {
		return rangeTooLong(err)
	}
	return ledgerUnavailable(err)
}

func ledgerUnavailable(err error) error {
	return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "ledger_unavailable",
		Message: "The cost ledger cannot be read right now.", Err: err}
}
