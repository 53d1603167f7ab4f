package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is one stored response.
type Record struct {
	ID        string            `json:"id"`
	Tenant    string            `json:"tenant"` // owner: only the same tenant may read or delete
	KeyID     string            `json:"key_id"`
	Model     string            `json:"model"`
	CreatedAt int64             `json:"created_at"`
	Response  json.RawMessage   `json:"response"`           // the Response object as returned to the client
	Items     []json.RawMessage `json:"items"`              // the whole conversation up to and including this response's output, in order
	Entities  map[string]int    `json:"entities,omitempty"` // sensitive-data counts found in the conversation so far (labels only)
}

// Store keeps Records for a time.
type Store interface {
	// Put stores r under (r.Tenant, r.ID) for ttl, replacing a record
	// already there. r.Tenant and r.ID must not be empty, ttl must be
	// positive, r.Response and every item must be valid JSON, and the
	// record at most MaxRecordBytes (ErrTooLarge).
	Put(ctx context.Context, r Record, ttl time.Duration) error
	// Get returns ErrNotFound for an unknown, expired or other tenant's id
	// (never reveal another tenant's ids exist).
	Get(ctx context.Context, tenant, id string) (Record, error)
	// Delete removes tenant's record id; ErrNotFound likewise.
	Delete(ctx context.Context, tenant, id string) error
}

// MaxRecordBytes bounds one record: its JSON encoding (Redis) or its
// content (Memory) may be at most this many bytes.
const MaxRecordBytes = 16 << 20

var (
	// ErrNotFound is Get's and Delete's answer for an id that is unknown,
	// expired, or another tenant's.
	ErrNotFound = errors.New("conversations: not found")
	// ErrTooLarge is Put's answer for a record above MaxRecordBytes, or
	// above a Memory store's maxBytes.
	ErrTooLarge = errors.New("conversations: record too large")
)

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
)

// check validates what Put is given, before anything is stored.
func check(ctx context.Context, r *Record, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case r.Tenant == "":
		return errors.New("conversations: record without a tenant")
	case r.ID == "":
		return errors.New("conversations: record without an id")
	case ttl <= 0:
		return fmt.Errorf("conversations: ttl %v is not positive", ttl)
	}
	// Memory compacts and Redis encodes, both validating, but an invalid
	// value should be refused the same way by both.
	if !json.Valid(r.Response) {
		return errors.New("conversations: response is not valid JSON")
	}
	for i, it := range r.Items {
		if !json.Valid(it) {
			return fmt.Errorf("conversations: item %d is not valid JSON", i)
		}
	}
	return nil
}
