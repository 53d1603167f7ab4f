package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redisbatch"
)

// Redis is the Store shared by every gateway replica: one Redis stream
// per UTC day,
//
//	<prefix>:ledger:{<yyyy-mm-dd>}
//
// with one stream entry per Entry, appended with XADD (auto ID) and the
// fields below as strings, always all of them in the same order (so the
// stream stores the names once per listpack node).
//
// Appends are exactly-once per Entry.ID: a Lua script (EVALSHA, EVAL when
// the server does not have it cached) checks the day's set of IDs
//
//	<prefix>:ledger-ids:{<yyyy-mm-dd>}
//
// and, only for an ID it does not hold, XADDs the entry and SADDs the ID,
// atomically. So an append retried after its reply was lost (a timeout
// after Redis had run it), or replayed from a spool, is recorded once. An
// entry without an ID is always appended. With retention > 0 every
// append also sets EXPIRE retention + 1 day on the day's stream and ID
// set, in the same script; with retention <= 0 nothing expires.
//
// Range reads the days overlapping [from, to): first XLEN of up to 1000
// days per round trip (pipelined), then XRANGE in pages of 1000 on the
// days that have entries, keeping those inside [from, to). Within a day
// entries come in append order, which across replicas may differ slightly
// from time order. Probing costs one round trip per 1000 days of the
// range, so from is first raised to what retention keeps and to the Unix
// epoch (Append refuses earlier times): a range from the zero time is
// about 21 round trips on an empty ledger without retention. A range of
// more days than MaxDays (MaxRangeDays, or MaxRangeKeys/shards streams)
// is refused before any command is sent.
//
// The hash tag puts a whole day in one cluster slot; every key of one call
// is in one slot, so it works on Redis Cluster too. One slot is one
// primary, whose core then takes every append of the day: WithShards
// spreads a day over n streams (and ID sets), <prefix>:ledger:{<day>} and
// <prefix>:ledger:{<day>/1} … {<day>/n-1}, an entry going to the one its
// ID hashes to (so its exactly-once check still sees every earlier try).
// Range then reads every shard of a day, one after another: within a day,
// entries come shard by shard. Redis 5 or later.
type Redis struct {
	c         redis.UniversalClient
	prefix    string
	shards    int
	retention time.Duration
	now       func() time.Time    // replaced by tests
	batch     *redisbatch.Batcher // concurrent appends, pipelined together
}

// RedisOption configures a Redis store.
type RedisOption func(*Redis)

// WithShards spreads each day over n streams (n <= 1: one). Range reads
// only shards below n: lowering it hides the entries of the higher shards
// until their days expire.
func WithShards(n int) RedisOption { return func(r *Redis) { r.shards = max(n, 1) } }

// WithBatcher sends appends through b, which may linger and may be shared
// with other writes made off the request path (quota settlements). By
// default the store has its own, which does not linger.
func WithBatcher(b *redisbatch.Batcher) RedisOption { return func(r *Redis) { r.batch = b } }

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on c with every key under prefix ("" means
// "sy"). retention is how long entries are kept: older entries are not
// appended nor returned by Range, and day keys expire retention + 1 day
// after their last append; retention <= 0 keeps everything.
func NewRedis(c redis.UniversalClient, prefix string, retention time.Duration, opts ...RedisOption) *Redis {
	if prefix == "" {
		prefix = "sy"
	}
	r := &Redis{c: c, prefix: prefix, shards: 1, retention: retention, now: time.Now, batch: redisbatch.New(c)}
	for _, o := range opts {
		o(r)
	}
	return r
}

const (
	// pageSize is the XRANGE COUNT.
	pageSize = 1000
	// lenBatch is how many days' XLEN go in one round trip.
	lenBatch = 1000
)

// Key is the stream holding the entries of t's UTC day (its first shard).
func (r *Redis) Key(t time.Time) string { return r.shardKey("ledger", t, 0) }

// IDsKey is the set of the IDs of the entries of t's UTC day (its first
// shard); its hash tag is Key's, so both are in one cluster slot.
func (r *Redis) IDsKey(t time.Time) string { return r.shardKey("ledger-ids", t, 0) }

// shardKey is kind's key for shard i of t's day.
func (r *Redis) shardKey(kind string, t time.Time, i int) string {
	day := t.UTC().Format(time.DateOnly)
	if i == 0 {
		return r.prefix + ":" + kind + ":{" + day + "}"
	}
	return r.prefix + ":" + kind + ":{" + day + "/" + strconv.Itoa(i) + "}"
}

// shardOf is the shard of an entry: its ID's hash (FNV-1a), or shard 0
// for an entry without one.
func (r *Redis) shardOf(id string) int {
	if r.shards <= 1 || id == "" {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(r.shards))
}

// The stream fields, in the order written.
const (
	fTime             = "time" // RFC 3339 with nanoseconds, UTC
	fRequestID        = "request_id"
	fDecisionID       = "decision_id"
	fTenant           = "tenant"
	fTeam             = "team"
	fKeyID            = "key_id"
	fModel            = "model"
	fBackend          = "backend"
	fKind             = "kind"
	fProvider         = "provider"
	fUpstreamModel    = "upstream_model"
	fPromptTokens     = "prompt_tokens"
	fCompletionTokens = "completion_tokens"
	fCachedTokens     = "cached_tokens"
	fCacheWriteTokens = "cache_write_tokens"
	fCostPicoUSD      = "cost_pico_usd"
	fSavingsPicoUSD   = "savings_pico_usd"
	fEstimated        = "estimated" // "1" or "0"
	fID               = "id"        // Entry.ID; absent from entries older than IDs
	fCache            = "cache"     // Entry.Cache; absent when empty
)

func encode(e *Entry) []any {
	est := "0"
	if e.Estimated {
		est = "1"
	}
	out := []any{
		fTime, e.Time.UTC().Format(time.RFC3339Nano),
		fRequestID, e.RequestID,
		fDecisionID, e.DecisionID,
		fTenant, e.Tenant,
		fTeam, e.Team,
		fKeyID, e.KeyID,
		fModel, e.Model,
		fBackend, e.Backend,
		fKind, e.Kind,
		fProvider, e.Provider,
		fUpstreamModel, e.UpstreamModel,
		fPromptTokens, strconv.FormatInt(e.PromptTokens, 10),
		fCompletionTokens, strconv.FormatInt(e.CompletionTokens, 10),
		fCachedTokens, strconv.FormatInt(e.CachedTokens, 10),
		fCacheWriteTokens, strconv.FormatInt(e.CacheWriteTokens, 10),
		fCostPicoUSD, strconv.FormatInt(e.CostPicoUSD, 10),
		fSavingsPicoUSD, strconv.FormatInt(e.SavingsPicoUSD, 10),
		fEstimated, est,
		fID, e.ID,
	}
	if e.Cache != "" {
		out = append(out, fCache, e.Cache)
	}
	return out
}

// decode reads a stream entry back. A missing field is its zero value
// (a missing time is an error); unknown fields are ignored.
func decode(v map[string]any) (Entry, error) {
	str := func(k string) string { s, _ := v[k].(string); return s }
	var e Entry
	var err error
	num := func(k string, dst *int64) {
		s := str(k)
		if s == "" || err != nil {
			return
		}
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil {
			err = fmt.Errorf("field %s: %w", k, perr)
			return
		}
		*dst = n
	}
	ts := str(fTime)
	if ts == "" {
		return Entry{}, errors.New("no time field")
	}
	t, perr := time.Parse(time.RFC3339Nano, ts)
	if perr != nil {
		return Entry{}, fmt.Errorf("field %s: %w", fTime, perr)
	}
	e.Time = t.UTC()
	e.ID, e.Cache = str(fID), str(fCache)
	e.RequestID, e.DecisionID = str(fRequestID), str(fDecisionID)
	e.Tenant, e.Team, e.KeyID = str(fTenant), str(fTeam), str(fKeyID)
	e.Model, e.Backend, e.Kind = str(fModel), str(fBackend), str(fKind)
	e.Provider, e.UpstreamModel = str(fProvider), str(fUpstreamModel)
	num(fPromptTokens, &e.PromptTokens)
	num(fCompletionTokens, &e.CompletionTokens)
	num(fCachedTokens, &e.CachedTokens)
	num(fCacheWriteTokens, &e.CacheWriteTokens)
	num(fCostPicoUSD, &e.CostPicoUSD)
	num(fSavingsPicoUSD, &e.SavingsPicoUSD)
	if err != nil {
		return Entry{}, err
	}
	switch est := str(fEstimated); est {
	case "1":
		e.Estimated = true
	case "0", "":
	default:
		return Entry{}, fmt.Errorf("field %s: %q is not 0 or 1", fEstimated, est)
	}
	return e, nil
}

// ErrBeforeEpoch is returned (wrapped) by Redis.Append for an entry whose
// Time is before the Unix epoch, which Range would not find.
var ErrBeforeEpoch = errors.New("ledger: entry time before 1970-01-01")

// epoch is the earliest time the Redis store holds.
var epoch = time.Unix(0, 0).UTC()

// appendScript appends one entry unless its ID is already recorded.
//
// KEYS[1] is the day's stream, KEYS[2] its set of IDs. ARGV[1] is the ID
// ("": no check), ARGV[2] the TTL in seconds of both keys (0: none), and
// ARGV[3], ARGV[4], ... the entry's fields and values. It returns 1 when
// it appended, 0 for an ID already recorded. XADD comes before SADD: if
// XADD fails (out of memory) nothing is recorded and a retry may append.
var appendScript = redis.NewScript(`
local id = ARGV[1]
if id ~= '' and redis.call('SISMEMBER', KEYS[2], id) == 1 then
  return 0
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
local ttl = tonumber(ARGV[2])
if id ~= '' then
  redis.call('SADD', KEYS[2], id)
  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
end
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
`)

// prepare puts e's Time in UTC (the zero Time is now) and returns the
// script's keys and arguments, or nil keys for an entry older than
// retention. An entry before the epoch is an error wrapping
// ErrBeforeEpoch.
func (r *Redis) prepare(e *Entry, now time.Time) ([]string, []any, error) {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Time.Before(epoch) {
		return nil, nil, fmt.Errorf("%w: %s", ErrBeforeEpoch, e.Time.Format(time.RFC3339Nano))
	}
	if r.retention > 0 && e.Time.Before(now.Add(-r.retention)) {
		return nil, nil, nil
	}
	ttl := int64(0)
	if r.retention > 0 {
		ttl = int64((r.retention + day + time.Second - 1) / time.Second)
	}
	fields := encode(e)
	args := make([]any, 0, 2+len(fields))
	args = append(args, e.ID, ttl)
	args = append(args, fields...)
	shard := r.shardOf(e.ID)
	return []string{r.shardKey("ledger", e.Time, shard), r.shardKey("ledger-ids", e.Time, shard)}, args, nil
}

// Append adds e (with its Time in UTC; the zero Time is now) to its day's
// stream, unless an entry with its non-empty ID is already there: then it
// does nothing and returns nil. An entry older than retention is dropped,
// without an error; one before the Unix epoch is an error wrapping
// ErrBeforeEpoch. The client's own retries are safe (the check and the
// append are one script), and so are the caller's.
func (r *Redis) Append(ctx context.Context, e Entry) error {
	keys, args, err := r.prepare(&e, r.now())
	if err != nil || keys == nil {
		return err
	}
	if err := r.batch.Run(ctx, appendScript, keys, args...).Err(); err != nil {
		return fmt.Errorf("ledger: append to %s: %w", keys[0], err)
	}
	return nil
}

// AppendBatch appends entries as Append does each, in order, pipelined in
// one round trip (per cluster node). Nothing is sent when an entry is
// before the epoch (an error wrapping ErrBeforeEpoch). On an error some
// entries may have been recorded: the batch may be retried whole, since
// their IDs are.
func (r *Redis) AppendBatch(ctx context.Context, es []Entry) error {
	now := r.now()
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, 0, len(es))
	for i := range es {
		e := es[i]
		keys, args, err := r.prepare(&e, now)
		if err != nil {
			return err
		}
		if keys != nil {
			calls = append(calls, call{keys, args})
		}
	}
	if len(calls) == 0 {
		return nil
	}
	if r.batch.Durable() {
		// Each append must be confirmed by the replicas: through the
		// batcher, which pipelines them per primary and WAITs.
		errs := make([]error, len(calls))
		var wg sync.WaitGroup
		for i, c := range calls {
			wg.Go(func() { errs[i] = r.batch.Run(ctx, appendScript, c.keys, c.args...).Err() })
		}
		wg.Wait()
		failed, first := 0, error(nil)
		for _, err := range errs {
			if err != nil {
				failed++
				first = cmp.Or(first, err)
			}
		}
		if first != nil {
			return fmt.Errorf("ledger: %d of %d appends to %s.. failed: %w", failed, len(calls), calls[0].keys[0], first)
		}
		return nil
	}
	run := func(eval func(p redis.Pipeliner, c call) *redis.Cmd) ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(calls))
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = eval(p, c)
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run(func(p redis.Pipeliner, c call) *redis.Cmd { return appendScript.EvalSha(ctx, p, c.keys, c.args...) })
	if err != nil && noScript(cmds) {
		// Not cached on (some) server: again with the script's text. The
		// entries that ran are not appended twice.
		_, err = run(func(p redis.Pipeliner, c call) *redis.Cmd { return appendScript.Eval(ctx, p, c.keys, c.args...) })
	}
	if err != nil {
		return fmt.Errorf("ledger: append %d entries to %s..: %w", len(calls), calls[0].keys[0], err)
	}
	return nil
}

// noScript reports whether one of cmds failed with NOSCRIPT.
func noScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// MaxDays is how many UTC days one Range may cover: MaxRangeDays, or
// fewer with shards, so that a Range probes at most MaxRangeKeys streams.
func (r *Redis) MaxDays() int64 {
	return min(MaxRangeDays, int64(MaxRangeKeys/max(r.shards, 1)))
}

// Range calls f for every entry with from <= Time < to that retention
// still keeps, day by day; within a day in append order. A range that,
// from the epoch or what retention keeps on, covers more than MaxDays UTC
// days is an error wrapping ErrRangeTooLong (a *RangeTooLongError), and
// nothing is sent to Redis.
func (r *Redis) Range(ctx context.Context, from, to time.Time, f func(Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if from.Before(epoch) {
		from = epoch
	}
	if r.retention > 0 {
		if floor := r.now().Add(-r.retention); from.Before(floor) {
			from = floor
		}
	}
	if !from.Before(to) {
		return nil
	}
	if err := checkDays(from, to, r.MaxDays()); err != nil {
		return err // before any command: the range's days are the work
	}
	keys := make([]string, 0, lenBatch)
	lens := make([]*redis.IntCmd, 0, lenBatch)
	for d := dayStart(from); d.Before(to); {
		keys, lens = keys[:0], lens[:0]
		p := r.c.Pipeline()
		for ; d.Before(to) && len(keys)+r.shards <= max(lenBatch, r.shards); d = d.Add(day) {
			for i := range r.shards {
				k := r.shardKey("ledger", d, i)
				keys = append(keys, k)
				lens = append(lens, p.XLen(ctx, k))
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("ledger: XLEN %s..%s: %w", keys[0], keys[len(keys)-1], err)
		}
		for i, k := range keys {
			if lens[i].Val() == 0 {
				continue
			}
			if err := r.rangeDay(ctx, k, from, to, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// rangeDay pages through one day's stream.
func (r *Redis) rangeDay(ctx context.Context, key string, from, to time.Time, f func(Entry) error) error {
	start := "-"
	for {
		msgs, err := r.c.XRangeN(ctx, key, start, "+", pageSize).Result()
		if err != nil {
			return fmt.Errorf("ledger: XRANGE %s %s: %w", key, start, err)
		}
		for _, m := range msgs {
			e, err := decode(m.Values)
			if err != nil {
				return fmt.Errorf("ledger: %s entry %s: %w", key, m.ID, err)
			}
			if e.Time.Before(from) || !e.Time.Before(to) {
				continue
			}
			if err := f(e); err != nil {
				return err
			}
		}
		if len(msgs) < pageSize {
			return nil
		}
		if start, err = nextID(msgs[len(msgs)-1].ID); err != nil {
			return fmt.Errorf("ledger: %s: %w", key, err)
		}
	}
}

// nextID is the smallest stream ID after id ("<ms>-<seq>"), for paging
// without the exclusive "(" range of Redis 6.2.
func nextID(id string) (string, error) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	s, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return "", fmt.Errorf("bad stream ID %q", id)
	}
	if s == ^uint64(0) {
		return strconv.FormatUint(m+1, 10) + "-0", nil
	}
	return ms + "-" + strconv.FormatUint(s+1, 10), nil
}
