package gguf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hybridgroup/yzma/pkg/llama"
	"github.com/stretchr/testify/require"
)

// llamaLibEnv names the directory of the llama.cpp shared libraries.
const llamaLibEnv = "SWITCHYARD_LLAMA_LIB"

// errNoLlama marks a missing library directory: the tests skip.
var errNoLlama = errors.New("llama.cpp libraries not found")

// loadLlama loads and initialises llama.cpp once per test process: Load and
// Init are process-global.
var loadLlama = sync.OnceValue(func() error {
	dir := os.Getenv(llamaLibEnv)
	if dir == "" {
		dir = filepath.Join("..", "..", ".llama", "lib")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "libllama.so")); err != nil {
		return fmt.Errorf("%w: %s has no libllama.so (set %s)", errNoLlama, dir, llamaLibEnv)
	}
	if err := llama.Load(dir); err != nil {
		return fmt.Errorf("llama.Load(%s): %w", dir, err)
	}
	llama.LogSet(llama.LogSilent())
	llama.Init()
	return nil
})

// needLlama skips the test when the libraries are missing and fails it when
// they are present but do not load.
func needLlama(t *testing.T) {
	t.Helper()
	err := loadLlama()
	if errors.Is(err, errNoLlama) && os.Getenv("SWITCHYARD_REQUIRE_LLAMA") != "1" {
		t.Skipf("skipping llama.cpp test: %v", err)
	}
	require.NoError(t, err)
}

func loadModel(t *testing.T, path string) llama.Model {
	t.Helper()
	model, err := llama.ModelLoadFromFile(path, llama.ModelDefaultParams())
	require.NoError(t, err, "loading %s", path)
	t.Cleanup(func() { llama.ModelFree(model) })
	return model
}

// greedy decodes prompt in a fresh single-thread context and returns n tokens
// chosen greedily.
func greedy(t *testing.T, model llama.Model, prompt []llama.Token, n int) []llama.Token {
	t.Helper()
	cp := llama.ContextDefaultParams()
	cp.NCtx = 512
	cp.NBatch = 512
	cp.NUbatch = 512
	cp.NSeqMax = 1
	// One thread: on a 2-core machine ggml's spinning workers are very slow.
	cp.NThreads = 1
	cp.NThreadsBatch = 1
	ctx, err := llama.InitFromModel(model, cp)
	require.NoError(t, err)
	defer llama.Free(ctx)

	smpl := llama.SamplerChainInit(llama.SamplerChainDefaultParams())
	llama.SamplerChainAdd(smpl, llama.SamplerInitGreedy())
	defer llama.SamplerFree(smpl)

	batch := prompt
	var out []llama.Token
	for len(out) < n {
		rc, err := llama.Decode(ctx, llama.BatchGetOne(batch))
		require.NoError(t, err)
		require.Zero(t, rc, "llama_decode")
		tok := llama.SamplerSample(smpl, ctx, -1) // also accepts the token
		out = append(out, tok)
		batch = []llama.Token{tok}
	}
	return out
}

func applyTemplate(t *testing.T, tmpl string, msgs ...[2]string) string {
	t.Helper()
	chat := make([]llama.ChatMessage, len(msgs))
	for i, m := range msgs {
		chat[i] = llama.NewChatMessage(m[0], m[1])
	}
	buf := make([]byte, 4096)
	n := llama.ChatApplyTemplate(tmpl, chat, true, buf)
	require.Positive(t, n, "llama_chat_apply_template failed")
	require.LessOrEqual(t, int(n), len(buf))
	return string(buf[:n])
}

func TestLlamaTiny(t *testing.T) {
	needLlama(t)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	require.NoError(t, GenerateFile(path, Tiny, 42))
	model := loadModel(t, path)
	vocab := llama.ModelGetVocab(model)
	voc, err := newVocab(Tiny.Vocab)
	require.NoError(t, err)
	id := func(piece string) llama.Token {
		for i, p := range voc.tokens {
			if p == piece {
				return llama.Token(i)
			}
		}
		t.Fatalf("piece %q not in vocabulary", piece)
		return -1
	}

	t.Run("hyperparameters", func(t *testing.T) {
		require.Equal(t, int32(Tiny.Vocab), llama.VocabNTokens(vocab))
		require.Equal(t, uint64(Tiny.Params()), llama.ModelNParams(model))
		require.Equal(t, int32(Tiny.Embd), llama.ModelNEmbd(model))
		require.Equal(t, int32(Tiny.Layers), llama.ModelNLayer(model))
		require.Equal(t, int32(Tiny.Heads), llama.ModelNHead(model))
		require.Equal(t, int32(Tiny.HeadsKV), llama.ModelNHeadKV(model))
		require.Equal(t, int32(Tiny.Context), llama.ModelNCtxTrain(model))
		require.Equal(t, llama.FtypeAllF32, llama.ModelFtype(model))
		t.Logf("model: %s, %d parameters", llama.ModelDesc(model), llama.ModelNParams(model))
	})

	t.Run("tokenize", func(t *testing.T) {
		tests := []struct {
			text string
			want []llama.Token
		}{
			{"hello world", []llama.Token{TokenBOS, id("▁hello"), id("▁world")}},
			{"Hello, world!", []llama.Token{TokenBOS, id("▁H"), id("e"), id("l"), id("l"), id("o"), id(","), id("▁world"), id("!")}},
			{"the 42", []llama.Token{TokenBOS, id("▁the"), id("▁4"), id("2")}},
			{"a\nb", []llama.Token{TokenBOS, id("▁a"), FirstByteToken + '\n', id("b")}},
			{"é", []llama.Token{TokenBOS, id("▁"), FirstByteToken + 0xC3, FirstByteToken + 0xA9}},
		}
		for _, tc := range tests {
			toks := llama.Tokenize(vocab, tc.text, true, false)
			require.Equal(t, tc.want, toks, "tokenize %q", tc.text)
			t.Logf("%q -> %v", tc.text, toks)
		}
		require.True(t, llama.VocabGetAddBOS(vocab))
		require.False(t, llama.VocabGetAddEOS(vocab))
		require.Equal(t, llama.Token(TokenBOS), llama.VocabBOS(vocab))
		require.Equal(t, llama.Token(TokenEOS), llama.VocabEOS(vocab))
		require.Equal(t, llama.Token(TokenIMEnd), llama.VocabEOT(vocab))
	})

	t.Run("special tokens", func(t *testing.T) {
		require.Equal(t, []llama.Token{TokenIMEnd}, llama.Tokenize(vocab, "<|im_end|>", false, true))
		require.Equal(t, []llama.Token{TokenIMStart}, llama.Tokenize(vocab, "<|im_start|>", false, true))
		require.Greater(t, len(llama.Tokenize(vocab, "<|im_end|>", false, false)), 1, "without parse_special it is plain text")
		eog := map[llama.Token]bool{TokenEOS: true, TokenIMEnd: true}
		for tok := range llama.Token(NumControlTokens) {
			require.Equal(t, eog[tok], llama.VocabIsEOG(vocab, tok), "VocabIsEOG(%d)", tok)
		}
		for _, tok := range []llama.Token{TokenBOS, TokenEOS, TokenIMStart, TokenIMEnd} {
			require.True(t, llama.VocabIsControl(vocab, tok), "VocabIsControl(%d)", tok)
		}
		require.False(t, llama.VocabIsEOG(vocab, id("▁hello")))
	})

	t.Run("chat template", func(t *testing.T) {
		tmpl := llama.ModelChatTemplate(model, "")
		require.Equal(t, ChatTemplate, tmpl)
		got := applyTemplate(t, tmpl, [2]string{"system", "Be brief."}, [2]string{"user", "hello world"})
		require.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n", got)
	})

	t.Run("generate", func(t *testing.T) {
		text := applyTemplate(t, ChatTemplate, [2]string{"user", "hello world"})
		prompt := llama.Tokenize(vocab, text, true, true)
		require.Equal(t, llama.Token(TokenBOS), prompt[0])
		require.Equal(t, llama.Token(TokenIMStart), prompt[1])

		first := greedy(t, model, prompt, 16)
		require.Len(t, first, 16)
		for _, tok := range first {
			require.GreaterOrEqual(t, tok, llama.Token(NumControlTokens), "control token generated")
			require.Less(t, tok, llama.Token(Tiny.Vocab))
			require.False(t, llama.VocabIsEOG(vocab, tok))
		}
		second := greedy(t, model, prompt, 16)
		require.Equal(t, first, second, "greedy decoding is deterministic")
		t.Logf("greedy: %v %q", first, llama.Detokenize(vocab, first, false, true))
	})

	t.Run("quantize", func(t *testing.T) {
		prompt := llama.Tokenize(vocab, "hello world", true, false)
		tests := []struct {
			name  string
			ftype llama.Ftype
			types []GGMLType // tensor types the quantized file must contain
		}{
			{"Q8_0", llama.FtypeMostlyQ8_0, []GGMLType{TypeQ8_0}},
			// n_embd 64 is not a multiple of 256: llama.cpp falls back to
			// Q5_0 and Q8_0 for every matrix.
			{"Q4_K_M", llama.FtypeMostlyQ4_K_M, []GGMLType{TypeQ5_0}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				q := quantize(t, path, tc.ftype, tc.types)
				tok := greedy(t, q, prompt, 1)
				require.GreaterOrEqual(t, tok[0], llama.Token(NumControlTokens))
			})
		}
	})
}

// quantize quantizes the model at path with llama.cpp, checks the result with
// ReadFile and loads it.
func quantize(t *testing.T, path string, ftype llama.Ftype, types []GGMLType) llama.Model {
	t.Helper()
	src, err := os.Stat(path)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), fmt.Sprintf("q%d.gguf", ftype))
	qp := llama.ModelQuantizeDefaultParams()
	qp.Ftype = ftype
	qp.NThread = 1
	require.Zero(t, llama.ModelQuantize(path, out, &qp), "llama_model_quantize")

	info, err := ReadFile(out)
	require.NoError(t, err)
	ft, ok := info.Lookup("general.file_type")
	require.True(t, ok)
	require.Equal(t, uint32(ftype), ft)
	counts := map[GGMLType]int{}
	for _, ten := range info.Tensors {
		counts[ten.Type]++
	}
	for _, typ := range types {
		require.Positive(t, counts[typ], "no %s tensor", typ)
	}
	st, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, info.Size+padding(info.Size, info.Alignment), st.Size(), "llama.cpp pads the last tensor too")
	require.Less(t, st.Size(), src.Size())
	t.Logf("%s: %d bytes (F32 %d), tensor types %v", filepath.Base(out), st.Size(), src.Size(), counts)

	q := loadModel(t, out)
	require.Equal(t, ftype, llama.ModelFtype(q))
	return q
}

// TestLlamaKQuant checks that a shape with n_embd and n_ff multiples of 256
// quantizes to real k-quants.
func TestLlamaKQuant(t *testing.T) {
	needLlama(t)
	s := Shape{Name: "k-quant", Embd: 256, Layers: 1, Heads: 4, HeadsKV: 2, FF: 512, Context: 256, Vocab: 512}
	path := filepath.Join(t.TempDir(), "k.gguf")
	require.NoError(t, GenerateFile(path, s, 7))
	q := quantize(t, path, llama.FtypeMostlyQ4_K_M, []GGMLType{TypeQ4_K, TypeQ6_K})
	require.Equal(t, uint64(s.Params()), llama.ModelNParams(q))
	vocab := llama.ModelGetVocab(q)
	toks := greedy(t, q, llama.Tokenize(vocab, "hello world", true, false), 4)
	for _, tok := range toks {
		require.GreaterOrEqual(t, tok, llama.Token(NumControlTokens))
	}
}
