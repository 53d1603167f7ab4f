package gateway

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/ledger"
)

// costReport is the JSON of GET /v1/switchyard/costs/report: everything
// the cost dashboard shows for one range, filter and stacking.
type costReport struct {
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Interval string            `json:"interval"`
	StackBy  string            `json:"stack_by"`
	Filter   map[string]string `json:"filter"`
	// Total is the filtered entries' sum.
	Total ledger.Total `json:"total"`
	// Buckets and Series are the spend over time, one series per StackBy
	// value (the cheapest merged into one with "other": true).
	Buckets []time.Time    `json:"buckets"`
	Series  []reportSeries `json:"series"`
	// Top are the top spenders per dimension (team, key, tenant, model).
	Top map[string][]ledger.Total `json:"top"`
	// LocalShare is the share of tokens and requests served by local
	// (embedded) and self-hosted backends, with the totals per kind.
	LocalShare localShare `json:"local_share"`
	// Savings compare each team's spend with its reference model.
	Savings savingsReport `json:"savings"`
	// Budgets are the USD budgets of the quota limits (team, tenant and
	// key scopes) in their current period, whatever the range.
	Budgets []ledger.BudgetStatus `json:"budgets"`
	// BudgetsConfigured is how many USD budgets the quota limits set,
	// whatever the filter: with none in Budgets, the page tells "none
	// configured" (0) from "none for this selection".
	BudgetsConfigured int `json:"budgets_configured"`
	// Dimensions are the values in the range, for the filters.
	Dimensions map[string][]string `json:"dimensions"`
	Pending    ledger.Pending      `json:"pending"`
}

type reportSeries struct {
	Group  string        `json:"group"`
	Other  bool          `json:"other,omitempty"`
	Groups int           `json:"groups"`
	Total  ledger.Total  `json:"total"`
	Points []reportPoint `json:"points"`
}

// reportPoint is one bucket of a series: the fields a stacked chart and
// its CSV need.
type reportPoint struct {
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CostUSD          string `json:"cost_usd"`
	SavingsUSD       string `json:"savings_usd"`
}

type localShare struct {
	// Tokens and Requests are local+self-hosted over all, as fractions
	// in [0, 1]; null without traffic.
	Tokens   *float64       `json:"tokens"`
	Requests *float64       `json:"requests"`
	ByKind   []ledger.Total `json:"by_kind"`
}

type savingsReport struct {
	// Formula says how savings are computed, for the page to show.
	Formula          string       `json:"formula"`
	CostUSD          string       `json:"cost_usd"`
	ReferenceCostUSD string       `json:"reference_cost_usd"`
	SavingsUSD       string       `json:"savings_usd"`
	Teams            []teamSaving `json:"teams"`
}

type teamSaving struct {
	Team string `json:"team"`
	// ReferenceModel is the team's reference model now (ledger's
	// reference_models); the entries were priced when they were settled.
	ReferenceModel   string `json:"reference_model"`
	Requests         int64  `json:"requests"`
	CostUSD          string `json:"cost_usd"`
	ReferenceCostUSD string `json:"reference_cost_usd"`
	SavingsUSD       string `json:"savings_usd"`
}

const savingsFormula = "savings = Σ over requests of (the request's tokens priced at its team's reference model) − (what the request cost); " +
	"for an answer from the response cache, what the stored answer cost when it was made. " +
	"Positive: running locally, on a cheaper model or from the cache saved that much; negative: the requests cost more than the reference model would have."

// reportFilters are the filter query parameters and the ledger field
// each sets.
var reportFilters = []struct {
	param string
	set   func(*ledger.Filter, string)
}{
	{"team", func(f *ledger.Filter, v string) { f.Team = v }},
	{"tenant", func(f *ledger.Filter, v string) { f.Tenant = v }},
	{"model", func(f *ledger.Filter, v string) { f.Model = v }},
	{"kind", func(f *ledger.Filter, v string) { f.Kind = v }},
	{"key", func(f *ledger.Filter, v string) { f.KeyID = v }},
	{"backend", func(f *ledger.Filter, v string) { f.Backend = v }},
	{"provider", func(f *ledger.Filter, v string) { f.Provider = v }},
}

// costsReport is GET /v1/switchyard/costs/report: the cost dashboard's
// data for [from, to) (RFC 3339 or YYYY-MM-DD; default the current UTC
// month), in buckets of interval (hour or day; default hour up to two
// days, else day), stacked by stack_by (team, model, backend, key,
// tenant, kind, provider; default team), keeping only the entries that
// match every filter given (team, tenant, model, kind, key, backend,
// provider). format=csv returns the series as shown, one row per bucket
// and stacked group; format=json (the default) the report; format is
// read in any case, and any other value is a 400. A range of more than
// ledger.MaxBuckets intervals is a 400 naming interval, whose advice
// depends on the interval asked for (tooManyIntervals).
func (s *Server) costsReport(c *fiber.Ctx) error {
	pending := s.ledgerPending()
	c.Set(HeaderLedgerPending, strconv.FormatInt(pending.Entries, 10))
	now := time.Now().UTC()
	q := ledger.ReportQuery{From: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC), To: now.Add(time.Second)}
	var err error
	if v := c.Query("from"); v != "" {
		if q.From, err = parseTime(v); err != nil {
			return invalidRequest("invalid_value", "from", "from must be RFC 3339 or YYYY-MM-DD.")
		}
	}
	if v := c.Query("to"); v != "" {
		if q.To, err = parseTime(v); err != nil {
			return invalidRequest("invalid_value", "to", "to must be RFC 3339 or YYYY-MM-DD.")
		}
	}
	if !q.To.After(q.From) {
		return invalidRequest("invalid_value", "to", "to must be after from.")
	}
	switch v := c.Query("interval"); v {
	case "hour":
		q.Interval = time.Hour
	case "day":
		q.Interval = 24 * time.Hour
	case "", "auto":
		q.Interval = 24 * time.Hour
		if q.To.Sub(q.From) <= 48*time.Hour {
			q.Interval = time.Hour
		}
	default:
		return invalidRequest("invalid_value", "interval", "interval must be hour, day or auto.")
	}
	csvOut, apiErr := parseFormat(c.Query("format"))
	if apiErr != nil {
		return apiErr
	}
	if q.StackBy, err = ledger.ParseGroup(c.Query("stack_by", "team")); err != nil || q.StackBy == ledger.ByNothing {
		return invalidRequest("invalid_value", "stack_by", "stack_by must be one of team, model, backend, key, tenant, kind, provider.")
	}
	filter := map[string]string{}
	for _, f := range reportFilters {
		if v := c.Query(f.param); v != "" {
			f.set(&q.Filter, v)
			filter[f.param] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := ledger.RunReport(ctx, s.ledger, q)
	if errors.Is(err, ledger.ErrTooManyBuckets) {
		return tooManyIntervals(q.From, q.To, q.Interval)
	}
	if err != nil {
		return ledgerError(err)
	}
	if csvOut {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="switchyard-cost-report.csv"`)
		return c.Send(reportCSV(rep, q.StackBy))
	}
	budgets, err := ledger.BudgetReport(ctx, s.ledger, now, s.budgets(q.Filter))
	if err != nil {
		return ledgerError(err)
	}
	out := costReport{
		From: q.From, To: q.To, Interval: "day", StackBy: string(q.StackBy), Filter: filter,
		Total: rep.Total, Buckets: rep.Buckets, Series: make([]reportSeries, len(rep.Series)),
		Top: map[string][]ledger.Total{}, Dimensions: map[string][]string{}, Budgets: budgets,
		BudgetsConfigured: len(s.budgets(ledger.Filter{})), Pending: pending,
		LocalShare: shareOf(rep.ByKind), Savings: s.savingsOf(rep),
	}
	if q.Interval == time.Hour {
		out.Interval = "hour"
	}
	if out.Buckets == nil {
		out.Buckets = []time.Time{}
	}
	for i, sr := range rep.Series {
		pts := make([]reportPoint, len(sr.Points))
		for j, p := range sr.Points {
			pts[j] = reportPoint{Requests: p.Requests, PromptTokens: p.PromptTokens, CompletionTokens: p.CompletionTokens,
				CostUSD: p.CostUSD, SavingsUSD: p.SavingsUSD}
		}
		out.Series[i] = reportSeries{Group: sr.Group, Other: sr.Other, Groups: sr.Groups, Total: sr.Total, Points: pts}
	}
	for g, ts := range rep.Top {
		out.Top[string(g)] = ts
	}
	for g, vs := range rep.Dimensions {
		if g == ledger.ByKey {
			out.Dimensions["key"] = vs
			continue
		}
		out.Dimensions[string(g)] = vs
	}
	return c.JSON(out)
}

// tooManyIntervals is the 400 for a report range of more than
// ledger.MaxBuckets intervals: by the hour it suggests interval=day when
// the range fits in days, and a shorter range otherwise.
func tooManyIntervals(from, to time.Time, interval time.Duration) *APIError {
	if interval == time.Hour {
		if _, err := ledger.Buckets(from, to, 24*time.Hour); err == nil {
			return invalidRequest("invalid_value", "interval",
				"The range holds more than %d hourly intervals: choose interval=day or a shorter range (at most %d hours).",
				ledger.MaxBuckets, ledger.MaxBuckets)
		}
		return invalidRequest("invalid_value", "interval",
			"The range holds more than %d intervals, by the hour or by the day: choose a shorter range (at most %d days, with interval=day).",
			ledger.MaxBuckets, ledger.MaxBuckets)
	}
	return invalidRequest("invalid_value", "interval",
		"The range holds more than %d daily intervals: choose a shorter range (at most %d days).", ledger.MaxBuckets, ledger.MaxBuckets)
}

// reportCSV is the report's series as shown: per bucket and stacked
// group, the requests, tokens, cost and savings.
func reportCSV(rep *ledger.Report, by ledger.Group) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"bucket_start", string(by), "requests", "prompt_tokens", "completion_tokens", "cost_usd", "savings_usd"})
	for i, b := range rep.Buckets {
		for _, sr := range rep.Series {
			p := sr.Points[i]
			g := csvText(sr.Group)
			if sr.Other {
				g = "(other: " + strconv.Itoa(sr.Groups) + ")"
			}
			_ = w.Write([]string{b.Format(time.RFC3339), g, strconv.FormatInt(p.Requests, 10),
				strconv.FormatInt(p.PromptTokens, 10), strconv.FormatInt(p.CompletionTokens, 10), p.CostUSD, p.SavingsUSD})
		}
	}
	w.Flush()
	return buf.Bytes()
}

// csvText keeps a spreadsheet from reading a cell as a formula.
func csvText(s string) string {
	if s != "" && strings.ContainsAny(s[:1], "=+-@\t\r") {
		return "'" + s
	}
	return s
}

// budgets are the quota limits' USD budgets, as the ledger reports them;
// with a team, tenant or key filter, only the budgets of that subject.
func (s *Server) budgets(f ledger.Filter) []ledger.Budget {
	var out []ledger.Budget
	for _, l := range s.cfg.Quotas.Limits {
		scope := ledger.Group(l.Scope)
		want := map[ledger.Group]string{ledger.ByTeam: f.Team, ledger.ByTenant: f.Tenant, ledger.ByKey: f.KeyID}
		id := l.ID
		if w := want[scope]; w != "" {
			if id != "" && id != w {
				continue
			}
			id = w
		} else if f.Team != "" || f.Tenant != "" || f.KeyID != "" {
			continue
		}
		for period, usd := range map[string]float64{ledger.PeriodDay: l.USDPerDay, ledger.PeriodMonth: l.USDPerMonth} {
			if usd > 0 {
				out = append(out, ledger.Budget{Scope: scope, ID: id, Period: period, LimitPicoUSD: microUSD(usd) * 1_000_000})
			}
		}
	}
	return out
}

// shareOf is the local and self-hosted share of the kinds' totals.
func shareOf(kinds []ledger.Total) localShare {
	var local, all, localReq, allReq float64
	for _, k := range kinds {
		tok := float64(k.PromptTokens + k.CompletionTokens)
		all += tok
		allReq += float64(k.Requests)
		if k.Group == "local" || k.Group == "selfhosted" {
			local += tok
			localReq += float64(k.Requests)
		}
	}
	out := localShare{ByKind: kinds}
	if all > 0 {
		v := local / all
		out.Tokens = &v
	}
	if allReq > 0 {
		v := localReq / allReq
		out.Requests = &v
	}
	if out.ByKind == nil {
		out.ByKind = []ledger.Total{}
	}
	return out
}

// savingsOf explains the report's savings per team.
func (s *Server) savingsOf(rep *ledger.Report) savingsReport {
	out := savingsReport{Formula: savingsFormula, Teams: make([]teamSaving, 0, len(rep.ByTeam))}
	for _, t := range rep.ByTeam {
		ref, ok := s.cfg.Ledger.ReferenceModels[t.Group]
		if !ok {
			ref = s.cfg.Ledger.ReferenceModels["default"]
		}
		out.Teams = append(out.Teams, teamSaving{Team: t.Group, ReferenceModel: ref, Requests: t.Requests,
			CostUSD: t.CostUSD, ReferenceCostUSD: ledger.FormatUSD(t.CostPicoUSD + t.SavingsPicoUSD), SavingsUSD: t.SavingsUSD})
	}
	out.CostUSD, out.SavingsUSD = rep.Total.CostUSD, rep.Total.SavingsUSD
	out.ReferenceCostUSD = ledger.FormatUSD(rep.Total.CostPicoUSD + rep.Total.SavingsPicoUSD)
	return out
}
