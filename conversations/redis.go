package conversations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the Store shared by every gateway replica: one string value per
// record, the Record as JSON, under
//
//	<prefix>:{conv:<tenant>}:<id>
//
// written with SET ... PX <ttl in ms, rounded up> (go-redis sends EX for a
// whole number of seconds, the same thing), so Redis drops it when the TTL
// passes. In the key, "%" and "}" in the tenant are written "%25" and
// "%7D": the tenant then ends at the first "}", so no (tenant, id) pair
// shares a key with another, and another tenant's id is simply not found.
// Get also checks the stored record's tenant and id.
//
// Every operation is one command on one key; the hash tag puts a tenant's
// records in one Redis Cluster slot (a prefix must not contain "{" for
// that). Any Redis version.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a Store on c with every key under prefix ("" means
// "sy").
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = "sy"
	}
	return &Redis{c: c, prefix: prefix}
}

var tenantEscaper = strings.NewReplacer("%", "%25", "}", "%7D")

// Key is the key tenant's record id is stored under.
func (s *Redis) Key(tenant, id string) string {
	return s.prefix + ":{conv:" + tenantEscaper.Replace(tenant) + "}:" + id
}

// Put stores r as JSON for ttl.
func (s *Redis) Put(ctx context.Context, r Record, ttl time.Duration) error {
	if err := check(ctx, &r, ttl); err != nil {
		return err
	}
	v, err := encodeRecord(&r)
	if err != nil {
		return err
	}
	if len(v) > MaxRecordBytes {
		return ErrTooLarge
	}
	ms := (ttl + time.Millisecond - 1) / time.Millisecond
	if err := s.c.Set(ctx, s.Key(r.Tenant, r.ID), v, ms*time.Millisecond).Err(); err != nil {
		return fmt.Errorf("conversations: redis set: %w", err)
	}
	return nil
}

// Get reads tenant's record id.
func (s *Redis) Get(ctx context.Context, tenant, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if tenant == "" || id == "" {
		return Record{}, ErrNotFound
	}
	v, err := s.c.Get(ctx, s.Key(tenant, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("conversations: redis get: %w", err)
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("conversations: decoding %s: %w", id, err)
	}
	if r.Tenant != tenant || r.ID != id {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// Delete removes tenant's record id.
func (s *Redis) Delete(ctx context.Context, tenant, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tenant == "" || id == "" {
		return ErrNotFound
	}
	n, err := s.c.Del(ctx, s.Key(tenant, id)).Result()
	if err != nil {
		return fmt.Errorf("conversations: redis del: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// encodeRecord is r as JSON, its JSON values compacted but not
// HTML-escaped (so they come back as Memory returns them).
func encodeRecord(r *Record) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(r); err != nil {
		return nil, fmt.Errorf("conversations: encoding %s: %w", r.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
