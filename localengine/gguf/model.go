package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
)

// ChatTemplate is the ChatML Jinja chat template of every generated model
// (tokenizer.chat_template). llama.cpp's built-in template detection
// recognises it as "chatml".
const ChatTemplate = "{% for message in messages %}" +
	"{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// Hyperparameters shared by every generated model.
const (
	// RMSNormEpsilon is llama.attention.layer_norm_rms_epsilon.
	RMSNormEpsilon = 1e-5
	// RopeFreqBase is llama.rope.freq_base.
	RopeFreqBase = 10000
	// WeightStdDev is the standard deviation of the random weights.
	WeightStdDev = 0.02
)

// Shape is the architecture of a generated llama model.
type Shape struct {
	// Name becomes general.name.
	Name string
	// Embd is n_embd, the hidden size. It must be a multiple of Heads, and the
	// head size Embd/Heads must be even. Use a multiple of 256 for every
	// tensor to take k-quants such as Q4_K.
	Embd int
	// Layers is the number of transformer blocks.
	Layers int
	// Heads is the number of attention heads.
	Heads int
	// HeadsKV is the number of key/value heads (grouped-query attention). It
	// must divide Heads.
	HeadsKV int
	// FF is the feed-forward (SwiGLU) hidden size.
	FF int
	// Context is the training context length, llama.context_length, which
	// also caps the per-sequence context llama.cpp gives a context.
	Context int
	// Vocab is the total number of tokens, including the special tokens and
	// the 256 byte tokens; at least [MinVocab]. Pieces beyond the built-in
	// list are synthesized.
	Vocab int
}

// Tiny is a model of 139,584 parameters (a 571,488-byte file) that loads
// and runs in milliseconds. Shapes are values: copy and modify freely.
var Tiny = Shape{
	Name:    "switchyard-tiny-llama",
	Embd:    64,
	Layers:  2,
	Heads:   4,
	HeadsKV: 2,
	FF:      128,
	Context: 512,
	Vocab:   512,
}

// Bench is a model of about 125M parameters (a 500 MB F32 file) for
// throughput measurements. Its Embd and FF are multiples of 256, so all its
// matrices quantize to Q4_K.
var Bench = Shape{
	Name:    "switchyard-bench-llama",
	Embd:    768,
	Layers:  12,
	Heads:   12,
	HeadsKV: 4,
	FF:      2048,
	Context: 2048,
	Vocab:   32000,
}

// maxVocab bounds Shape.Vocab so token ids fit an int32 comfortably.
const maxVocab = 1 << 24

// Validate reports whether the shape describes a valid model.
func (s Shape) Validate() error {
	switch {
	case s.Embd <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.HeadsKV <= 0 || s.FF <= 0 || s.Context <= 0:
		return fmt.Errorf("gguf: shape %+v: all sizes must be positive", s)
	case s.Embd%s.Heads != 0:
		return fmt.Errorf("gguf: shape %+v: Embd is not a multiple of Heads", s)
	case (s.Embd/s.Heads)%2 != 0:
		return fmt.Errorf("gguf: shape %+v: head size %d is odd, RoPE needs it even", s, s.Embd/s.Heads)
	case s.Heads%s.HeadsKV != 0:
		return fmt.Errorf("gguf: shape %+v: HeadsKV does not divide Heads", s)
	case s.Vocab < MinVocab || s.Vocab > maxVocab:
		return fmt.Errorf("gguf: shape %+v: Vocab must be in [%d, %d]", s, MinVocab, maxVocab)
	case s.Context > math.MaxUint32 || s.Embd > math.MaxUint32 || s.FF > math.MaxUint32 || s.Layers > math.MaxUint32:
		return fmt.Errorf("gguf: shape %+v: sizes must fit uint32", s)
	}
	return nil
}

// HeadDim returns the size of one attention head, Embd/Heads.
func (s Shape) HeadDim() int { return s.Embd / s.Heads }

// Params returns the number of parameters of the model: token embeddings
// and output matrix (Vocab×Embd each), the output norm, and per layer two
// norms, the query and attention-output matrices (Embd×Embd each), the key and
// value matrices (Embd×HeadsKV·HeadDim each) and three FFN matrices
// (Embd×FF each).
func (s Shape) Params() int64 {
	e, v, ff := int64(s.Embd), int64(s.Vocab), int64(s.FF)
	kv := int64(s.HeadsKV) * int64(s.HeadDim())
	perLayer := 2*e + 2*e*e + 2*e*kv + 3*e*ff
	return 2*v*e + e + int64(s.Layers)*perLayer
}

// Model returns the GGUF content of a llama model of shape s with weights
// drawn from N(0, [WeightStdDev]²) by PCG generators seeded from seed; norm
// weights are 1. Tensor data is generated while the file is written, so
// memory use stays small even for large shapes, and writing the same File
// twice gives the same bytes.
//
// The rows of output.weight for the control tokens (ids 0 to
// [NumControlTokens]-1: <unk>, <s>, </s>, <|im_start|>, <|im_end|>) are all
// zero. Their logits are therefore exactly 0 while the others are random with
// a positive maximum, so greedy decoding practically never picks a control
// token and never stops by itself: tests can count generated tokens.
//
// The vocabulary is SentencePiece style (tokenizer.ggml.model "llama") with
// byte fallback; see the Token* constants for the special ids. BOS is added
// to prompts, EOS is not. <|im_end|> is the end-of-turn token
// (tokenizer.ggml.eot_token_id), so llama.cpp treats it, and </s>, as
// end-of-generation. The chat template is [ChatTemplate].
func Model(s Shape, seed int64) (*File, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	voc, err := newVocab(s.Vocab)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "switchyard-random-llama"
	}
	u32 := func(n int) uint32 { return uint32(n) }
	f := &File{KV: []KV{
		{"general.architecture", "llama"},
		{"general.name", name},
		{"general.file_type", uint32(0)}, // LLAMA_FTYPE_ALL_F32
		{KeyAlignment, uint32(DefaultAlignment)},
		{"llama.context_length", u32(s.Context)},
		{"llama.embedding_length", u32(s.Embd)},
		{"llama.block_count", u32(s.Layers)},
		{"llama.feed_forward_length", u32(s.FF)},
		{"llama.attention.head_count", u32(s.Heads)},
		{"llama.attention.head_count_kv", u32(s.HeadsKV)},
		{"llama.attention.layer_norm_rms_epsilon", float32(RMSNormEpsilon)},
		{"llama.rope.dimension_count", u32(s.HeadDim())},
		{"llama.rope.freq_base", float32(RopeFreqBase)},
		{"llama.vocab_size", u32(s.Vocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", voc.tokens},
		{"tokenizer.ggml.scores", voc.scores},
		{"tokenizer.ggml.token_type", voc.types},
		{"tokenizer.ggml.unknown_token_id", uint32(TokenUnknown)},
		{"tokenizer.ggml.bos_token_id", uint32(TokenBOS)},
		{"tokenizer.ggml.eos_token_id", uint32(TokenEOS)},
		{"tokenizer.ggml.eot_token_id", uint32(TokenIMEnd)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
		{"tokenizer.ggml.add_space_prefix", true},
		{"tokenizer.chat_template", ChatTemplate},
	}}

	e, v, ff := int64(s.Embd), int64(s.Vocab), int64(s.FF)
	kv := int64(s.HeadsKV) * int64(s.HeadDim())
	stream := uint64(0)
	random := func(name string, dims ...int64) Tensor {
		stream++
		t := Tensor{Name: name, Type: TypeF32, Dims: dims}
		t.Data = &randomF32{seed: uint64(seed), stream: stream, n: t.Elements()}
		return t
	}
	ones := func(name string, n int64) Tensor {
		return Tensor{Name: name, Type: TypeF32, Dims: []int64{n}, Data: constF32{n: n, v: 1}}
	}

	f.Tensors = append(f.Tensors, random("token_embd.weight", e, v))
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		f.Tensors = append(f.Tensors,
			ones(p+"attn_norm.weight", e),
			random(p+"attn_q.weight", e, e),
			random(p+"attn_k.weight", e, kv),
			random(p+"attn_v.weight", e, kv),
			random(p+"attn_output.weight", e, e),
			ones(p+"ffn_norm.weight", e),
			random(p+"ffn_gate.weight", e, ff),
			random(p+"ffn_up.weight", e, ff),
			random(p+"ffn_down.weight", ff, e),
		)
	}
	out := random("output.weight", e, v)
	out.Data.(*randomF32).zero = NumControlTokens * e
	f.Tensors = append(f.Tensors, ones("output_norm.weight", e), out)
	return f, nil
}

// Generate writes a llama model of shape s with weights seeded by seed to w;
// see [Model]. The same shape and seed always give the same bytes.
func Generate(w io.Writer, s Shape, seed int64) error {
	f, err := Model(s, seed)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := f.WriteTo(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// GenerateFile writes the model of [Generate] to path. It writes path+".tmp"
// first and renames it, so path never holds a partial file.
func GenerateFile(path string, s Shape, seed int64) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := Generate(f, s, seed); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// chunkFloats is the number of float32 values encoded per write.
const chunkFloats = 16 << 10

// randomF32 is tensor data of n float32 values from N(0, WeightStdDev²),
// except that the first zero values are 0. Each tensor has its own PCG
// stream, so the data does not depend on which tensors were written before.
type randomF32 struct {
	seed, stream uint64
	n, zero      int64
}

func (r *randomF32) WriteTo(w io.Writer) (int64, error) {
	rng := rand.New(rand.NewPCG(splitmix64(r.seed), splitmix64(r.stream)))
	buf := make([]byte, 4*chunkFloats)
	var written int64
	for i := int64(0); i < r.n; {
		k := min(r.n-i, chunkFloats)
		b := buf[:4*k]
		for j := range k {
			var x float32
			if i+j >= r.zero {
				x = float32(rng.NormFloat64() * WeightStdDev)
			}
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
		}
		n, err := w.Write(b)
		written += int64(n)
		if err != nil {
			return written, err
		}
		i += k
	}
	return written, nil
}

// constF32 is tensor data of n float32 values equal to v.
type constF32 struct {
	n int64
	v float32
}

func (c constF32) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 4*min(c.n, chunkFloats))
	for j := 0; j < len(buf); j += 4 {
		binary.LittleEndian.PutUint32(buf[j:], math.Float32bits(c.v))
	}
	var written int64
	for written < 4*c.n {
		n, err := w.Write(buf[:min(int64(len(buf)), 4*c.n-written)])
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// splitmix64 scrambles a seed so that nearby seeds and stream numbers start
// unrelated PCG states.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
