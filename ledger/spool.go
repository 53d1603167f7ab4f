package ledger

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spooled is a Store that loses no entry to an outage of its primary
// store (Redis): an entry the primary does not take is written to a
// durable local spool and replayed into the primary once it is back.
//
// Append tries the primary with the caller's context. On any error (a
// timeout too: Redis may have run the append, but replaying it is safe
// because stores record each Entry.ID once) the entry is appended to the
// spool and Append returns nil once it is on disk. Spool writes are group
// committed: an entry waits for the next fsync, which comes at most
// SyncEvery (10 ms) after the first entry of a batch or as soon as a
// batch is full, so a burst of failures costs a few fsyncs, not one per
// entry. The spool is bounded by its limit (config ledger.spool_limit,
// 256 MiB): beyond it, or when the disk write fails, the entry is refused
// and Append returns an error wrapping both the primary's and the
// spool's (ErrSpoolFull when full). That entry is lost; Refused counts
// them, and the gateway logs each at error level. An entry the primary
// rejects for what it is (ErrBeforeEpoch) is not spooled.
//
// The spool is a directory of segment files, each a sequence of records
// "<crc32c of the JSON, 8 hex digits> <the entry as JSON>\n", written
// only by appending; a segment past SegmentSize (4 MiB) is sealed and the
// next one started. The replayer (Start) replays the spool into the
// primary: segments oldest first, each in order from where its last
// replay stopped (the one being written up to what is fsynced), in
// batches (one round trip per batch with Redis, see BatchAppender), and
// deletes each segment once all of it is in the primary. Bytes count
// against the limit until their segment is deleted. A record whose
// checksum does not match (the torn last record of a crash) is skipped
// with a warning and the rest replayed. After a crash at any point,
// opening the directory again replays every segment not yet deleted, from
// its start: entries replayed before the crash are replayed again and
// absorbed by their IDs. While entries are pending the replayer retries
// with backoff (MinBackoff doubling to MaxBackoff); when nothing is
// pending it sleeps until an entry is spooled. Only one process may use a
// directory at a time (a lock file, on Unix).
//
// Range reads the primary only: entries still in the spool are not
// there yet, and Pending reports them. The replayer logs at warn when
// entries start being spooled and at info when the spool is drained; logs
// name entries by request ID at most.
type Spooled struct {
	primary    Store
	dir        string
	limit      int64
	log        *slog.Logger
	now        func() time.Time
	syncEvery  time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	segMax     int64
	unlock     func() error // releases the directory's lock

	replayMu sync.Mutex // one replay at a time
	commitMu sync.Mutex // one commit (write and fsync) or seal at a time; before mu

	mu        sync.Mutex
	closed    bool
	cur       *spoolBatch   // filling; written by the next commit
	full      []*spoolBatch // full, oldest first; being committed
	writing   Pending       // what the commit in progress is writing
	seg       *segment      // the segment commits append to; nil until needed
	sealed    []*segment    // complete segments, oldest first
	diskBytes int64         // the size of every segment file
	nextSeq   uint64
	spooling  bool  // entries were spooled since the spool was last drained
	replayed  int64 // entries replayed since then
	stop      context.CancelFunc
	done      chan struct{} // closed when the replayer has stopped

	refused atomic.Int64
	fsyncs  atomic.Int64  // segment fsyncs, for tests of the group commit
	wake    chan struct{} // a commit wrote entries
}

var _ Store = (*Spooled)(nil)

// Pending is what a Spooled store holds that its primary does not have
// yet.
type Pending struct {
	// Entries is the number of entries waiting to be replayed.
	Entries int64 `json:"entries"`
	// Bytes is their size in the spool.
	Bytes int64 `json:"bytes"`
}

// BatchAppender is a Store that appends several entries in one call
// (Redis: one round trip). Spooled replays through it when its primary
// has it. After an error the batch may be retried whole: some entries may
// be recorded, and IDs keep them from being recorded twice.
type BatchAppender interface {
	AppendBatch(ctx context.Context, es []Entry) error
}

// Errors of the spool, wrapped in the errors Append returns when an entry
// is refused.
var (
	// ErrSpoolFull: the entry would take the spool past its limit.
	ErrSpoolFull = errors.New("ledger: spool full")
	// ErrSpoolClosed: the store was closed.
	ErrSpoolClosed = errors.New("ledger: spool closed")
	// ErrSpoolLocked: another process uses the spool's directory.
	ErrSpoolLocked = errors.New("ledger: spool directory in use by another process")
)

// SpoolOptions configure OpenSpooled. Zero fields take their defaults.
type SpoolOptions struct {
	// Limit bounds the spool's files, in bytes. Default
	// DefaultSpoolLimit.
	Limit int64
	// Logger receives the spool's logs; nil discards them.
	Logger *slog.Logger
	// SyncEvery is the group commit's window: the longest a spooled
	// entry waits for others to share its fsync. Default 10ms.
	SyncEvery time.Duration
	// MinBackoff and MaxBackoff bound the replayer's retry delay, which
	// doubles after each failed replay. Default 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// SegmentSize is the size past which the spool starts a new file,
	// so that space is freed as the replay goes. Default 4 MiB.
	SegmentSize int64
	// Now is the clock for entries without a Time; nil is time.Now.
	Now func() time.Time
}

// DefaultSpoolLimit is the default bound on a spool's files.
const DefaultSpoolLimit = 256 << 20

const (
	// maxBatchEntries and maxBatchBytes: a batch this big is committed
	// without waiting for SyncEvery.
	maxBatchEntries = 512
	maxBatchBytes   = 1 << 20
	// replayBatch is how many entries go to the primary per call.
	replayBatch = 256
	// replayTimeout bounds one replay call to the primary.
	replayTimeout = 30 * time.Second
	// segSuffix ends the names of segment files.
	segSuffix = ".spool"
)

// spoolBatch is entries waiting for one write and fsync.
type spoolBatch struct {
	buf   []byte // their records
	n     int
	timer *time.Timer
	done  chan struct{} // closed when written; err is then set
	err   error
}

// segment is one spool file.
type segment struct {
	seq      uint64
	path     string
	f        *os.File // open for appending while it is Spooled.seg
	size     int64    // bytes in the file
	entries  int64    // valid records in it
	off      int64    // bytes replayed (the primary has them), from the start
	replayed int64    // records among them
}

// OpenSpooled returns a Spooled store over primary keeping its spool in
// dir, created (mode 0700) when missing. Segments left in dir by a
// previous run are replayed once Start runs. Close it when done.
func OpenSpooled(primary Store, dir string, o SpoolOptions) (*Spooled, error) {
	if o.Limit <= 0 {
		o.Limit = DefaultSpoolLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = 10 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = 4 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: spool directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spooled{primary: primary, dir: dir, limit: o.Limit, log: o.Logger, now: o.Now, syncEvery: o.SyncEvery,
		minBackoff: o.MinBackoff, maxBackoff: o.MaxBackoff, segMax: o.SegmentSize, unlock: unlock,
		nextSeq: 1, wake: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		_ = unlock()
		return nil, err
	}
	if p := s.Pending(); p.Bytes > 0 {
		s.spooling = true
		s.log.Warn("cost ledger: entries spooled by a previous run will be replayed into the store",
			"dir", dir, "entries", p.Entries, "bytes", p.Bytes)
	}
	return s, nil
}

// load finds the segments a previous run left, oldest first.
func (s *Spooled) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("ledger: spool directory: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if !strings.HasSuffix(name, segSuffix) || err != nil || !de.Type().IsRegular() {
			continue
		}
		seg := &segment{seq: seq, path: filepath.Join(s.dir, name)}
		if seg.size, seg.entries, err = countRecords(seg.path); err != nil {
			return fmt.Errorf("ledger: spool: %w", err)
		}
		if seg.size == 0 {
			_ = os.Remove(seg.path)
			continue
		}
		s.sealed = append(s.sealed, seg)
		s.diskBytes += seg.size
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	slices.SortFunc(s.sealed, func(a, b *segment) int { return cmpUint(a.seq, b.seq) })
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// countRecords returns a segment's size and number of valid records.
func countRecords(path string) (size, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, rerr := r.ReadBytes('\n')
		size += int64(len(line))
		if len(line) > 0 && checkRecord(line) == nil {
			n++
		}
		if rerr == io.EOF {
			return size, n, nil
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
}

// Start starts the replayer, which runs until ctx is done or Close. It
// replays at once what a previous run left, then whenever entries are
// spooled. Calls after the first do nothing.
func (s *Spooled) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.closed {
		return
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx, s.done)
}

// run is the replayer. Idle, it waits for a commit; after a failed
// replay it waits its backoff, ignoring commits meanwhile: an entry
// spooled then is one the primary has just failed to take.
func (s *Spooled) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	var backoff time.Duration
	for {
		if backoff == 0 {
			if s.idle() {
				select {
				case <-ctx.Done():
					return
				case <-s.wake:
				}
			}
		} else {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		err := s.replay(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, s.minBackoff), s.maxBackoff)
		s.log.Debug("cost ledger: spool replay failed; retrying", "in", backoff, "error", err)
	}
}

// idle reports whether there is nothing to replay.
func (s *Spooled) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sealed) == 0 && s.cur == nil && len(s.full) == 0 && s.writing.Entries == 0 && (s.seg == nil || s.seg.size == 0)
}

// Append records e in the primary, or else in the spool; see Spooled. An
// entry without an ID gets one (NewID) and one without a Time gets now,
// before the first attempt, so that the replay is the same entry.
func (s *Spooled) Append(ctx context.Context, e Entry) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC()
	if e.ID == "" {
		e.ID = NewID()
	}
	err := s.primary.Append(ctx, e)
	if err == nil || errors.Is(err, ErrBeforeEpoch) {
		return err
	}
	if serr := s.spool(&e, err); serr != nil {
		s.refused.Add(1)
		return fmt.Errorf("%w; the spool refused the entry too: %w", err, serr)
	}
	return nil
}

// Range calls the primary's Range: entries still spooled are not in it.
func (s *Spooled) Range(ctx context.Context, from, to time.Time, f func(Entry) error) error {
	return s.primary.Range(ctx, from, to, f)
}

// Pending reports the entries spooled and not yet replayed, those
// waiting for their fsync included.
func (s *Spooled) Pending() Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.writing
	add := func(seg *segment) {
		p.Entries += seg.entries - seg.replayed
		p.Bytes += seg.size - seg.off
	}
	for _, seg := range s.sealed {
		add(seg)
	}
	if s.seg != nil {
		add(s.seg)
	}
	q := s.queuedLocked()
	p.Entries += q.Entries
	p.Bytes += q.Bytes
	p.Entries, p.Bytes = max(p.Entries, 0), max(p.Bytes, 0)
	return p
}

// Refused is how many entries the spool refused since OpenSpooled: full,
// closed, or a failed write. Each was lost.
func (s *Spooled) Refused() int64 { return s.refused.Load() }

// Flush replays the spool now and returns once it is drained (nil) or
// when a replay into the primary fails or ctx is done (the error). It
// waits for a replay in progress.
func (s *Spooled) Flush(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrSpoolClosed
	}
	return s.replay(ctx)
}

// Close stops the replayer, makes one last replay attempt bounded by ctx,
// and closes the spool's files. What is still pending then stays in the
// directory for the next OpenSpooled; the error says how much. Appends
// that the primary fails after Close are refused with ErrSpoolClosed.
func (s *Spooled) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.commit(true) // the appends waiting for their fsync
	err := s.replay(ctx)
	s.commitMu.Lock()
	s.mu.Lock()
	s.sealLocked()
	s.mu.Unlock()
	s.commitMu.Unlock()
	if err != nil {
		p := s.Pending()
		err = fmt.Errorf("ledger: spool closed with %d entries (%d bytes) left in %s for the next start: %w", p.Entries, p.Bytes, s.dir, err)
		s.log.Warn("cost ledger: entries left in the spool for the next start", "dir", s.dir, "entries", p.Entries, "bytes", p.Bytes, "error", err)
	}
	return errors.Join(err, s.unlock())
}

// spool writes e to the spool and waits for its fsync; cause is the
// primary's error, for the log.
func (s *Spooled) spool(e *Entry, cause error) error {
	rec, err := encodeRecord(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSpoolClosed
	}
	used := s.diskBytes + s.writing.Bytes + s.queuedLocked().Bytes
	if used+int64(len(rec)) > s.limit {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d of %d bytes used in %s", ErrSpoolFull, used, s.limit, s.dir)
	}
	first := !s.spooling
	s.spooling = true
	b := s.cur
	if b == nil {
		b = &spoolBatch{done: make(chan struct{})}
		b.timer = time.AfterFunc(s.syncEvery, func() { s.commit(true) })
		s.cur = b
	}
	b.buf = append(b.buf, rec...)
	b.n++
	full := b.n >= maxBatchEntries || len(b.buf) >= maxBatchBytes
	if full {
		// Written now, without its window; the next entries start
		// another batch.
		s.full = append(s.full, b)
		s.cur = nil
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("cost ledger: the store failed; spooling entries to disk until it is back",
			"dir", s.dir, "request_id", e.RequestID, "error", cause)
	}
	if full {
		s.commit(false)
	}
	<-b.done
	return b.err
}

// queuedLocked is what waits for a commit; s.mu is held.
func (s *Spooled) queuedLocked() Pending {
	var p Pending
	for _, b := range s.full {
		p.Entries += int64(b.n)
		p.Bytes += int64(len(b.buf))
	}
	if s.cur != nil {
		p.Entries += int64(s.cur.n)
		p.Bytes += int64(len(s.cur.buf))
	}
	return p
}

// commit writes the full batches, and with cur the one being filled too,
// with one fsync, and wakes the replayer. Commits run one at a time, in
// order.
func (s *Spooled) commit(cur bool) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	bs := s.full
	s.full = nil
	if cur && s.cur != nil {
		bs = append(bs, s.cur)
		s.cur = nil
	}
	var w Pending
	for _, b := range bs {
		w.Entries += int64(b.n)
		w.Bytes += int64(len(b.buf))
	}
	s.writing = w
	s.mu.Unlock()
	if len(bs) == 0 {
		return
	}
	err := s.write(bs, w)
	for _, b := range bs {
		b.timer.Stop()
		b.err = err
		close(b.done)
	}
	if err == nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// write appends bs (w in all) to the current segment and fsyncs it;
// s.commitMu is held. On an error the segment is truncated back, so that
// none of bs is replayed; if even that fails the segment is sealed as it
// is.
func (s *Spooled) write(bs []*spoolBatch, w Pending) error {
	seg, err := s.current()
	for _, b := range bs {
		if err == nil {
			_, err = seg.f.Write(b.buf)
		}
	}
	if err == nil {
		err = seg.f.Sync()
		s.fsyncs.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing = Pending{}
	if err != nil {
		if seg != nil {
			if terr := seg.f.Truncate(seg.size); terr != nil {
				if fi, serr := seg.f.Stat(); serr == nil {
					s.diskBytes += fi.Size() - seg.size
					seg.size = fi.Size()
				}
				s.sealLocked()
			}
		}
		return fmt.Errorf("ledger: spool write: %w", err)
	}
	seg.size += w.Bytes
	seg.entries += w.Entries
	s.diskBytes += w.Bytes
	if seg.size >= s.segMax {
		s.sealLocked()
	}
	return nil
}

// current returns the segment to write, creating it; s.commitMu is held.
func (s *Spooled) current() (*segment, error) {
	s.mu.Lock()
	seg := s.seg
	seq := s.nextSeq
	s.mu.Unlock()
	if seg != nil {
		return seg, nil
	}
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil { // the new name must survive a crash
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	seg = &segment{seq: seq, path: path, f: f}
	s.mu.Lock()
	s.seg = seg
	s.nextSeq = seq + 1
	s.mu.Unlock()
	return seg, nil
}

// sealLocked closes the current segment and queues it for replay (one
// empty or replayed already is deleted); s.commitMu and s.mu are held.
func (s *Spooled) sealLocked() {
	seg := s.seg
	if seg == nil {
		return
	}
	s.seg = nil
	_ = seg.f.Close() // fsynced already
	seg.f = nil
	if seg.off >= seg.size {
		_ = os.Remove(seg.path)
		s.diskBytes -= seg.size
		return
	}
	s.sealed = append(s.sealed, seg)
}

// replay replays the spool into the primary until it is drained (nil) or
// a call to the primary fails.
func (s *Spooled) replay(ctx context.Context) error {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	for {
		seg, end, drained, err := s.next()
		if drained || err != nil {
			return err
		}
		if seg != nil {
			if err := s.replaySegment(ctx, seg, end); err != nil {
				return err
			}
		}
	}
}

// next returns the segment to replay next and the end of what may be
// read of it: the oldest sealed one, else the one being written, up to
// what is committed (it is replayed in place, not sealed, so that retries
// during an outage do not make a file each). Without one it does a step
// towards one (commits the batch waiting for its fsync, deletes a
// replayed segment) and returns nil to be asked again; or it reports
// drained when nothing is left.
func (s *Spooled) next() (seg *segment, end int64, drained bool, err error) {
	s.mu.Lock()
	if len(s.sealed) > 0 {
		seg, left := s.sealed[0], s.sealed[0].off < s.sealed[0].size
		end := seg.size
		s.mu.Unlock()
		if left {
			return seg, end, false, nil
		}
		return nil, 0, false, s.remove(seg)
	}
	if seg := s.seg; seg != nil && seg.off < seg.size {
		end := seg.size
		s.mu.Unlock()
		return seg, end, false, nil
	}
	if s.cur != nil || len(s.full) > 0 || s.writing.Entries > 0 {
		s.mu.Unlock()
		s.commit(true) // after the commit in progress, if any
		return nil, 0, false, nil
	}
	if s.seg != nil {
		s.mu.Unlock()
		return nil, 0, false, s.retire()
	}
	was, n := s.spooling, s.replayed
	s.spooling, s.replayed = false, 0
	s.mu.Unlock()
	if was {
		s.log.Info("cost ledger: spool drained; every spooled entry is in the store", "dir", s.dir, "replayed", n)
	}
	return nil, 0, true, nil
}

// retire deletes the segment being written once all of it is replayed;
// the next spooled entry starts a new one.
func (s *Spooled) retire() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	seg := s.seg
	if seg == nil || seg.off < seg.size {
		s.mu.Unlock()
		return nil // written to meanwhile: replay that first
	}
	s.seg = nil
	s.diskBytes -= seg.size
	s.mu.Unlock()
	_ = seg.f.Close()
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Keep it for the next start, which replays it again: harmless.
		return fmt.Errorf("ledger: spool: %w", err)
	}
	_ = syncDir(s.dir)
	return nil
}

// replaySegment appends a segment's records up to end to the primary,
// from where the last replay of it stopped, in batches.
func (s *Spooled) replaySegment(ctx context.Context, seg *segment, end int64) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("ledger: spool replay: %w", err)
	}
	defer f.Close()
	s.mu.Lock()
	off := seg.off
	s.mu.Unlock()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("ledger: spool replay: %w", err)
	}
	r := bufio.NewReaderSize(io.LimitReader(f, end-off), 64<<10)
	batch := make([]Entry, 0, replayBatch)
	flush := func(end int64) error {
		if len(batch) > 0 {
			if err := s.appendBatch(ctx, batch); err != nil {
				return err
			}
		}
		s.mu.Lock()
		seg.off = end
		seg.replayed += int64(len(batch))
		s.replayed += int64(len(batch))
		s.mu.Unlock()
		batch = batch[:0]
		return nil
	}
	for {
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			at := off
			off += int64(len(line))
			e, derr := decodeRecord(line)
			switch {
			case derr != nil && rerr == io.EOF:
				s.log.Warn("cost ledger: skipping the torn last record of a spool file (a crash while writing it)",
					"file", seg.path, "offset", at, "bytes", len(line), "error", derr)
			case derr != nil:
				s.log.Warn("cost ledger: skipping a damaged spool record", "file", seg.path, "offset", at, "error", derr)
			default:
				batch = append(batch, e)
				if len(batch) == replayBatch {
					if err := flush(off); err != nil {
						return err
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("ledger: spool replay: %w", rerr)
		}
	}
	return flush(off)
}

// appendBatch appends es to the primary, in one call when it is a
// BatchAppender. An entry the primary rejects for what it is
// (ErrBeforeEpoch) is dropped with an error log rather than blocking the
// spool forever.
func (s *Spooled) appendBatch(ctx context.Context, es []Entry) error {
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	if b, ok := s.primary.(BatchAppender); ok {
		err := b.AppendBatch(ctx, es)
		if !errors.Is(err, ErrBeforeEpoch) {
			return err
		}
	}
	for _, e := range es {
		if err := s.primary.Append(ctx, e); err != nil {
			if errors.Is(err, ErrBeforeEpoch) {
				s.log.Error("cost ledger: dropping a spooled entry the store refuses", "request_id", e.RequestID, "error", err)
				continue
			}
			return err
		}
	}
	return nil
}

// remove deletes a replayed segment.
func (s *Spooled) remove(seg *segment) error {
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledger: spool: %w", err)
	}
	_ = syncDir(s.dir) // a crash before this replays the segment again: harmless
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = slices.DeleteFunc(s.sealed, func(x *segment) bool { return x == seg })
	s.diskBytes -= seg.size
	return nil
}

// spoolRecord is an Entry in the spool. Its names are the Redis stream's
// fields, and stay: spools outlive a gateway version.
type spoolRecord struct {
	ID               string    `json:"id"`
	Time             time.Time `json:"time"`
	RequestID        string    `json:"request_id,omitempty"`
	DecisionID       string    `json:"decision_id,omitempty"`
	Tenant           string    `json:"tenant,omitempty"`
	Team             string    `json:"team,omitempty"`
	KeyID            string    `json:"key_id,omitempty"`
	Model            string    `json:"model,omitempty"`
	Backend          string    `json:"backend,omitempty"`
	Kind             string    `json:"kind,omitempty"`
	Provider         string    `json:"provider,omitempty"`
	UpstreamModel    string    `json:"upstream_model,omitempty"`
	PromptTokens     int64     `json:"prompt_tokens,omitempty"`
	CompletionTokens int64     `json:"completion_tokens,omitempty"`
	CachedTokens     int64     `json:"cached_tokens,omitempty"`
	CacheWriteTokens int64     `json:"cache_write_tokens,omitempty"`
	CostPicoUSD      int64     `json:"cost_pico_usd,omitempty"`
	SavingsPicoUSD   int64     `json:"savings_pico_usd,omitempty"`
	Estimated        bool      `json:"estimated,omitempty"`
	Cache            string    `json:"cache,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord is e's spool record: "<crc32c hex> <json>\n". JSON
// escapes newlines in strings, so the record is one line.
func encodeRecord(e *Entry) ([]byte, error) {
	j, err := json.Marshal(spoolRecord{ID: e.ID, Time: e.Time.UTC(), RequestID: e.RequestID, DecisionID: e.DecisionID,
		Tenant: e.Tenant, Team: e.Team, KeyID: e.KeyID, Model: e.Model, Backend: e.Backend, Kind: e.Kind,
		Provider: e.Provider, UpstreamModel: e.UpstreamModel, PromptTokens: e.PromptTokens,
		CompletionTokens: e.CompletionTokens, CachedTokens: e.CachedTokens, CacheWriteTokens: e.CacheWriteTokens,
		CostPicoUSD: e.CostPicoUSD, SavingsPicoUSD: e.SavingsPicoUSD, Estimated: e.Estimated, Cache: e.Cache})
	if err != nil {
		return nil, fmt.Errorf("ledger: spool record: %w", err)
	}
	rec := make([]byte, 0, 9+len(j)+1)
	rec = fmt.Appendf(rec, "%08x ", crc32.Checksum(j, castagnoli))
	rec = append(rec, j...)
	return append(rec, '\n'), nil
}

// checkRecord verifies a record's checksum and returns its JSON. The
// final newline is optional: a record cut just before it is whole.
func checkRecord(line []byte) error {
	_, err := recordJSON(line)
	return err
}

func recordJSON(line []byte) ([]byte, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if len(line) < 10 || line[8] != ' ' {
		return nil, errors.New("not a spool record")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return nil, errors.New("not a spool record")
	}
	j := line[9:]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(j, castagnoli) != want {
		return nil, errors.New("checksum mismatch")
	}
	return j, nil
}

// decodeRecord reads a record back.
func decodeRecord(line []byte) (Entry, error) {
	j, err := recordJSON(line)
	if err != nil {
		return Entry{}, err
	}
	var r spoolRecord
	if err := json.Unmarshal(j, &r); err != nil {
		return Entry{}, fmt.Errorf("spool record: %w", err)
	}
	return Entry{ID: r.ID, Time: r.Time.UTC(), RequestID: r.RequestID, DecisionID: r.DecisionID,
		Tenant: r.Tenant, Team: r.Team, KeyID: r.KeyID, Model: r.Model, Backend: r.Backend, Kind: r.Kind,
		Provider: r.Provider, UpstreamModel: r.UpstreamModel, PromptTokens: r.PromptTokens,
		CompletionTokens: r.CompletionTokens, CachedTokens: r.CachedTokens, CacheWriteTokens: r.CacheWriteTokens,
		CostPicoUSD: r.CostPicoUSD, SavingsPicoUSD: r.SavingsPicoUSD, Estimated: r.Estimated, Cache: r.Cache}, nil
}
