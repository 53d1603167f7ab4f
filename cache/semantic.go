package cache

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/coder/hnsw"
	"github.com/viterin/vek/vek32"
)

// How Nearest searches a partition.
//
// A partition is searched by an exact linear scan (one SIMD dot product per
// stored vector) until it holds semGraphMinVectors vectors. Past that, an
// HNSW graph (github.com/coder/hnsw) is built for it in the background and
// used to find candidates, which are then scored exactly. The threshold is
// high on purpose. Measured here (2 shared cores), the exact scan of 384-dim
// vectors costs ~35 µs for 1,000 and ~0.85 ms for 10,000 (memory bound), so
// ~4 ms at the threshold, and is always right; coder/hnsw v0.6.1, with any
// of the parameters tried (M 16-64, EfSearch 64-400, k 1-512), finds the
// stored vector nearest to a query made by perturbing it only 30-80% of
// the time (0.3 on 10,000 random 384-dim
// vectors, 0.55 on 2,000 random 64-dim ones, 0.7-0.8 on clustered data; M
// 48 reached 0.9 at twice the cost), in ~0.15 ms at 10,000. Its searches
// are greedy and its graphs poor (about a fifth of a node's neighbours are
// among its 2M nearest). A missed neighbour is a cache miss, i.e. an
// upstream call, which costs far more than the scan; the graph only bounds
// the latency of very large partitions.
//
// The library has further defects that decide how it is used:
//   - Graph.Delete can leave a deleted node linked from its neighbours
//     (coder/hnsw#13), after which Search or Add may dereference nil;
//     deleting every node of a layer (the last node, coder/hnsw#10, or, by
//     reading the code, the only node of the top layer) makes the next Add
//     or Search panic.
//   - Add with a key already in the graph panics (coder/hnsw#15).
//   - Graph is not safe for concurrent use; Search only reads, but Add
//     mutates the graph and its Rng.
//
// So a graph is never mutated once it is published: it is built from a
// snapshot of the partition's vectors (under fresh, never reused ids) by a
// goroutine, and swapped in under the write lock. Vectors added since the
// snapshot (the delta) are scanned exactly; removed ones stay in the graph
// as tombstones and are skipped. The graph is rebuilt when the delta or the
// tombstones grow past a fraction of it, and dropped (back to the exact
// scan) when the partition shrinks to half the threshold. Graph.Delete is
// never called.
const (
	// semGraphMinVectors is the partition size from which a graph is used.
	semGraphMinVectors = 50_000
	// semGraphM is the graph's maximum number of neighbours per node. 32
	// rather than the library's 16: recall on 10,000 clustered 384-dim
	// vectors went from ~0.5 to ~0.7-0.8 (48 gave ~0.9 at twice the build
	// and search time).
	semGraphM = 32
	// semGraphEf bounds the candidate queue of a search (and of the
	// searches made while building).
	semGraphEf = 64
	// semGraphK is how many results a search asks for. In coder/hnsw the
	// layer-0 search stops at the first expansion that does not improve on
	// its best result once it holds k results, so k, more than EfSearch,
	// is what widens the search; the k results are then scored exactly.
	// 128 (with EfSearch 128) cost a third more time for no measurable
	// gain in recall.
	semGraphK = 64
	// semGraphMl is the level generation factor (the library's default):
	// each layer holds about a quarter of the nodes of the one below.
	semGraphMl = 0.25
	// A graph is rebuilt when the vectors added since its snapshot exceed
	// 1/semDeltaRatio of it (they are scanned exactly on every search), or
	// its tombstones exceed 1/semDeadRatio of it.
	semDeltaRatio = 8
	semDeadRatio  = 4
	// semDefaultMaxVectors is IndexOptions.MaxVectors' default.
	semDefaultMaxVectors = 100_000
)

// ErrInvalidVector is returned by Index.Add for an empty or all-zero vector
// or one with a NaN or infinite component.
var ErrInvalidVector = errors.New("cache: invalid vector")

// ErrDimensionMismatch is returned by Index.Add for a vector whose length
// differs from that of the vectors already in its partition.
var ErrDimensionMismatch = errors.New("cache: vector dimension mismatch")

// Index finds, within one partition, the stored lookup vector nearest to a
// query by cosine similarity. Partitions are opaque strings (the gateway
// makes one per tenant, route, policy revision and conversation digest) so
// that vectors of different partitions are never compared. Safe for
// concurrent use.
//
// Partitions are searched exactly up to 50,000 vectors, and through an
// approximate HNSW graph past that (see the comment on
// semGraphMinVectors).
type Index struct {
	mu    sync.RWMutex
	max   int
	n     int
	parts map[string]*semPartition
	// oldest and newest are the ends of the insertion order (FIFO) over
	// all partitions.
	oldest, newest *semEntry
	nextID         uint64

	// graphMin is semGraphMinVectors (tests lower it).
	graphMin int
	// building is true while a graph build runs (one at a time);
	// builds is waited on by tests.
	building bool
	builds   sync.WaitGroup
	// graphsBuilt counts the graphs published (for tests).
	graphsBuilt int
}

// IndexOptions configures an Index.
type IndexOptions struct {
	// MaxVectors bounds the vectors held over all partitions (default
	// 100,000); past it, Add first drops the oldest vectors (FIFO by
	// insertion; replacing a key's vector counts as a new insertion).
	MaxVectors int
}

// semPartition is one partition's vectors. Guarded by Index.mu.
type semPartition struct {
	name    string
	dim     int
	entries []*semEntry // dense, in no order
	byKey   map[string]*semEntry

	// graph is the published graph, nil while the partition is scanned.
	graph *semGraph
	// delta are the entries added since graph's snapshot.
	delta []*semEntry
	// broken is set when a graph build panicked: the partition is then
	// only scanned.
	broken bool
}

// semEntry is one stored vector.
type semEntry struct {
	part *semPartition
	key  string
	id   uint64
	// vec is unit length and never written once stored (graphs share it).
	vec []float32
	// pos is the index in part.entries; deltaPos in part.delta, or -1.
	pos, deltaPos int
	// prev and next link the FIFO, prev towards the oldest.
	prev, next *semEntry
	// removed is set when the entry leaves the index (so that a graph
	// still holding it skips it).
	removed bool
}

// semGraph is a published, read-only graph and the entries it holds.
type semGraph struct {
	g    *hnsw.Graph[uint64]
	byID map[uint64]*semEntry
	// upTo is the highest id in the snapshot it was built from.
	upTo uint64
	// dead counts its entries removed since.
	dead int
}

// NewIndex returns an empty Index.
func NewIndex(o IndexOptions) *Index {
	if o.MaxVectors <= 0 {
		o.MaxVectors = semDefaultMaxVectors
	}
	return &Index{max: o.MaxVectors, parts: map[string]*semPartition{}, graphMin: semGraphMinVectors}
}

// semNorm returns vec's Euclidean norm, or an error for a vector that
// cannot be compared by cosine similarity.
func semNorm(vec []float32) (float64, error) {
	if len(vec) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrInvalidVector)
	}
	var s float64
	for _, x := range vec {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%w: NaN or infinite component", ErrInvalidVector)
		}
		s += f * f
	}
	if s == 0 {
		return 0, fmt.Errorf("%w: all zero", ErrInvalidVector)
	}
	return math.Sqrt(s), nil
}

// semUnit is a copy of vec divided by its norm.
func semUnit(vec []float32, norm float64) []float32 {
	unit := make([]float32, len(vec))
	for i, x := range vec {
		unit[i] = float32(float64(x) / norm)
	}
	return unit
}

// semClamp clamps a dot product of unit vectors into [-1, 1].
func semClamp(s float32) float32 {
	return max(-1, min(1, s))
}

// Add stores vec under key in partition (replacing key's previous vector
// there). vec is copied and L2-normalised; a zero-length or all-zero
// vector, a NaN/Inf component, or a dimension different from the
// partition's first vector is an error (ErrInvalidVector,
// ErrDimensionMismatch). When MaxVectors are held, the oldest vectors are
// dropped first.
func (ix *Index) Add(partition, key string, vec []float32) error {
	norm, err := semNorm(vec)
	if err != nil {
		return err
	}
	unit := semUnit(vec, norm)

	ix.mu.Lock()
	defer ix.mu.Unlock()
	p := ix.parts[partition]
	if p != nil {
		if p.dim != len(unit) {
			return fmt.Errorf("%w: %d, partition holds %d", ErrDimensionMismatch, len(unit), p.dim)
		}
		if old := p.byKey[key]; old != nil {
			ix.remove(old)
		}
	}
	for ix.n >= ix.max && ix.oldest != nil {
		ix.remove(ix.oldest)
	}
	// The removals may have dropped the partition.
	p = ix.parts[partition]
	if p == nil {
		p = &semPartition{name: partition, dim: len(unit), byKey: map[string]*semEntry{}}
		ix.parts[partition] = p
	}
	ix.nextID++
	e := &semEntry{part: p, key: key, id: ix.nextID, vec: unit, pos: len(p.entries), deltaPos: -1}
	p.entries = append(p.entries, e)
	p.byKey[key] = e
	if p.graph != nil {
		e.deltaPos = len(p.delta)
		p.delta = append(p.delta, e)
	}
	if ix.newest == nil {
		ix.oldest, ix.newest = e, e
	} else {
		e.prev = ix.newest
		ix.newest.next = e
		ix.newest = e
	}
	ix.n++
	ix.maintain(p)
	return nil
}

// remove takes e out of the index; an emptied partition is dropped.
// ix.mu must be held for writing.
func (ix *Index) remove(e *semEntry) {
	p := e.part
	last := p.entries[len(p.entries)-1]
	p.entries[e.pos] = last
	last.pos = e.pos
	p.entries[len(p.entries)-1] = nil
	p.entries = p.entries[:len(p.entries)-1]
	delete(p.byKey, e.key)
	if e.deltaPos >= 0 {
		last := p.delta[len(p.delta)-1]
		p.delta[e.deltaPos] = last
		last.deltaPos = e.deltaPos
		p.delta[len(p.delta)-1] = nil
		p.delta = p.delta[:len(p.delta)-1]
		e.deltaPos = -1
	} else if p.graph != nil && e.id <= p.graph.upTo {
		p.graph.dead++
	}
	ix.unlink(e)
	ix.n--
	if len(p.entries) == 0 {
		p.graph, p.delta = nil, nil
		delete(ix.parts, p.name)
		return
	}
	ix.maintain(p)
}

// Nearest returns the key whose vector is most similar to vec in partition
// and that similarity (cosine, in [-1, 1]); ok is false when the partition
// is empty or unknown or vec is invalid/of another dimension.
func (ix *Index) Nearest(partition string, vec []float32) (key string, similarity float32, ok bool) {
	norm, err := semNorm(vec)
	if err != nil {
		return "", 0, false
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.parts[partition]
	if p == nil || p.dim != len(vec) || len(p.entries) == 0 {
		return "", 0, false
	}
	// Ranking by the dot product with vec itself ranks by cosine
	// similarity (the stored vectors are unit length); the similarity is
	// the best dot product over vec's norm. A vec far from unit length
	// is normalised first, lest float32 products overflow or underflow.
	if norm < 1e-10 || norm > 1e10 {
		vec = semUnit(vec, norm)
		norm = 1
	}
	var best *semEntry
	bestDot := float32(math.Inf(-1))
	scan := p.entries
	if p.graph != nil {
		if b, d, found := p.graph.search(vec, norm); found {
			best, bestDot = b, d
			scan = p.delta
		}
	}
	for _, e := range scan {
		if d := vek32.Dot(e.vec, vec); d > bestDot {
			best, bestDot = e, d
		}
	}
	if best == nil {
		return "", 0, false
	}
	return best.key, semClamp(float32(float64(bestDot) / norm)), true
}

// search returns the live entry of g best for vec (of norm norm) among the
// graph search's results and its dot product with vec; found is false
// when there is none (every result removed) or the library panicked.
func (g *semGraph) search(vec []float32, norm float64) (best *semEntry, bestDot float32, found bool) {
	defer func() {
		if recover() != nil {
			best, bestDot, found = nil, 0, false
		}
	}()
	bestDot = float32(math.Inf(-1))
	for _, n := range g.g.Search(semUnit(vec, norm), semGraphK) {
		e := g.byID[n.Key]
		if e == nil || e.removed {
			continue
		}
		if d := vek32.Dot(e.vec, vec); d > bestDot {
			best, bestDot = e, d
		}
	}
	return best, bestDot, best != nil
}

// Remove drops key from partition (no-op if absent); an emptied partition
// is dropped.
func (ix *Index) Remove(partition, key string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if p := ix.parts[partition]; p != nil {
		if e := p.byKey[key]; e != nil {
			ix.remove(e)
		}
	}
}

// RemovePartitions drops every partition for which match returns true and
// returns how many vectors went. match is called with the Index locked: it
// must not call the Index.
func (ix *Index) RemovePartitions(match func(partition string) bool) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	removed := 0
	for name, p := range ix.parts {
		if !match(name) {
			continue
		}
		delete(ix.parts, name)
		p.graph, p.delta = nil, nil
		for _, e := range p.entries {
			ix.unlink(e)
		}
		removed += len(p.entries)
		ix.n -= len(p.entries)
		p.entries, p.byKey = nil, nil
	}
	return removed
}

// unlink takes e out of the FIFO and marks it removed. ix.mu must be held
// for writing.
func (ix *Index) unlink(e *semEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		ix.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		ix.newest = e.prev
	}
	e.prev, e.next = nil, nil
	e.removed = true
}

// Has reports whether partition holds a vector under key.
func (ix *Index) Has(partition, key string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.parts[partition]
	return p != nil && p.byKey[key] != nil
}

// Len is the number of vectors held.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// maintain drops p's graph when p has shrunk, and starts building one when
// p is large and has none or its graph is stale. ix.mu must be held for
// writing.
func (ix *Index) maintain(p *semPartition) {
	live := len(p.entries)
	if p.graph != nil && live < ix.graphMin/2 {
		for _, e := range p.delta {
			e.deltaPos = -1
		}
		p.graph, p.delta = nil, nil
	}
	if ix.building || p.broken || live < ix.graphMin {
		return
	}
	if g := p.graph; g != nil && len(p.delta) <= len(g.byID)/semDeltaRatio && g.dead <= len(g.byID)/semDeadRatio {
		return
	}
	snap := make([]*semEntry, len(p.entries))
	copy(snap, p.entries)
	ix.building = true
	ix.builds.Add(1)
	go ix.build(p, snap)
}

// build makes a graph of snap, outside the lock (the entries' ids and
// vectors are never written), and publishes it on p.
func (ix *Index) build(p *semPartition, snap []*semEntry) {
	defer ix.builds.Done()
	g, err := semBuildGraph(snap)

	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.building = false
	if ix.parts[p.name] != p {
		return // dropped meanwhile
	}
	if err != nil {
		p.broken = true
		for _, e := range p.delta {
			e.deltaPos = -1
		}
		p.graph, p.delta = nil, nil
		return
	}
	if len(p.entries) < ix.graphMin/2 {
		ix.maintain(p)
		return
	}
	for _, e := range g.byID {
		if e.removed {
			g.dead++
		}
	}
	// The delta is what was added after the snapshot. Entries in the
	// previous delta or, without a previous graph, all entries may be.
	from := p.entries
	if p.graph != nil {
		from = p.delta
	}
	var delta []*semEntry
	for _, e := range from {
		e.deltaPos = -1
		if e.id > g.upTo {
			e.deltaPos = len(delta)
			delta = append(delta, e)
		}
	}
	p.graph, p.delta = g, delta
	ix.graphsBuilt++
	ix.maintain(p)
}

// semBuildGraph builds a graph of the entries (of distinct ids, in
// increasing id order or not).
func semBuildGraph(entries []*semEntry) (sg *semGraph, err error) {
	defer func() {
		if r := recover(); r != nil {
			sg, err = nil, fmt.Errorf("cache: hnsw: %v", r)
		}
	}()
	g := hnsw.NewGraph[uint64]()
	g.M = semGraphM
	g.Ml = semGraphMl
	g.EfSearch = semGraphEf
	// Every vector is unit length: the cosine distance is 1 - a·b.
	g.Distance = func(a, b []float32) float32 { return 1 - vek32.Dot(a, b) }
	sg = &semGraph{g: g, byID: make(map[uint64]*semEntry, len(entries))}
	for _, e := range entries {
		g.Add(hnsw.MakeNode(e.id, e.vec))
		sg.byID[e.id] = e
		sg.upTo = max(sg.upTo, e.id)
	}
	return sg, nil
}
