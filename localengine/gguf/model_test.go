package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func generateTiny(t *testing.T, seed int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Generate(&buf, Tiny, seed))
	return buf.Bytes()
}

// float32At decodes the i-th float32 of a tensor's data.
func float32At(data []byte, info *Info, tensor *Tensor, i int64) float32 {
	p := info.DataOffset + tensor.Offset + 4*i
	return math.Float32frombits(binary.LittleEndian.Uint32(data[p:]))
}

func TestTinyRoundTrip(t *testing.T) {
	data := generateTiny(t, 1)
	require.Less(t, len(data), 1<<20, "Tiny must stay under 1 MB")

	info, err := Read(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, uint32(3), info.Version)
	require.Equal(t, int64(32), info.Alignment)
	require.Zero(t, info.DataOffset%32)
	require.Equal(t, info.Size+padding(info.Size, 32), int64(len(data)))

	headDim := uint32(Tiny.Embd / Tiny.Heads)
	wantKV := []struct {
		key  string
		want any
	}{
		{"general.architecture", "llama"},
		{"general.name", Tiny.Name},
		{"general.file_type", uint32(0)},
		{"general.alignment", uint32(32)},
		{"llama.context_length", uint32(Tiny.Context)},
		{"llama.embedding_length", uint32(Tiny.Embd)},
		{"llama.block_count", uint32(Tiny.Layers)},
		{"llama.feed_forward_length", uint32(Tiny.FF)},
		{"llama.attention.head_count", uint32(Tiny.Heads)},
		{"llama.attention.head_count_kv", uint32(Tiny.HeadsKV)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.rope.dimension_count", headDim},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.vocab_size", uint32(Tiny.Vocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.eot_token_id", uint32(4)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
		{"tokenizer.chat_template", ChatTemplate},
	}
	for _, kv := range wantKV {
		got, ok := info.Lookup(kv.key)
		require.True(t, ok, "missing %s", kv.key)
		require.Equal(t, kv.want, got, kv.key)
	}
	tokens, _ := info.Lookup("tokenizer.ggml.tokens")
	scores, _ := info.Lookup("tokenizer.ggml.scores")
	types, _ := info.Lookup("tokenizer.ggml.token_type")
	require.Len(t, tokens, Tiny.Vocab)
	require.Len(t, scores, Tiny.Vocab)
	require.Len(t, types, Tiny.Vocab)
	require.Equal(t, []string{"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<0x00>"}, tokens.([]string)[:6])

	e, v, kvDim := int64(Tiny.Embd), int64(Tiny.Vocab), int64(Tiny.HeadsKV)*int64(headDim)
	wantShapes := map[string][]int64{
		"token_embd.weight":  {e, v},
		"output_norm.weight": {e},
		"output.weight":      {e, v},
	}
	for _, l := range []string{"blk.0.", "blk.1."} {
		wantShapes[l+"attn_norm.weight"] = []int64{e}
		wantShapes[l+"attn_q.weight"] = []int64{e, e}
		wantShapes[l+"attn_k.weight"] = []int64{e, kvDim}
		wantShapes[l+"attn_v.weight"] = []int64{e, kvDim}
		wantShapes[l+"attn_output.weight"] = []int64{e, e}
		wantShapes[l+"ffn_norm.weight"] = []int64{e}
		wantShapes[l+"ffn_gate.weight"] = []int64{e, int64(Tiny.FF)}
		wantShapes[l+"ffn_up.weight"] = []int64{e, int64(Tiny.FF)}
		wantShapes[l+"ffn_down.weight"] = []int64{int64(Tiny.FF), e}
	}
	require.Len(t, info.Tensors, len(wantShapes))
	var params int64
	for _, tensor := range info.Tensors {
		require.Equal(t, wantShapes[tensor.Name], tensor.Dims, tensor.Name)
		require.Equal(t, TypeF32, tensor.Type)
		require.Zero(t, tensor.Offset%32, tensor.Name)
		params += tensor.Elements()
	}
	require.Equal(t, Tiny.Params(), params)

	// Norms are 1; the control-token rows of output.weight are 0, the rest
	// is random with the configured spread.
	norm, _ := info.Tensor("output_norm.weight")
	for i := range e {
		require.Equal(t, float32(1), float32At(data, info, norm, i))
	}
	out, _ := info.Tensor("output.weight")
	var sum, sumSq float64
	for i := range out.Elements() {
		x := float32At(data, info, out, i)
		if i < NumControlTokens*e {
			require.Zero(t, x, "output.weight element %d of a control token row", i)
			continue
		}
		require.NotZero(t, x, "element %d", i)
		sum += float64(x)
		sumSq += float64(x) * float64(x)
	}
	n := float64(out.Elements() - NumControlTokens*e)
	mean, std := sum/n, math.Sqrt(sumSq/n-(sum/n)*(sum/n))
	require.InDelta(t, 0, mean, 0.001)
	require.InDelta(t, WeightStdDev, std, 0.001)
}

func TestDeterminism(t *testing.T) {
	hash := func(b []byte) string {
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	a1, a2, b := hash(generateTiny(t, 1)), hash(generateTiny(t, 1)), hash(generateTiny(t, 2))
	require.Equal(t, a1, a2, "same seed, same bytes")
	require.NotEqual(t, a1, b, "other seed, other bytes")

	// Only the tensor data depends on the seed.
	i1, err := Read(bytes.NewReader(generateTiny(t, 1)))
	require.NoError(t, err)
	i2, err := Read(bytes.NewReader(generateTiny(t, 2)))
	require.NoError(t, err)
	require.Equal(t, i1.KV, i2.KV)
	require.Equal(t, i1.Tensors, i2.Tensors)

	// Tensors have independent streams: no two tensors share data.
	data := generateTiny(t, 1)
	seen := map[float32]string{}
	for i := range i1.Tensors {
		tensor := &i1.Tensors[i]
		if len(tensor.Dims) == 1 {
			continue // norms are all 1
		}
		first := NumControlTokens * int64(Tiny.Embd) // skip zero rows of output.weight
		x := float32At(data, i1, tensor, first)
		require.NotContains(t, seen, x, "%s starts like %s", tensor.Name, seen[x])
		seen[x] = tensor.Name
	}
}

func TestGenerateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	require.NoError(t, GenerateFile(path, Tiny, 5))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, generateTiny(t, 5), got)
	_, err = os.Stat(path + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist)
	info, err := ReadFile(path)
	require.NoError(t, err)
	require.Len(t, info.Tensors, 3+9*Tiny.Layers)

	// Errors leave nothing behind.
	bad := filepath.Join(dir, "bad.gguf")
	require.Error(t, GenerateFile(bad, Shape{}, 1))
	require.Error(t, GenerateFile(filepath.Join(dir, "missing", "x.gguf"), Tiny, 1))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestShapeValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Shape)
		msg  string
	}{
		{"tiny", func(*Shape) {}, ""},
		{"no layers", func(s *Shape) { s.Layers = 0 }, "positive"},
		{"negative embd", func(s *Shape) { s.Embd = -64 }, "positive"},
		{"embd not multiple of heads", func(s *Shape) { s.Embd = 66 }, "multiple of Heads"},
		{"odd head size", func(s *Shape) { s.Embd, s.Heads = 60, 4 }, "odd"},
		{"kv heads do not divide heads", func(s *Shape) { s.HeadsKV = 3 }, "HeadsKV"},
		{"vocab too small", func(s *Shape) { s.Vocab = MinVocab - 1 }, "Vocab"},
		{"vocab minimal", func(s *Shape) { s.Vocab = MinVocab }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Tiny
			tc.mod(&s)
			err := s.Validate()
			if tc.msg == "" {
				require.NoError(t, err)
				_, err = Model(s, 1)
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.msg)
			require.Error(t, Generate(io.Discard, s, 1))
		})
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		name  string
		shape Shape
		want  int64
	}{
		// 2·512·64 + 64 + 2·(2·64 + 2·64·64 + 2·64·32 + 3·64·128)
		{"tiny", Tiny, 139584},
		// 2·32000·768 + 768 + 12·(2·768 + 2·768² + 2·768·256 + 3·768·2048)
		{"bench", Bench, 124668672},
		{"mha", Shape{Embd: 128, Layers: 1, Heads: 2, HeadsKV: 2, FF: 256, Context: 64, Vocab: 300}, 2*300*128 + 128 + (2*128 + 4*128*128 + 3*128*256)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.shape.Params())
			// The tensors of the model hold exactly Params elements.
			f, err := Model(tc.shape, 1)
			require.NoError(t, err)
			var n int64
			for i := range f.Tensors {
				n += f.Tensors[i].Elements()
			}
			require.Equal(t, tc.want, n)
		})
	}
	require.InDelta(t, 100e6, float64(Bench.Params()), 30e6, "Bench is about 100M parameters")
	require.Zero(t, Bench.Embd%256)
	require.Zero(t, Bench.FF%256)
}

// TestBench generates the Bench model into a hash, without touching the disk.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 500 MB Bench model in -short mode")
	}
	if raceEnabled {
		t.Skip("skipping the 500 MB Bench model under the race detector: it takes 15 s instead of 1 s")
	}
	start := time.Now()
	h := sha256.New()
	cw := &countingWriter{w: h}
	require.NoError(t, Generate(cw, Bench, 1))
	elapsed := time.Since(start)

	f, err := Model(Bench, 1)
	require.NoError(t, err)
	meta, _, err := f.encodeMeta(DefaultAlignment)
	require.NoError(t, err)
	// F32 data is 4 bytes per parameter; tensor sizes are multiples of 32 so
	// there is no padding.
	require.Equal(t, int64(len(meta))+4*Bench.Params(), cw.n)
	t.Logf("Bench: %d parameters, %d bytes, generated in %v", Bench.Params(), cw.n, elapsed)
}
