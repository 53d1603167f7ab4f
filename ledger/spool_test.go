package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("primary down")

// flaky is a primary that fails on demand.
type flaky struct {
	Store
	fail  atomic.Bool
	calls atomic.Int64 // Append calls, failed ones included
}

func (f *flaky) Append(ctx context.Context, e Entry) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return fmt.Errorf("flaky: %w", errDown)
	}
	return f.Store.Append(ctx, e)
}

// batching is a flaky primary that appends in batches, and can cut one
// short: a replay interrupted after the store took part of a batch.
type batching struct {
	*flaky
	batches atomic.Int64
	cutAt   atomic.Int64 // the batch to cut, counting from 1 (0: none)
	cut     atomic.Int64 // the entries it records before failing
}

// cutNext cuts the batch after the next skip ones after n entries.
func (b *batching) cutNext(skip, n int) {
	b.cut.Store(int64(n))
	b.cutAt.Store(b.batches.Load() + 1 + int64(skip))
}

func (b *batching) AppendBatch(ctx context.Context, es []Entry) error {
	k := b.batches.Add(1)
	b.calls.Add(1)
	if b.fail.Load() {
		return fmt.Errorf("flaky batch: %w", errDown)
	}
	if b.cutAt.Load() == k {
		n := int(b.cut.Load())
		if err := b.appendAll(ctx, es[:min(n, len(es))]); err != nil {
			return err
		}
		return fmt.Errorf("flaky batch cut after %d: %w", n, errDown)
	}
	return b.appendAll(ctx, es)
}

func (b *batching) appendAll(ctx context.Context, es []Entry) error {
	if ba, ok := b.Store.(BatchAppender); ok {
		return ba.AppendBatch(ctx, es)
	}
	for _, e := range es {
		if err := b.Store.Append(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// primary is a test primary: the Store the spool wraps, its switch, and
// the store underneath to read what it really holds.
type primary struct {
	store Store // flaky or batching
	f     *flaky
	b     *batching // nil without batches
	inner Store
}

func primaries(t *testing.T) []struct {
	name string
	open func(t *testing.T) primary
} {
	plain := func(inner func(t *testing.T) Store) func(t *testing.T) primary {
		return func(t *testing.T) primary {
			in := inner(t)
			f := &flaky{Store: in}
			return primary{store: f, f: f, inner: in}
		}
	}
	batched := func(inner func(t *testing.T) Store) func(t *testing.T) primary {
		return func(t *testing.T) primary {
			in := inner(t)
			f := &flaky{Store: in}
			b := &batching{flaky: f}
			return primary{store: b, f: f, b: b, inner: in}
		}
	}
	memory := func(t *testing.T) Store { return NewMemory(0, nil) }
	rds := func(t *testing.T) Store { s, _ := redisPair(t, 0); return s }
	return []struct {
		name string
		open func(t *testing.T) primary
	}{
		{"memory", plain(memory)},
		{"memory, batches", batched(memory)},
		{"redis", plain(rds)},
		{"redis, batches", batched(rds)},
	}
}

// logBuffer collects JSON logs from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openSpool opens a spool for a test with quick retries and commits,
// closed at the end.
func openSpool(t *testing.T, p Store, dir string, o SpoolOptions) *Spooled {
	t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = 50 * time.Microsecond // sequential appends wait for it
	}
	s, err := OpenSpooled(p, dir, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// crash leaves s as a killed process would: files as they are, no last
// commit nor replay, the lock released.
func crash(t *testing.T, s *Spooled) {
	t.Helper()
	s.mu.Lock()
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.commitMu.Lock()
	s.mu.Lock()
	if s.seg != nil {
		_ = s.seg.f.Close()
		s.seg = nil
	}
	s.mu.Unlock()
	s.commitMu.Unlock()
	require.NoError(t, s.unlock())
}

// entry is the i-th test entry: a fresh ID, and every entry the same
// size for i < 10.
func entry(i int) Entry {
	return Entry{ID: NewID(), Time: base.Add(time.Duration(i) * time.Second), RequestID: "r" + strconv.Itoa(i),
		Team: "search", Model: "gpt-4o", CostPicoUSD: int64(1000 + i)}
}

// segments lists the spool files in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	return m
}

// entryIDs is the entries' IDs.
func entryIDs(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func requireHolds(t *testing.T, s Store, want []Entry) {
	t.Helper()
	got := collect(t, s, base.Add(-time.Hour), base.Add(48*time.Hour))
	require.ElementsMatch(t, entryIDs(want), entryIDs(got), "each entry once")
	require.Len(t, got, len(want))
}

func TestSpoolTakesEntriesWhilePrimaryFails(t *testing.T) {
	for _, pc := range primaries(t) {
		for _, cut := range []int{0, 3, replayBatch} {
			t.Run(fmt.Sprintf("%s, replay cut after %d", pc.name, cut), func(t *testing.T) {
				if cut > 0 && !strings.Contains(pc.name, "batches") {
					t.Skip("cuts are of batches")
				}
				p := pc.open(t)
				dir := t.TempDir()
				s := openSpool(t, p.store, dir, SpoolOptions{})
				ctx := testCtx(t)
				var all []Entry
				for i := range 5 {
					e := entry(i)
					all = append(all, e)
					require.NoError(t, s.Append(ctx, e))
				}
				require.Equal(t, Pending{}, s.Pending())
				requireHolds(t, p.inner, all)

				p.f.fail.Store(true)
				var spooled []Entry
				for i := range 300 {
					e := entry(5 + i)
					spooled = append(spooled, e)
					require.NoError(t, s.Append(ctx, e), "spooled")
				}
				pend := s.Pending()
				require.EqualValues(t, 300, pend.Entries)
				require.Greater(t, pend.Bytes, int64(300*50))
				requireHolds(t, p.inner, all)
				require.ErrorIs(t, s.Flush(ctx), errDown, "still down")
				require.EqualValues(t, 300, s.Pending().Entries)

				p.f.fail.Store(false)
				if cut > 0 {
					// The store takes some or all of the first batch,
					// and the reply is lost.
					p.b.cutNext(0, cut)
					require.ErrorIs(t, s.Flush(ctx), errDown, "a replay cut off")
					require.EqualValues(t, 300, s.Pending().Entries, "nothing confirmed")
					require.Len(t, collect(t, p.inner, base.Add(-time.Hour), base.Add(time.Hour)), 5+cut)
				}
				require.NoError(t, s.Flush(ctx))
				require.Equal(t, Pending{}, s.Pending())
				requireHolds(t, p.inner, append(all, spooled...))
				require.Empty(t, segments(t, dir), "replayed segments are deleted")
				require.Zero(t, s.Refused())
			})
		}
	}
}

// The replayer drains the spool on its own once the primary is back, and
// logs the outage without the entries' contents.
func TestSpoolReplayer(t *testing.T) {
	for _, pc := range primaries(t) {
		t.Run(pc.name, func(t *testing.T) {
			p := pc.open(t)
			var logs logBuffer
			s := openSpool(t, p.store, t.TempDir(), SpoolOptions{Logger: logs.logger()})
			ctx := testCtx(t)
			s.Start(ctx)
			p.f.fail.Store(true)
			const n = 50
			var wg sync.WaitGroup
			es := make([]Entry, n)
			for i := range n {
				es[i] = entry(i)
				es[i].Team = "secret-team"
				wg.Go(func() { require.NoError(t, s.Append(ctx, es[i])) })
			}
			wg.Wait()
			calls := p.f.calls.Load()
			require.Eventually(t, func() bool { return p.f.calls.Load() > calls+2 }, 5*time.Second, time.Millisecond,
				"the replayer retries while the primary is down")
			require.EqualValues(t, n, s.Pending().Entries)

			p.f.fail.Store(false)
			require.Eventually(t, func() bool { return s.Pending() == Pending{} }, 5*time.Second, time.Millisecond)
			requireHolds(t, p.inner, es)
			// Logged once the drain is complete.
			drained := func(n int) func() bool {
				return func() bool { return strings.Count(logs.String(), "spool drained") == n }
			}
			require.Eventually(t, drained(1), 5*time.Second, time.Millisecond)

			out := logs.String()
			require.Contains(t, out, `"level":"WARN","msg":"cost ledger: the store failed; spooling entries to disk until it is back"`)
			require.Contains(t, out, `"level":"INFO","msg":"cost ledger: spool drained; every spooled entry is in the store"`)
			require.Contains(t, out, `"replayed":50`)
			require.Equal(t, 1, strings.Count(out, "spooling entries to disk"), "one warning per outage")
			require.NotContains(t, out, "secret-team")

			// A second outage: spooled, and drained, again.
			p.f.fail.Store(true)
			e := entry(99)
			require.NoError(t, s.Append(ctx, e))
			p.f.fail.Store(false)
			require.Eventually(t, func() bool { return s.Pending() == Pending{} }, 5*time.Second, time.Millisecond)
			requireHolds(t, p.inner, append(es, e))
			require.Equal(t, 2, strings.Count(logs.String(), "spooling entries to disk"))
			require.Eventually(t, drained(2), 5*time.Second, time.Millisecond)
		})
	}
}

// A real Redis store on an address nothing listens on: every append
// spools; a new spool on the directory, over a Redis that works, replays
// them.
func TestSpoolRedisUnreachableThenRestart(t *testing.T) {
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = down.Close() })
	working, _ := redisPair(t, 0)
	dead := NewRedis(down, working.prefix, 0)
	dir := t.TempDir()
	ctx := testCtx(t)

	s, err := OpenSpooled(dead, dir, SpoolOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	require.NoError(t, err)
	s.Start(ctx)
	var es []Entry
	for i := range 20 {
		e := entry(i)
		es = append(es, e)
		require.NoError(t, s.Append(ctx, e))
	}
	require.EqualValues(t, 20, s.Pending().Entries)
	require.ErrorContains(t, s.Flush(ctx), "ledger: append 20 entries to")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = s.Close(short)
	require.ErrorContains(t, err, "spool closed with 20 entries")
	require.ErrorIs(t, s.Append(ctx, entry(21)), ErrSpoolClosed, "closed")
	require.NotEmpty(t, segments(t, dir), "the entries stay on disk")

	again := openSpool(t, working, dir, SpoolOptions{})
	require.EqualValues(t, 20, again.Pending().Entries, "found on start")
	again.Start(ctx)
	require.Eventually(t, func() bool { return again.Pending() == Pending{} }, 5*time.Second, time.Millisecond)
	requireHolds(t, working, es)
	got := collect(t, working, base, base.Add(time.Hour))
	require.Equal(t, es, got, "in order, every field")
	require.Empty(t, segments(t, dir))
}

// Redis behind a faulty network: replies lost after Redis ran the
// append, then no Redis at all. Every entry ends up in Redis once.
func TestSpoolRedisOutage(t *testing.T) {
	addr := redisAddr(t)
	direct, _ := redisPair(t, 0)
	px := newProxy(t, addr)
	c := redis.NewClient(&redis.Options{Addr: px.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1, PoolSize: 4})
	t.Cleanup(func() { _ = c.Close() })
	s := openSpool(t, NewRedis(c, direct.prefix, 0), t.TempDir(), SpoolOptions{})
	ctx := testCtx(t)
	s.Start(ctx)
	var es []Entry
	add := func(n int) {
		for range n {
			e := entry(len(es))
			es = append(es, e)
			require.NoError(t, s.Append(ctx, e))
		}
	}
	add(10)
	require.Equal(t, Pending{}, s.Pending())

	px.dropReplies(true)
	add(10)
	require.GreaterOrEqual(t, direct.c.XLen(ctx, direct.Key(base)).Val(), int64(11), "Redis ran an append whose reply was lost")
	px.dropReplies(false)
	px.setDown(true)
	add(10)
	require.Positive(t, s.Pending().Entries)

	px.setDown(false)
	require.Eventually(t, func() bool { return s.Pending() == Pending{} }, 10*time.Second, time.Millisecond)
	requireHolds(t, direct, es)
	require.Zero(t, s.Refused())
}

// A spool left by a crash is replayed by the next process, whatever the
// crash left at the end of its file.
func TestSpoolAfterCrash(t *testing.T) {
	extra := entry(100)
	rec, err := encodeRecord(&extra)
	require.NoError(t, err)
	cases := []struct {
		name    string
		damage  func(t *testing.T, file string)
		pending int64 // entries found on start
		lost    []int // spooled entries not replayed
		extra   bool  // extra is replayed
		warn    string
	}{
		{"intact", func(*testing.T, string) {}, 10, nil, false, ""},
		{"torn last record", func(t *testing.T, file string) { appendFile(t, file, rec[:len(rec)/2]) }, 10, nil, false, "skipping the torn last record"},
		{"last record cut before its newline", func(t *testing.T, file string) { appendFile(t, file, rec[:len(rec)-1]) }, 11, nil, true, ""},
		{"damaged record inside", func(t *testing.T, file string) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			second := bytes.IndexByte(b, '\n') + 1
			b[second+20] ^= 0x01 // in entry 1's JSON
			require.NoError(t, os.WriteFile(file, b, 0o600))
		}, 9, []int{1}, false, "skipping a damaged spool record"},
		{"garbage line inside", func(t *testing.T, file string) {
			appendFile(t, file, []byte("not a record\n"))
			appendFile(t, file, rec)
		}, 11, nil, true, "skipping a damaged spool record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			mem := NewMemory(0, nil)
			p := &flaky{Store: mem}
			p.fail.Store(true)
			dir := t.TempDir()
			s, err := OpenSpooled(p, dir, SpoolOptions{SyncEvery: 50 * time.Microsecond})
			require.NoError(t, err)
			var es []Entry
			for i := range 10 {
				es = append(es, entry(i))
				require.NoError(t, s.Append(ctx, es[i]))
			}
			crash(t, s)
			files := segments(t, dir)
			require.Len(t, files, 1)
			tc.damage(t, files[0])

			var logs logBuffer
			p.fail.Store(false)
			again := openSpool(t, p, dir, SpoolOptions{Logger: logs.logger()})
			require.Equal(t, tc.pending, again.Pending().Entries)
			require.NoError(t, again.Flush(ctx))
			var want []Entry
			for i, e := range es {
				if !slices.Contains(tc.lost, i) {
					want = append(want, e)
				}
			}
			if tc.extra {
				want = append(want, extra)
			}
			requireHolds(t, mem, want)
			require.Empty(t, segments(t, dir))
			if tc.warn != "" {
				require.Contains(t, logs.String(), `"level":"WARN","msg":"cost ledger: `+tc.warn)
			} else {
				require.NotContains(t, logs.String(), "skipping")
			}
		})
	}
}

func appendFile(t *testing.T, file string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// A replay that crashed after Redis took part of a segment replays it
// again, and Redis records none twice.
func TestSpoolCrashDuringReplay(t *testing.T) {
	inner, _ := redisPair(t, 0)
	f := &flaky{Store: inner}
	p := &batching{flaky: f}
	f.fail.Store(true)
	dir := t.TempDir()
	ctx := testCtx(t)
	s, err := OpenSpooled(p, dir, SpoolOptions{SyncEvery: 50 * time.Microsecond})
	require.NoError(t, err)
	var es []Entry
	for i := range 2*replayBatch + 10 {
		es = append(es, entry(i))
		require.NoError(t, s.Append(ctx, es[i]))
	}
	f.fail.Store(false)
	p.cutNext(1, 7) // the first batch is confirmed, 7 of the second recorded
	require.ErrorIs(t, s.Flush(ctx), errDown)
	require.EqualValues(t, len(es)-replayBatch, s.Pending().Entries)
	crash(t, s)
	require.Len(t, collect(t, inner, base, base.Add(time.Hour)), replayBatch+7)

	again := openSpool(t, p, dir, SpoolOptions{})
	require.EqualValues(t, len(es), again.Pending().Entries, "the whole segment again")
	require.NoError(t, again.Flush(ctx))
	requireHolds(t, inner, es)
}

func TestSpoolLimit(t *testing.T) {
	p := &flaky{Store: NewMemory(0, nil)}
	p.fail.Store(true)
	e0 := entry(0)
	rec, err := encodeRecord(&e0)
	require.NoError(t, err)
	dir := t.TempDir()
	s := openSpool(t, p, dir, SpoolOptions{Limit: int64(3 * len(rec))})
	ctx := testCtx(t)
	var es []Entry
	for i := range 3 {
		es = append(es, entry(i))
		require.NoError(t, s.Append(ctx, es[i]), "within the limit")
	}
	err = s.Append(ctx, entry(3))
	require.ErrorIs(t, err, ErrSpoolFull, "beyond it")
	require.ErrorIs(t, err, errDown, "the primary's error too")
	require.EqualValues(t, 1, s.Refused())
	require.Equal(t, Pending{Entries: 3, Bytes: int64(3 * len(rec))}, s.Pending())

	p.fail.Store(false)
	require.NoError(t, s.Flush(ctx))
	requireHolds(t, p.Store, es)
	p.fail.Store(true)
	require.NoError(t, s.Append(ctx, entry(4)), "room again once replayed")
	require.EqualValues(t, 1, s.Refused())
}

// Concurrent appends, half of them spooled, share few fsyncs and all
// arrive once.
func TestSpoolConcurrentAppends(t *testing.T) {
	for _, pc := range primaries(t) {
		t.Run(pc.name, func(t *testing.T) {
			p := pc.open(t)
			// No window: only full batches are written.
			s := openSpool(t, &oddFails{Store: p.store}, t.TempDir(), SpoolOptions{SyncEvery: time.Hour})
			ctx := testCtx(t)
			const n = 4 * maxBatchEntries // half spooled: two full batches
			es := make([]Entry, n)
			var wg sync.WaitGroup
			for i := range n {
				es[i] = entry(i)
				es[i].Time = base.Add(time.Duration(i) * time.Millisecond)
				es[i].CostPicoUSD = 1_000_000_000_001
				wg.Go(func() { require.NoError(t, s.Append(ctx, es[i])) })
			}
			wg.Wait()
			// Two full batches: one fsync each, or one for both when
			// the second filled while the first waited for its turn.
			require.Contains(t, []int64{1, 2}, s.fsyncs.Load(), "fsyncs for %d spooled entries", n/2)
			require.EqualValues(t, n/2, s.Pending().Entries)
			require.NoError(t, s.Flush(ctx))
			requireHolds(t, p.inner, es)
			tot, err := Totals(ctx, p.inner, base, base.Add(time.Hour), ByNothing)
			require.NoError(t, err)
			require.Equal(t, []Total{tot0(n)}, tot)
		})
	}
}

func tot0(n int64) Total {
	return tot("", n, 0, 0, 0, 0, n*1_000_000_000_001, FormatUSD(n*1_000_000_000_001), 0, "0")
}

// oddFails fails the appends of entries at an odd millisecond; replays
// go through.
type oddFails struct{ Store }

func (o *oddFails) Append(ctx context.Context, e Entry) error {
	if e.Time.UnixMilli()%2 == 1 {
		return errDown
	}
	return o.Store.Append(ctx, e)
}

func (o *oddFails) AppendBatch(ctx context.Context, es []Entry) error {
	if b, ok := o.Store.(BatchAppender); ok {
		return b.AppendBatch(ctx, es)
	}
	for _, e := range es {
		if err := o.Store.Append(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// The replay keeps the spool's order, across batches and segments.
func TestSpoolReplayOrder(t *testing.T) {
	rec := &recorder{Store: NewMemory(0, nil)}
	p := &flaky{Store: rec}
	p.fail.Store(true)
	dir := t.TempDir()
	s := openSpool(t, p, dir, SpoolOptions{SegmentSize: 8 << 10})
	ctx := testCtx(t)
	var want []string
	for i := range 3 * replayBatch {
		e := entry(i)
		want = append(want, e.ID)
		require.NoError(t, s.Append(ctx, e))
	}
	require.Greater(t, len(segments(t, dir)), 3, "several segments")
	p.fail.Store(false)
	require.NoError(t, s.Flush(ctx))
	require.Equal(t, want, rec.order())
	require.Empty(t, segments(t, dir))
}

// recorder remembers the order of the appends it took.
type recorder struct {
	Store
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Append(ctx context.Context, e Entry) error {
	r.mu.Lock()
	r.ids = append(r.ids, e.ID)
	r.mu.Unlock()
	return r.Store.Append(ctx, e)
}

func (r *recorder) order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func TestSpoolClose(t *testing.T) {
	ctx := testCtx(t)
	t.Run("last replay", func(t *testing.T) {
		p := &flaky{Store: NewMemory(0, nil)}
		dir := t.TempDir()
		s, err := OpenSpooled(p, dir, SpoolOptions{MinBackoff: time.Hour})
		require.NoError(t, err)
		s.Start(ctx)
		p.fail.Store(true)
		e := entry(0)
		require.NoError(t, s.Append(ctx, e))
		p.fail.Store(false)
		require.NoError(t, s.Close(ctx), "the last replay drains it")
		requireHolds(t, p.Store, []Entry{e})
		require.Empty(t, segments(t, dir))
		require.NoError(t, s.Close(ctx), "twice")
		require.NoError(t, s.Append(ctx, entry(1)), "the primary still takes appends")
		require.ErrorIs(t, s.Flush(ctx), ErrSpoolClosed)
	})
	t.Run("primary down", func(t *testing.T) {
		p := &flaky{Store: NewMemory(0, nil)}
		p.fail.Store(true)
		s, err := OpenSpooled(p, t.TempDir(), SpoolOptions{})
		require.NoError(t, err)
		s.Start(ctx)
		require.NoError(t, s.Append(ctx, entry(0)))
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err = s.Close(short)
		require.ErrorIs(t, err, errDown)
		require.ErrorContains(t, err, "1 entries")
		err = s.Append(ctx, entry(1))
		require.ErrorIs(t, err, ErrSpoolClosed)
		require.EqualValues(t, 1, s.Refused())
	})
}

func TestSpoolIDAndTime(t *testing.T) {
	c := &clock{t: base.Add(time.Hour)}
	p := &flaky{Store: NewMemory(0, nil)}
	p.fail.Store(true)
	s := openSpool(t, p, t.TempDir(), SpoolOptions{Now: c.Now})
	ctx := testCtx(t)
	require.NoError(t, s.Append(ctx, Entry{RequestID: "no id, no time"}))
	p.fail.Store(false)
	require.NoError(t, s.Flush(ctx))
	got := collect(t, p.Store, base, base.Add(2*time.Hour))
	require.Len(t, got, 1)
	require.Len(t, got[0].ID, 32)
	require.Equal(t, base.Add(time.Hour), got[0].Time)

	// An entry the primary refuses for what it is is not spooled.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	s2 := openSpool(t, NewRedis(down, "x", 0), t.TempDir(), SpoolOptions{})
	require.ErrorIs(t, s2.Append(ctx, Entry{Time: time.Unix(-1, 0)}), ErrBeforeEpoch)
	require.Equal(t, Pending{}, s2.Pending())
}

func TestSpoolDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := OpenSpooled(NewMemory(0, nil), filepath.Join(file, "spool"), SpoolOptions{})
	require.ErrorContains(t, err, "ledger: spool directory")

	dir := filepath.Join(t.TempDir(), "a", "spool")
	s := openSpool(t, NewMemory(0, nil), dir, SpoolOptions{})
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "freebsd" {
		_, err = OpenSpooled(NewMemory(0, nil), dir, SpoolOptions{})
		require.ErrorIs(t, err, ErrSpoolLocked, "one process per directory")
	}
	require.NoError(t, s.Close(testCtx(t)))
	s2, err := OpenSpooled(NewMemory(0, nil), dir, SpoolOptions{})
	require.NoError(t, err, "free again")
	require.NoError(t, s2.Close(testCtx(t)))
}

func TestSpoolRecord(t *testing.T) {
	e := Entry{ID: "id", Time: base.Add(5*time.Hour + 123), RequestID: "r,\"x\"\n", DecisionID: "d", Tenant: "t", Team: "ünïcode ☃",
		KeyID: "k", Model: "m", Backend: "b", Kind: "openai", Provider: "p", UpstreamModel: "u",
		PromptTokens: 1 << 62, CompletionTokens: 2, CachedTokens: 3, CacheWriteTokens: 4,
		CostPicoUSD: -5, SavingsPicoUSD: 1<<63 - 1, Estimated: true}
	rec, err := encodeRecord(&e)
	require.NoError(t, err)
	require.Equal(t, 1, bytes.Count(rec, []byte("\n")), "one line")
	got, err := decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, e, got)
	for _, bad := range [][]byte{nil, []byte("\n"), rec[:8], rec[:len(rec)/2], append([]byte("zzzzzzzz"), rec[8:]...), []byte("00000000 {}\n")} {
		_, err := decodeRecord(bad)
		require.Error(t, err, "%q", bad)
	}
}
