package ledger

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the header row WriteCSV writes, one column per Entry field.
var CSVHeader = []string{
	"time", "request_id", "decision_id", "tenant", "team", "key_id",
	"model", "backend", "kind", "provider", "upstream_model",
	"prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
	"cost_usd", "savings_usd", "estimated", "cache",
}

// WriteCSV writes CSVHeader and then one row per entry with
// from <= Time < to, in Range's order: the time in RFC 3339 with
// nanoseconds, UTC; tokens as integers; cost and savings as exact decimal
// USD (FormatUSD); estimated as "true" or "false"; cache as "hit" or
// empty.
//
// A text cell that a spreadsheet would take for a formula (one starting
// with =, +, -, @, tab or carriage return; request IDs come from clients)
// is written with a leading apostrophe.
func WriteCSV(ctx context.Context, s Store, w io.Writer, from, to time.Time) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("ledger: write CSV: %w", err)
	}
	row := make([]string, len(CSVHeader))
	err := s.Range(ctx, from, to, func(e Entry) error {
		row = append(row[:0],
			e.Time.UTC().Format(time.RFC3339Nano),
			cell(e.RequestID), cell(e.DecisionID), cell(e.Tenant), cell(e.Team), cell(e.KeyID),
			cell(e.Model), cell(e.Backend), cell(e.Kind), cell(e.Provider), cell(e.UpstreamModel),
			strconv.FormatInt(e.PromptTokens, 10),
			strconv.FormatInt(e.CompletionTokens, 10),
			strconv.FormatInt(e.CachedTokens, 10),
			strconv.FormatInt(e.CacheWriteTokens, 10),
			FormatUSD(e.CostPicoUSD), FormatUSD(e.SavingsPicoUSD),
			strconv.FormatBool(e.Estimated),
			e.Cache,
		)
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("ledger: write CSV: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("ledger: write CSV: %w", err)
	}
	return nil
}

// cell defuses a text value a spreadsheet would evaluate as a formula.
func cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
