// Package ledger is the gateway's cost ledger: every settled request
// appends one Entry, and finance reads totals over a time range, grouped by
// team, model, backend, key, tenant, kind or provider, or exports the
// entries as CSV.
//
// Prometheus numbers are approximate; the ledger is what finance reconciles
// with, so every amount is an exact integer number of pico-USD (1e-12 USD)
// and is printed as an exact decimal, never through a float.
//
// Two Stores are provided: Memory, for a single process and tests, and
// Redis, one stream per UTC day shared by every gateway replica. Spooled
// wraps a Store (Redis) with a durable local spool, so that an entry the
// shared store cannot take right now is written to disk and replayed into
// it later: the ledger loses no entry to a store outage. Entries carry an
// ID and stores record each ID once, which makes retries and replays safe.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Entry is one settled request.
type Entry struct {
	// ID identifies the entry itself, for idempotence: a store records
	// an entry with a given non-empty ID at most once, so an append
	// retried after a lost reply (a timeout after Redis ran it) or
	// replayed from the Spooled store's spool is not counted twice. The
	// gateway makes a random one per settled request (NewID); it is not
	// the request ID, which a client may repeat. An empty ID is never
	// deduplicated.
	ID string
	// Time is when the request was settled. Stores keep it in UTC; the
	// zero time is replaced by the store's current time on Append.
	Time time.Time
	// RequestID and DecisionID identify the request and the routing
	// decision that served it.
	RequestID, DecisionID string
	// Tenant, Team and KeyID are who asked.
	Tenant, Team, KeyID string
	// Model is the public model asked for.
	Model string
	// Backend, Kind, Provider and UpstreamModel are what served it: the
	// backend's name, its kind, its provider and the provider's model.
	Backend, Kind, Provider, UpstreamModel string
	// PromptTokens, CompletionTokens, CachedTokens and CacheWriteTokens
	// are the request's usage.
	PromptTokens, CompletionTokens, CachedTokens, CacheWriteTokens int64
	// CostPicoUSD is the exact cost in pico-USD (1e-12 USD).
	CostPicoUSD int64
	// SavingsPicoUSD is what the team's reference model would have cost
	// minus CostPicoUSD, in pico-USD; it may be negative.
	SavingsPicoUSD int64
	// Estimated is true when the usage was estimated by the gateway
	// rather than reported by the provider.
	Estimated bool
	// Cache is "hit" for a request answered from the response cache
	// (CostPicoUSD 0; SavingsPicoUSD what the stored answer cost when it
	// was made, the backend fields those of the one that made it), and
	// empty otherwise.
	Cache string
}

// NewID returns a random entry ID: 16 random bytes in lowercase hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// Store is where entries are kept. Implementations are safe for
// concurrent use.
type Store interface {
	// Append records one entry, at most once per non-empty Entry.ID.
	Append(ctx context.Context, e Entry) error
	// Range calls f for every entry with from <= Time < to, UTC day by
	// UTC day, oldest first; within a day entries come in time order
	// (Memory) or append order (Redis, where replicas' appends may
	// interleave slightly out of time order). An error from f stops
	// Range and is returned as is.
	Range(ctx context.Context, from, to time.Time, f func(Entry) error) error
}

// Group is what Totals groups entries by.
type Group string

// The groups Totals knows.
const (
	ByTeam     Group = "team"     // Entry.Team
	ByModel    Group = "model"    // Entry.Model, the public model
	ByBackend  Group = "backend"  // Entry.Backend
	ByKey      Group = "key"      // Entry.KeyID
	ByTenant   Group = "tenant"   // Entry.Tenant
	ByKind     Group = "kind"     // Entry.Kind
	ByProvider Group = "provider" // Entry.Provider
	ByNothing  Group = ""         // one total over every entry
)

// groups lists every Group, in the order error messages name them.
var groups = []Group{ByTeam, ByModel, ByBackend, ByKey, ByTenant, ByKind, ByProvider, ByNothing}

// ErrUnknownGroup is returned (wrapped) for a group name that is not one
// of the Group constants.
var ErrUnknownGroup = errors.New("ledger: unknown group")

// ParseGroup returns the Group named s (case and surrounding spaces are
// ignored; "" is the single total), or an error wrapping ErrUnknownGroup.
func ParseGroup(s string) (Group, error) {
	g := Group(strings.ToLower(strings.TrimSpace(s)))
	if g.valid() {
		return g, nil
	}
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, fmt.Sprintf("%q", string(g)))
	}
	return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknownGroup, s, strings.Join(names, ", "))
}

func (g Group) valid() bool {
	switch g {
	case ByTeam, ByModel, ByBackend, ByKey, ByTenant, ByKind, ByProvider, ByNothing:
		return true
	}
	return false
}

// of is the entry's value for the group.
func (g Group) of(e *Entry) string {
	switch g {
	case ByTeam:
		return e.Team
	case ByModel:
		return e.Model
	case ByBackend:
		return e.Backend
	case ByKey:
		return e.KeyID
	case ByTenant:
		return e.Tenant
	case ByKind:
		return e.Kind
	case ByProvider:
		return e.Provider
	}
	return ""
}

const day = 24 * time.Hour

// dayStart is the start (00:00 UTC) of t's UTC day.
func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
