package localengine

import (
	"strings"
	"unicode/utf8"
)

// textOut turns token pieces into the text a client sees: it never splits
// a UTF-8 character across two deltas (a piece may end inside one), and it
// holds back text that could be the start of a stop sequence until it is
// known not to be one. A stop sequence itself is never emitted.
type textOut struct {
	stops   []string
	partial []byte // bytes of an unfinished UTF-8 character
	held    string // text that may be the start of a stop sequence
	stopped bool
}

// push adds a token's piece. It returns the text that is safe to emit and
// whether a stop sequence was reached (after which push must not be
// called again).
func (t *textOut) push(piece []byte) (string, bool) {
	t.partial = append(t.partial, piece...)
	n := completeUTF8(t.partial)
	text := t.held + string(t.partial[:n])
	t.partial = append(t.partial[:0], t.partial[n:]...)
	t.held = ""
	if len(t.stops) == 0 {
		return text, false
	}
	if i := firstStop(text, t.stops); i >= 0 {
		t.stopped = true
		t.partial = t.partial[:0]
		return text[:i], true
	}
	keep := heldSuffix(text, t.stops)
	t.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// flush returns what is still held when generation ends for another
// reason: held text, and an unfinished character as U+FFFD.
func (t *textOut) flush() string {
	out := t.held
	if len(t.partial) > 0 {
		out += strings.ToValidUTF8(string(t.partial), "\uFFFD")
	}
	t.held, t.partial = "", t.partial[:0]
	return out
}

// completeUTF8 is the length of b's longest prefix that does not end in
// the middle of a UTF-8 sequence. Invalid bytes count as complete (they
// become U+FFFD when encoded), so only a truncated valid start is held.
func completeUTF8(b []byte) int {
	// A character is at most 4 bytes: look back at most 3.
	for back := 1; back <= 3 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c&0xC0 == 0x80 {
			continue // continuation byte: keep looking for the start
		}
		if c < utf8.RuneSelf {
			return len(b)
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		default:
			return len(b) // invalid start byte
		}
		if back < need {
			return len(b) - back // the character is not complete yet
		}
		return len(b)
	}
	return len(b)
}

// firstStop is the index of the earliest stop sequence in text, or -1.
func firstStop(text string, stops []string) int {
	best := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// heldSuffix is the length of the longest suffix of text that is a proper
// prefix of a stop sequence.
func heldSuffix(text string, stops []string) int {
	keep := 0
	for _, s := range stops {
		for n := min(len(s)-1, len(text)); n > keep; n-- {
			if strings.HasSuffix(text, s[:n]) {
				keep = n
				break
			}
		}
	}
	return keep
}
