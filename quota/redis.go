package quota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redisbatch"
)

// Redis is the Store shared by every gateway replica. Each operation is one
// Lua script (EVALSHA, falling back to EVAL), so a decision is atomic across
// replicas; the scripts of concurrent operations go in one pipeline
// (redisbatch); the scripts read the time from Redis TIME, never from a
// replica's clock, and use integers only (µs, tokens, micro-USD).
//
// Keys, all of one call under one hash tag so the scripts also run on
// Redis Cluster:
//
//	<prefix>:{<tag>}:<Key>:tat   Rate: string "<µs> <ahead>": when it was
//	                             written (Redis time, µs since the epoch)
//	                             and how far the TAT was then ahead, in
//	                             rate units (ns; µs for periods over about
//	                             26 days); expires when the TAT passes
//	<prefix>:{<tag>}:<Key>:bud   Budget: hash spent, reserved, and
//	                             r:<id> -> amount per open reservation
//	<prefix>:{<tag>}:<Key>:exp   Budget: zset id -> expiry (µs) of the open
//	                             reservations; both expire after Period,
//	                             refreshed on every write
//	<prefix>:{<tag>}#res:<id>    reservation record: hash ttl (µs) and
//	                             <tat key> -> units each Rate check took;
//	                             after Settle only done=1. Kept for the
//	                             reservation's ttl + 10 minutes.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	batch  *redisbatch.Batcher // reservations and reads, pipelined together
	later  *redisbatch.Batcher // settlements
}

// RedisOption configures a Redis store.
type RedisOption func(*Redis)

// WithBatchers sends reservations and reads through now, and settlements
// through later (which may linger, and may be shared with other writes
// made off the request path, such as the cost ledger's). By default both
// go through one Batcher of the store's own.
func WithBatchers(now, later *redisbatch.Batcher) RedisOption {
	return func(r *Redis) { r.batch, r.later = now, later }
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on c with every key under prefix ("" means
// "sy"). It needs Redis 5 or later (scripts replicated by effects).
func NewRedis(c redis.UniversalClient, prefix string, opts ...RedisOption) *Redis {
	if prefix == "" {
		prefix = "sy"
	}
	b := redisbatch.New(c)
	r := &Redis{c: c, prefix: prefix, batch: b, later: b}
	for _, o := range opts {
		o(r)
	}
	return r
}

// luaCommon is shared by the scripts: the time, integer formatting, a
// Rate's TAT (stored as "<µs written> <units ahead then>") and the release
// of a Budget's expired reservations.
var luaCommon = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local maxahead = ` + strconv.FormatInt(maxAhead, 10) + `
local function int(x) return string.format('%d', x) end
local function ahead(k, upu)
  local v = redis.call('GET', k)
  if not v then return 0 end
  local sp = string.find(v, ' ', 1, true)
  if not sp then return 0 end
  local d = tonumber(string.sub(v, sp + 1)) - (now - tonumber(string.sub(v, 1, sp - 1))) * upu
  if d < 0 then return 0 end
  return d
end
local function setahead(k, d, upu)
  if d <= 0 then
    redis.call('DEL', k)
    return
  end
  if d > maxahead then d = maxahead end
  redis.call('SET', k, int(now) .. ' ' .. int(d), 'PX', int(math.ceil(d / (upu * 1000))))
end
local function reclaim(h, z)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', int(now))
  if #gone == 0 then return end
  local sum = 0
  for _, rid in ipairs(gone) do
    local f = 'r:' .. rid
    local a = redis.call('HGET', h, f)
    if a then
      sum = sum + tonumber(a)
      redis.call('HDEL', h, f)
    end
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', int(now))
  if sum ~= 0 then
    local left = tonumber(redis.call('HGET', h, 'reserved') or '0') - sum
    if left < 0 then left = 0 end
    redis.call('HSET', h, 'reserved', int(left))
  end
end
`

// reserveScript: KEYS[1] the reservation record, then per check its keys
// (Rate: tat; Budget: bud, exp). ARGV: id, ttl µs, record retention ms,
// then 5 per check: 'r', period (units), cost (units), over (0|1), units
// per µs, or 'b', limit, amount, period ms (0: no expiry), 0. Returns
// {denied index or 0, then per check two integers: Rate units ahead, 0;
// Budget spent, reserved}.
var reserveScript = redis.NewScript(luaCommon + `
local id, ttl, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local rec, rf = KEYS[1], 'r:' .. ARGV[1]
local n = (#ARGV - 3) / 5
local st, denied, ki = {}, 0, 2
for i = 1, n do
  local a = 3 + (i - 1) * 5
  if ARGV[a + 1] == 'r' then
    local d = ahead(KEYS[ki], tonumber(ARGV[a + 5]))
    st[i] = {d, 0}
    if denied == 0 and (ARGV[a + 4] == '1' or d + tonumber(ARGV[a + 3]) > tonumber(ARGV[a + 2])) then denied = i end
    ki = ki + 1
  else
    local h, z = KEYS[ki], KEYS[ki + 1]
    reclaim(h, z)
    local v = redis.call('HMGET', h, 'spent', 'reserved', rf)
    local spent, reserved, old = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
    st[i] = {spent, reserved, old}
    if denied == 0 and spent + reserved - old + tonumber(ARGV[a + 3]) > tonumber(ARGV[a + 2]) then denied = i end
    ki = ki + 2
  end
end
if denied == 0 then
  ki = 2
  for i = 1, n do
    local a = 3 + (i - 1) * 5
    if ARGV[a + 1] == 'r' then
      local k, cost = KEYS[ki], tonumber(ARGV[a + 3])
      if cost > 0 then
        st[i][1] = st[i][1] + cost
        setahead(k, st[i][1], tonumber(ARGV[a + 5]))
      end
      redis.call('HSET', rec, k, int(cost))
      ki = ki + 1
    else
      local h, z, amount = KEYS[ki], KEYS[ki + 1], tonumber(ARGV[a + 3])
      local reserved = st[i][2] - st[i][3] + amount
      redis.call('HSET', h, 'reserved', int(reserved), rf, int(amount))
      redis.call('ZADD', z, int(now + ttl), id)
      local pms = tonumber(ARGV[a + 4])
      if pms > 0 then
        redis.call('PEXPIRE', h, pms)
        redis.call('PEXPIRE', z, pms)
      else
        redis.call('PERSIST', h)
        redis.call('PERSIST', z)
      end
      st[i][2] = reserved
      ki = ki + 2
    end
  end
  redis.call('HSET', rec, 'ttl', int(ttl))
  redis.call('PEXPIRE', rec, int(math.ceil(ttl / 1000) + keep))
end
local out = {denied}
for i = 1, n do
  out[2 * i] = st[i][1]
  out[2 * i + 1] = st[i][2]
end
return out
`)

// settleScript: KEYS as reserveScript's. ARGV: id, record retention ms,
// then 4 per check: 'r', cost (units) of the actual amount, cost of the
// estimate (used when the record is gone), units per µs, or 'b', actual
// amount, period ms, 0. Returns 1, or 0 when id was already settled.
var settleScript = redis.NewScript(luaCommon + `
local rec, id, keep = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('HEXISTS', rec, 'done') == 1 then return 0 end
local rf = 'r:' .. id
local ttl = tonumber(redis.call('HGET', rec, 'ttl') or '0')
local n = (#ARGV - 2) / 4
local ki = 2
for i = 1, n do
  local a = 2 + (i - 1) * 4
  if ARGV[a + 1] == 'r' then
    local k, upu = KEYS[ki], tonumber(ARGV[a + 4])
    local taken = redis.call('HGET', rec, k)
    if taken then taken = tonumber(taken) else taken = tonumber(ARGV[a + 3]) end
    setahead(k, ahead(k, upu) + tonumber(ARGV[a + 2]) - taken, upu)
    ki = ki + 1
  else
    local h, z = KEYS[ki], KEYS[ki + 1]
    reclaim(h, z)
    local v = redis.call('HMGET', h, 'spent', 'reserved', rf)
    local spent, reserved = tonumber(v[1] or '0') + tonumber(ARGV[a + 2]), tonumber(v[2] or '0')
    if v[3] then
      reserved = reserved - tonumber(v[3])
      if reserved < 0 then reserved = 0 end
      redis.call('HDEL', h, rf)
      redis.call('ZREM', z, id)
    end
    redis.call('HSET', h, 'spent', int(spent), 'reserved', int(reserved))
    local pms = tonumber(ARGV[a + 3])
    if pms > 0 then
      redis.call('PEXPIRE', h, pms)
      redis.call('PEXPIRE', z, pms)
    else
      redis.call('PERSIST', h)
      redis.call('PERSIST', z)
    end
    ki = ki + 2
  end
end
redis.call('DEL', rec)
redis.call('HSET', rec, 'done', '1')
redis.call('PEXPIRE', rec, int(math.ceil(ttl / 1000) + keep))
return 1
`)

// peekScript: KEYS per check (Rate: tat; Budget: bud, exp), ARGV 2 per
// check: 'r', units per µs, or 'b', 0. Returns per check two integers as
// reserveScript's.
var peekScript = redis.NewScript(luaCommon + `
local out, ki = {}, 1
for i = 1, #ARGV / 2 do
  if ARGV[2 * i - 1] == 'r' then
    out[2 * i - 1], out[2 * i] = ahead(KEYS[ki], tonumber(ARGV[2 * i])), 0
    ki = ki + 1
  else
    local h = KEYS[ki]
    reclaim(h, KEYS[ki + 1])
    local v = redis.call('HMGET', h, 'spent', 'reserved')
    out[2 * i - 1], out[2 * i] = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    ki = ki + 2
  end
end
return out
`)

func (r *Redis) base(tag string) string { return r.prefix + ":{" + tag + "}" }

// keys are the record key (when id != "") and every check's keys, in the
// order the scripts read them.
func (r *Redis) keys(tag, id string, ps []prepared) []string {
	base := r.base(tag)
	keys := make([]string, 0, 1+2*len(ps))
	if id != "" {
		keys = append(keys, base+"#res:"+id)
	}
	for _, p := range ps {
		k := base + ":" + p.c.Key
		if p.c.Kind == Rate {
			keys = append(keys, k+":tat")
		} else {
			keys = append(keys, k+":bud", k+":exp")
		}
	}
	return keys
}

func storeErr(err error) error { return fmt.Errorf("%w: %w", ErrStore, err) }

// splitPairs splits a script's flat reply into two integers per check.
func splitPairs(vals []int64, n int) ([][2]int64, error) {
	if len(vals) != 2*n {
		return nil, fmt.Errorf("script returned %d values for %d checks", len(vals), n)
	}
	out := make([][2]int64, n)
	for i := range out {
		out[i] = [2]int64{vals[2*i], vals[2*i+1]}
	}
	return out, nil
}

// Reserve implements Store.
func (r *Redis) Reserve(ctx context.Context, tag, id string, checks []Check, ttl time.Duration) (Admission, error) {
	if id == "" {
		return Admission{}, fmt.Errorf("quota: Reserve needs an id")
	}
	ps, err := prepare(checks)
	if err != nil {
		return Admission{}, err
	}
	if len(ps) == 0 {
		return Admission{Allowed: true, States: []State{}}, nil
	}
	args := make([]any, 0, 3+5*len(ps))
	args = append(args, id, clampTTL(ttl), settleRetention.Milliseconds())
	for _, p := range ps {
		if p.c.Kind == Rate {
			over := 0
			if p.over {
				over = 1
			}
			args = append(args, "r", p.periodU, p.cost, over, p.unitsPerMicro())
		} else {
			args = append(args, "b", p.c.Limit, p.amount, p.periodMS, 0)
		}
	}
	vals, err := r.batch.Run(ctx, reserveScript, r.keys(tag, id, ps), args...).Int64Slice()
	if err != nil {
		return Admission{}, storeErr(err)
	}
	if len(vals) == 0 {
		return Admission{}, storeErr(fmt.Errorf("empty script reply"))
	}
	rw, err := splitPairs(vals[1:], len(ps))
	if err != nil {
		return Admission{}, storeErr(err)
	}
	denied := int(vals[0]) - 1
	if denied >= len(ps) {
		return Admission{}, storeErr(fmt.Errorf("script denied check %d of %d", denied+1, len(ps)))
	}
	return admission(ps, rw, denied), nil
}

// Settle implements Store.
func (r *Redis) Settle(ctx context.Context, tag, id string, checks []Check, actual map[string]int64) error {
	if id == "" {
		return fmt.Errorf("quota: Settle needs an id")
	}
	ps, err := prepare(checks)
	if err != nil {
		return err
	}
	args := make([]any, 0, 2+4*len(ps))
	args = append(args, id, settleRetention.Milliseconds())
	for _, p := range ps {
		got := max(actual[p.c.Key], 0)
		if p.c.Kind == Rate {
			args = append(args, "r", rateCost(got, p.periodU, p.c.Limit), p.cost, p.unitsPerMicro())
		} else {
			args = append(args, "b", got, p.periodMS, 0)
		}
	}
	if err := r.later.Run(ctx, settleScript, r.keys(tag, id, ps), args...).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// Peek implements Store. It releases expired reservations but changes
// nothing else.
func (r *Redis) Peek(ctx context.Context, tag string, checks []Check) ([]State, error) {
	ps, err := prepare(checks)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return []State{}, nil
	}
	args := make([]any, 0, 2*len(ps))
	for _, p := range ps {
		if p.c.Kind == Rate {
			args = append(args, "r", p.unitsPerMicro())
		} else {
			args = append(args, "b", 0)
		}
	}
	vals, err := r.batch.Run(ctx, peekScript, r.keys(tag, "", ps), args...).Int64Slice()
	if err != nil {
		return nil, storeErr(err)
	}
	rw, err := splitPairs(vals, len(ps))
	if err != nil {
		return nil, storeErr(err)
	}
	return admission(ps, rw, -1).States, nil
}

// Reset implements Store: one DEL of every key of checks (atomic, one hash
// slot). Reservation records stay, so a later Settle of an earlier
// reservation still records its spend once.
func (r *Redis) Reset(ctx context.Context, tag string, checks []Check) error {
	if len(checks) == 0 {
		return nil
	}
	base := r.base(tag)
	keys := make([]string, 0, 3*len(checks))
	for _, c := range checks {
		k := base + ":" + c.Key
		keys = append(keys, k+":tat", k+":bud", k+":exp")
	}
	if err := r.c.Del(ctx, keys...).Err(); err != nil {
		return storeErr(err)
	}
	return nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}
