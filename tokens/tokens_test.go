package tokens

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiktoken-go/tokenizer/codec"
)

func codecOf(e Encoding) *codec.Codec { return e.(*bpe).load() }

// TestPublished checks the tokenizer against token ids OpenAI published:
// the cookbook "How to count tokens with tiktoken" and tiktoken's README.
func TestPublished(t *testing.T) {
	for _, tc := range []struct {
		enc  Encoding
		text string
		ids  []uint
	}{
		{Cl100kBase, "hello world", []uint{15339, 1917}},
		{O200kBase, "tiktoken is great!", []uint{83, 8251, 2488, 382, 2212, 0}},
		{Cl100kBase, "antidisestablishmentarianism", []uint{519, 85342, 34500, 479, 8997, 2191}},
		{O200kBase, "antidisestablishmentarianism", []uint{493, 129901, 376, 160388, 21203, 2367}},
		{Cl100kBase, "2 + 2 = 4", []uint{17, 489, 220, 17, 284, 220, 19}},
		{O200kBase, "2 + 2 = 4", []uint{17, 659, 220, 17, 314, 220, 19}},
		{Cl100kBase, "お誕生日おめでとう", []uint{33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699}},
		{O200kBase, "お誕生日おめでとう", []uint{8930, 9697, 243, 128225, 8930, 17693, 4344, 48669}},
	} {
		ids, _, err := codecOf(tc.enc).Encode(tc.text)
		if err != nil || fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
			t.Errorf("%v %q: ids %v, %v; want %v", tc.enc, tc.text, ids, err, tc.ids)
		}
		if n := tc.enc.Count(tc.text); n != len(tc.ids) {
			t.Errorf("%v.Count(%q) = %d, want %d", tc.enc, tc.text, n, len(tc.ids))
		}
	}
}

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		model string
		want  Encoding
	}{
		{"gpt-4o", O200kBase},
		{"gpt-4o-mini-2024-07-18", O200kBase},
		{"GPT-4o", O200kBase},
		{"chatgpt-4o-latest", O200kBase},
		{"gpt-4.1", O200kBase},
		{"gpt-4.1-nano", O200kBase},
		{"gpt-4.5-preview", O200kBase},
		{"gpt-5", O200kBase},
		{"gpt-5-mini-2025-08-07", O200kBase},
		{"gpt-oss-120b", O200kBase},
		{"o1", O200kBase},
		{"o1-mini", O200kBase},
		{"o3", O200kBase},
		{"o3-mini-2025-01-31", O200kBase},
		{"o4-mini", O200kBase},
		{"codex-mini-latest", O200kBase},
		{"ft:gpt-4o-mini-2024-07-18:acme::9xYz", O200kBase},
		{"openai/gpt-4o", O200kBase},
		{"azure/gpt-4o", O200kBase},
		{"gpt-4", Cl100kBase},
		{"gpt-4-0613", Cl100kBase},
		{"gpt-4-turbo", Cl100kBase},
		{"gpt-4-32k", Cl100kBase},
		{"gpt-3.5-turbo", Cl100kBase},
		{"gpt-3.5-turbo-0125", Cl100kBase},
		{"gpt-35-turbo", Cl100kBase},
		{"ft:gpt-3.5-turbo-0613:acme::8abc", Cl100kBase},
		{"text-embedding-3-small", Cl100kBase},
		{"text-embedding-3-large", Cl100kBase},
		{"text-embedding-ada-002", Cl100kBase},
		{"davinci-002", Cl100kBase},
		{"claude-3-5-sonnet-20241022", Approx},
		{"claude-sonnet-4-5", Approx},
		{"anthropic.claude-3-haiku-20240307-v1:0", Approx},
		{"gemini-2.5-pro", Approx},
		{"gemini-1.5-flash", Approx},
		{"meta-llama/Llama-3.1-8B-Instruct", Approx},
		{"llama3.2", Approx},
		{"mistral-large-latest", Approx},
		{"mixtral-8x7b", Approx},
		{"qwen2.5-7b-instruct", Approx},
		{"o", Approx},
		{"omni-moderation-latest", Approx},
		{"olmo-2", Approx},
		{"", Approx},
	} {
		if got := For(tc.model); got != tc.want {
			t.Errorf("For(%q) = %v, want %v", tc.model, got, tc.want)
		}
	}
}

func TestFunc(t *testing.T) {
	var enc Encoding = Func(func(s string) int { return len(strings.Fields(s)) })
	if n := enc.Count("three little words"); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	body := []byte(`{"messages":[{"role":"user","content":"one two three"}]}`)
	// 3 per message, "user" 1, content 3, reply 3.
	if n := Prompt(enc, OpChat, body); n != 10 {
		t.Fatalf("Prompt = %d, want 10", n)
	}
}

// TestLongSpace checks long whitespace runs: counted in pieces, at least
// what the tokenizer counts whole and at most a token a piece more.
func TestLongSpace(t *testing.T) {
	for _, enc := range []Encoding{O200kBase, Cl100kBase} {
		c := codecOf(enc)
		for _, s := range []string{
			"a" + strings.Repeat(" ", spaceChunk) + "b",
			"a" + strings.Repeat(" \n", 1000) + "b",
			strings.Repeat("\n", 3000),
			"x" + strings.Repeat("\u3000\n", 700) + "y" + strings.Repeat("\t ", 50),
			"def f():\n" + strings.Repeat("    \n", 200) + "    return 1\n",
			strings.Repeat(" ", 5000) + "z",
			strings.Repeat("\u00a0\r\n", 900),
		} {
			want, _ := c.Count(s)
			got := enc.Count(s)
			pieces := (len(s) + spaceChunk - 1) / spaceChunk
			if got < want || got > want+2*pieces {
				t.Errorf("%v: %d bytes counted %d, tokenizer says %d", enc, len(s), got, want)
			}
		}
		for _, s := range []string{"", " ", "hello world", strings.Repeat(" ", spaceChunk), "a\n\n\n\n  b"} {
			want, _ := c.Count(s)
			if got := enc.Count(s); got != want {
				t.Errorf("%v.Count(%q) = %d, want %d", enc, s, got, want)
			}
		}
	}
}

func TestLongSpaceBounds(t *testing.T) {
	for _, tc := range []struct {
		s    string
		i, j int
	}{
		{"", -1, -1},
		{strings.Repeat(" ", spaceChunk), -1, -1},
		{strings.Repeat(" ", spaceChunk+1), 0, spaceChunk + 1},
		{"ab" + strings.Repeat("\n ", 40) + "c", 2, 82},
		{"a b" + strings.Repeat("\u3000", 30) + "c", 3, 93},
		{"a" + strings.Repeat("\u3000", 21) + "c", -1, -1},
	} {
		if i, j := longSpace(tc.s); i != tc.i || j != tc.j {
			t.Errorf("longSpace(%q) = %d, %d; want %d, %d", tc.s, i, j, tc.i, tc.j)
		}
	}
}

func TestConcurrent(t *testing.T) {
	text, err := os.ReadFile("testdata/corpus/english.txt")
	if err != nil {
		t.Fatal(err)
	}
	fresh := []Encoding{&bpe{name: "o200k_base", new: codec.NewO200kBase}, &bpe{name: "cl100k_base", new: codec.NewCl100kBase}}
	want := []int{O200kBase.Count(string(text)), Cl100kBase.Count(string(text))}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				k := (g + i) % 2
				if n := fresh[k].Count(string(text)); n != want[k] {
					t.Errorf("%v: %d, want %d", fresh[k], n, want[k])
				}
			}
		})
	}
	wg.Wait()
}

// TestLoadCost measures, in a fresh process, what loading each encoding
// costs: run with -v to see it.
func TestLoadCost(t *testing.T) {
	if name := os.Getenv("TOKENS_LOAD_CHILD"); name != "" {
		loadChild(name)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, name := range []string{"o200k_base", "cl100k_base", "both"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadCost$")
		cmd.Env = append(os.Environ(), "TOKENS_LOAD_CHILD="+name)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		i := strings.Index(string(out), "{")
		j := strings.Index(string(out), "}")
		if i < 0 || j < i {
			t.Fatalf("%s: %s", name, out)
		}
		var m map[string]float64
		if err := json.Unmarshal(out[i:j+1], &m); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-11s first count %5.1f ms, then %5.1f µs; heap +%5.1f MiB, RSS +%5.1f MiB",
			name, m["first_ms"], m["second_us"], m["heap_mib"], m["rss_mib"])
	}
}

func loadChild(name string) {
	encs := map[string][]Encoding{"o200k_base": {O200kBase}, "cl100k_base": {Cl100kBase}, "both": {O200kBase, Cl100kBase}}[name]
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := rss()
	start := time.Now()
	for _, e := range encs {
		e.Count("hello world")
	}
	first := time.Since(start)
	start = time.Now()
	for _, e := range encs {
		e.Count("hello world")
	}
	second := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Printf(`{"first_ms":%f,"second_us":%f,"heap_mib":%f,"rss_mib":%f}`+"\n",
		first.Seconds()*1e3, second.Seconds()*1e6,
		float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), float64(rss()-rss0)/(1<<20))
}

// rss is the process's resident set in bytes (Linux), or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
