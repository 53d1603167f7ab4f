package gateway

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/ledger"
)

// newLedger builds the cost ledger: in memory, or in the quotas' Redis so
// every replica appends to one ledger.
func newLedger(cfg *config.Config) (ledger.Store, func() error) {
	if cfg.Ledger.Store != "redis" {
		return ledger.NewMemory(cfg.Ledger.Retention, nil), func() error { return nil }
	}
	c := redisClient(cfg.Quotas.Redis)
	return ledger.NewRedis(c, "sy", cfg.Ledger.Retention), c.Close
}

// appendLedger records a settled request, in the background like the
// quota settlement; Shutdown waits for it. Requests that reached no
// backend cost nothing and are not recorded.
func (s *Server) appendLedger(r *record) {
	if r.usage == nil || r.backend == "" {
		return
	}
	b := s.backends[r.backend]
	e := ledger.Entry{
		Time: time.Now().UTC(), RequestID: r.requestID, DecisionID: r.decisionID,
		Model: r.model, Backend: r.backend, Kind: b.Kind, Provider: b.Provider, UpstreamModel: r.upstream,
		PromptTokens: r.usage.PromptTokens, CompletionTokens: r.usage.CompletionTokens,
		CachedTokens: r.usage.CachedTokens, CacheWriteTokens: r.usage.CacheWriteTokens,
		CostPicoUSD: int64(r.cost), SavingsPicoUSD: int64(r.savings), Estimated: r.usage.Estimated,
	}
	if p := r.principal; p != nil {
		e.Tenant, e.Team, e.KeyID = p.Tenant, p.Team, p.KeyID
	}
	s.background.goOrRun(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.ledger.Append(ctx, e); err != nil {
			s.log.Error("cost ledger append failed", "request_id", e.RequestID, "error", err)
		}
	})
}

// costs is GET /v1/switchyard/costs?from=&to=&group_by=&format=: totals
// from the ledger between from (inclusive) and to (exclusive), RFC 3339
// or YYYY-MM-DD, default the current UTC month; format=csv exports the
// entries instead.
func (s *Server) costs(c *fiber.Ctx) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.Query("format") == "csv" {
		var buf bytes.Buffer
		if err := ledger.WriteCSV(ctx, s.ledger, &buf, from, to); err != nil {
			return ledgerUnavailable(err)
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
		return ledgerUnavailable(err)
	}
	if totals == nil {
		totals = []ledger.Total{}
	}
	return c.JSON(fiber.Map{"from": from, "to": to, "group_by": string(by), "totals": totals})
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", v)
}

func ledgerUnavailable(err error) error {
	return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "ledger_unavailable",
		Message: "The cost ledger cannot be read right now.", Err: err}
}
