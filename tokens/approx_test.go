package tokens

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type corpusFile struct {
	name, text string
}

func corpus(t testing.TB) []corpusFile {
	t.Helper()
	paths, err := filepath.Glob("testdata/corpus/*")
	if err != nil || len(paths) == 0 {
		t.Fatal("no corpus", err)
	}
	sort.Strings(paths)
	var out []corpusFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusFile{filepath.Base(p), string(b)})
	}
	return out
}

// exact is the larger of the o200k_base and cl100k_base counts.
func exact(s string) int { return max(O200kBase.Count(s), Cl100kBase.Count(s)) }

// TestApproxCorpus checks that Approx over-estimates both tiktoken
// encodings on every sample of the corpus; -v shows by how much.
func TestApproxCorpus(t *testing.T) {
	for _, f := range corpus(t) {
		o, c, a := O200kBase.Count(f.text), Cl100kBase.Count(f.text), Approx.Count(f.text)
		t.Logf("%-22s %5d bytes  o200k %5d  cl100k %5d  approx %5d  ×%.2f", f.name, len(f.text), o, c, a, float64(a)/float64(max(o, c)))
		if a < max(o, c) {
			t.Errorf("%s: Approx %d < o200k %d / cl100k %d", f.name, a, o, c)
		}
	}
}

// TestApproxLines checks the same line by line, for the samples of real
// text (not the random ones), where a short text gives less room.
func TestApproxLines(t *testing.T) {
	for _, f := range corpus(t) {
		if strings.HasPrefix(f.name, "random") {
			continue
		}
		for _, line := range strings.SplitAfter(f.text, "\n") {
			if len(line) < 20 {
				continue
			}
			if a, e := Approx.Count(line), exact(line); a < e {
				t.Errorf("%s: Approx %d < %d for %q", f.name, a, e, line)
			}
		}
	}
}

func TestApproxSmall(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"", 0},
		{" ", 0},
		{"a", 1},
		{"hello", 2},       // 1 + 0.05×4, rounded up
		{"hello world", 3}, // the space before "world" is free
		{"123", 3},
		{"中", 1},
		{"🙂", 3},
		{"\xff", 1},
	} {
		if got := Approx.Count(tc.text); got != tc.want {
			t.Errorf("Approx.Count(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

func TestApproxAllocs(t *testing.T) {
	text := corpus(t)[0].text
	if n := testing.AllocsPerRun(10, func() { Approx.Count(text) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
