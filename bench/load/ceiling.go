package main

import (
	"math"
	"time"
)

// sustainedP99 is the corrected p99 a rate must stay within, next to
// successTarget, to count as sustained.
const sustainedP99 = 200 * time.Millisecond

// ceilingGrain is the granularity of the ceiling search's rates, and its
// lowest rate.
const ceilingGrain = 250

// defaultCeilingMax is -ceiling-max's default.
const defaultCeilingMax = 20000

// sustained reports whether r counts as sustained: an uninterrupted step
// with success >= successTarget and a corrected p99 <= sustainedP99.
func (r *stepResult) sustained() bool {
	return !r.interrupted && r.lat.n > 0 && r.success() >= successTarget && r.lat.p99 <= sustainedP99
}

// rateOutcome is whether one rate was sustained.
type rateOutcome struct {
	rate      int
	sustained bool
}

// ceilingSearch chooses the rates of one target's ceiling search in one
// mode, from the outcomes of the fixed rates and of its own earlier steps.
// It keeps lo, the highest rate sustained so far (0: none), and hi, the
// lowest rate above lo that failed (0: none).
//
//   - With lo > 0 it steps up by 25% (rounded to a multiple of ceilingGrain,
//     at least to the next multiple, at most max) while steps are
//     sustained. Once
//     the next step would reach hi, it takes one bisection step between lo
//     and hi (the multiple of ceilingGrain strictly between them nearest
//     their middle) and stops. It also stops at max.
//   - With no rate sustained it steps down from hi by 20% (the inverse of
//     25% up, same rounding, at least one grain down) while steps fail,
//     and stops below ceilingGrain; the first sustained step sets lo and
//     the search continues upward as above, which with hi one step above
//     means the one bisection step.
//
// From a low start (say 1,000 r/s) to a high ceiling this takes many steps
// (eight to 5,000 r/s); start -rates near the expected ceilings.
//
// The answer is lo. Use it as
//
//	for rate := s.next(); rate > 0; rate = s.next() {
//		s.record(rate, measure(rate))
//	}
type ceilingSearch struct {
	lo, hi    int
	max       int
	bisecting bool // the step handed out last is the bisection
	done      bool
}

// newCeilingSearch starts a search from the fixed rates' outcomes (any
// order), capped at maxRate. With no outcomes there is nothing to start
// from and the search is done at once.
func newCeilingSearch(fixed []rateOutcome, maxRate int) *ceilingSearch {
	s := &ceilingSearch{max: maxRate, done: len(fixed) == 0}
	for _, f := range fixed {
		if f.sustained && f.rate > s.lo {
			s.lo = f.rate
		}
	}
	for _, f := range fixed {
		if !f.sustained && f.rate > s.lo && (s.hi == 0 || f.rate < s.hi) {
			s.hi = f.rate
		}
	}
	return s
}

// best is the highest rate sustained so far, 0 for none.
func (s *ceilingSearch) best() int { return s.lo }

// next returns the next rate to measure, or 0 when the search is over.
func (s *ceilingSearch) next() int {
	if s.done {
		return 0
	}
	if s.lo == 0 {
		down := min(roundGrain(float64(s.hi)/1.25), (s.hi-1)/ceilingGrain*ceilingGrain)
		if down < ceilingGrain {
			s.done = true
			return 0
		}
		return down
	}
	up := min(max(roundGrain(float64(s.lo)*1.25), (s.lo/ceilingGrain+1)*ceilingGrain), s.max)
	if up <= s.lo {
		s.done = true
		return 0
	}
	if s.hi == 0 || up < s.hi {
		return up
	}
	// Multiples of ceilingGrain strictly between lo and hi: k0..k1 grains.
	k0, k1 := s.lo/ceilingGrain+1, (s.hi-1)/ceilingGrain
	if k0 > k1 {
		s.done = true
		return 0
	}
	k := int(math.Round(float64(s.lo+s.hi) / 2 / ceilingGrain))
	s.bisecting = true
	return min(max(k, k0), k1) * ceilingGrain
}

// record notes the outcome of the step next returned.
func (s *ceilingSearch) record(rate int, sustained bool) {
	if sustained {
		s.lo = max(s.lo, rate)
	} else if s.hi == 0 || rate < s.hi {
		s.hi = rate
	}
	if s.bisecting {
		s.done = true
	}
}

// roundGrain rounds x to the nearest multiple of ceilingGrain.
func roundGrain(x float64) int { return int(math.Round(x/ceilingGrain)) * ceilingGrain }
