package gguf

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// allValuesKV has one key of every supported value type.
func allValuesKV() []KV {
	return []KV{
		{"general.architecture", "test"},
		{"v.u8", uint8(200)},
		{"v.i8", int8(-100)},
		{"v.u16", uint16(60000)},
		{"v.i16", int16(-30000)},
		{"v.u32", uint32(4000000000)},
		{"v.i32", int32(-2000000000)},
		{"v.f32", float32(3.25)},
		{"v.bool", true},
		{"v.false", false},
		{"v.string", "héllo ▁ wörld"},
		{"v.empty", ""},
		{"v.u64", uint64(1) << 60},
		{"v.i64", int64(-1) << 60},
		{"v.f64", 2.5e-300},
		{"a.u8", []uint8{1, 2, 255}},
		{"a.i8", []int8{-1, 0, 1}},
		{"a.u16", []uint16{1, 65535}},
		{"a.i16", []int16{-32768, 32767}},
		{"a.u32", []uint32{7, 8}},
		{"a.i32", []int32{-7, 8, 9}},
		{"a.f32", []float32{0.5, -1.5}},
		{"a.bool", []bool{true, false, true}},
		{"a.string", []string{"a", "", "<0x0A>", "▁the"}},
		{"a.u64", []uint64{1, 1 << 63}},
		{"a.i64", []int64{-1, 1 << 62}},
		{"a.f64", []float64{1e300, -0.25}},
		{"a.empty", []string{}},
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func smallFile() *File {
	return &File{
		KV: allValuesKV(),
		Tensors: []Tensor{
			{Name: "a.weight", Type: TypeF32, Dims: []int64{3, 2}, Data: Bytes(seq(24))},
			{Name: "b.weight", Type: TypeQ8_0, Dims: []int64{64, 1}, Data: Bytes(seq(68))},
			{Name: "c", Type: TypeF16, Dims: []int64{5}, Data: Bytes(seq(10))},
			{Name: "d.q4k", Type: TypeQ4_K, Dims: []int64{256, 2, 1, 1}, Data: Bytes(seq(288))},
		},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		align uint32 // 0: no general.alignment key
	}{
		{"default alignment", 0},
		{"alignment 32", 32},
		{"alignment 64", 64},
		{"alignment 8", 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := smallFile()
			if tc.align != 0 {
				f.KV = append(f.KV, KV{KeyAlignment, tc.align})
			}
			var buf bytes.Buffer
			n, err := f.WriteTo(&buf)
			require.NoError(t, err)
			require.Equal(t, int64(buf.Len()), n)

			info, err := Read(bytes.NewReader(buf.Bytes()))
			require.NoError(t, err)
			want := int64(tc.align)
			if want == 0 {
				want = DefaultAlignment
			}
			require.Equal(t, uint32(Version), info.Version)
			require.Equal(t, want, info.Alignment)
			require.Equal(t, f.KV, info.KV)
			require.Zero(t, info.DataOffset%want)
			require.Len(t, info.Tensors, len(f.Tensors))

			data := buf.Bytes()
			for i, got := range info.Tensors {
				exp := f.Tensors[i]
				require.Equal(t, exp.Name, got.Name)
				require.Equal(t, exp.Type, got.Type)
				require.Equal(t, exp.Dims, got.Dims)
				require.Nil(t, got.Data)
				require.Zero(t, got.Offset%want, "tensor %s offset", got.Name)
				size, err := got.Size()
				require.NoError(t, err)
				start := info.DataOffset + got.Offset
				require.Equal(t, []byte(exp.Data.(Bytes)), data[start:start+size], "tensor %s data", got.Name)
			}
			last := info.Tensors[len(info.Tensors)-1]
			lastSize, _ := last.Size()
			require.Equal(t, info.DataOffset+last.Offset+lastSize, info.Size)
			require.Equal(t, info.Size+padding(info.Size, want), int64(len(data)), "file ends with the padded last tensor")

			tensor, ok := info.Tensor("c")
			require.True(t, ok)
			require.Equal(t, TypeF16, tensor.Type)
			v, ok := info.Lookup("v.string")
			require.True(t, ok)
			require.Equal(t, "héllo ▁ wörld", v)
			_, ok = info.Lookup("missing")
			require.False(t, ok)

			// Writing twice gives the same bytes.
			var again bytes.Buffer
			_, err = f.WriteTo(&again)
			require.NoError(t, err)
			require.Equal(t, buf.Bytes(), again.Bytes())
		})
	}
}

func TestWriteEmptyFile(t *testing.T) {
	var buf bytes.Buffer
	_, err := (&File{}).WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, 32, buf.Len(), "24-byte header padded to 32")
	info, err := Read(&buf)
	require.NoError(t, err)
	require.Empty(t, info.KV)
	require.Empty(t, info.Tensors)
	require.Equal(t, int64(32), info.DataOffset)
}

func fileLen(t *testing.T, f *File) int {
	n, err := f.WriteTo(io.Discard)
	require.NoError(t, err)
	return int(n)
}

type failWriter struct{ after int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		n := f.after
		f.after = 0
		return n, errDisk
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	tensor := func(mod func(*Tensor)) *File {
		f := &File{Tensors: []Tensor{{Name: "t", Type: TypeF32, Dims: []int64{4}, Data: Bytes(make([]byte, 16))}}}
		mod(&f.Tensors[0])
		return f
	}
	tests := []struct {
		name string
		file *File
		w    io.Writer
		want error
		msg  string
	}{
		{"empty key", &File{KV: []KV{{"", uint32(1)}}}, nil, ErrInvalid, "empty metadata key"},
		{"duplicate key", &File{KV: []KV{{"a", uint32(1)}, {"a", uint32(2)}}}, nil, ErrInvalid, "duplicate metadata key"},
		{"unsupported value", &File{KV: []KV{{"a", 1}}}, nil, ErrInvalid, "unsupported value type int"},
		{"nested array", &File{KV: []KV{{"a", [][]string{{"x"}}}}}, nil, ErrInvalid, "unsupported value type"},
		{"alignment type", &File{KV: []KV{{KeyAlignment, int32(32)}}}, nil, ErrInvalid, "want uint32"},
		{"alignment not power of two", &File{KV: []KV{{KeyAlignment, uint32(24)}}}, nil, ErrInvalid, "power of two"},
		{"alignment zero", &File{KV: []KV{{KeyAlignment, uint32(0)}}}, nil, ErrInvalid, "power of two"},
		{"empty name", tensor(func(t *Tensor) { t.Name = "" }), nil, ErrInvalid, "empty tensor name"},
		{"long name", tensor(func(t *Tensor) { t.Name = string(make([]byte, 64)) }), nil, ErrInvalid, "longer than 63"},
		{"no dims", tensor(func(t *Tensor) { t.Dims = nil }), nil, ErrInvalid, "0 dimensions"},
		{"five dims", tensor(func(t *Tensor) { t.Dims = []int64{4, 1, 1, 1, 1} }), nil, ErrInvalid, "5 dimensions"},
		{"zero dim", tensor(func(t *Tensor) { t.Dims = []int64{4, 0} }), nil, ErrInvalid, "positive dimensions"},
		{"unknown type", tensor(func(t *Tensor) { t.Type = 4 }), nil, ErrInvalid, "unknown ggml type 4"},
		{"row not a block multiple", tensor(func(t *Tensor) { t.Type, t.Dims = TypeQ8_0, []int64{48} }), nil, ErrInvalid, "not a multiple of the block size 32"},
		{"nil data", tensor(func(t *Tensor) { t.Data = nil }), nil, ErrInvalid, "has no data"},
		{"short data", tensor(func(t *Tensor) { t.Data = Bytes(make([]byte, 15)) }), nil, nil, "data wrote 15 bytes, want 16"},
		{"long data", tensor(func(t *Tensor) { t.Data = Bytes(make([]byte, 17)) }), nil, nil, "data wrote 17 bytes, want 16"},
		{"duplicate tensor", &File{Tensors: []Tensor{
			{Name: "t", Type: TypeF32, Dims: []int64{1}, Data: Bytes(make([]byte, 4))},
			{Name: "t", Type: TypeF32, Dims: []int64{1}, Data: Bytes(make([]byte, 4))},
		}}, nil, ErrInvalid, "duplicate tensor name"},
		{"writer fails in header", smallFile(), &failWriter{after: 10}, errDisk, "writing header"},
		{"writer fails in data", smallFile(), &failWriter{after: fileLen(t, smallFile()) - 100}, errDisk, "writing tensor \"d.q4k\": disk full"},
		{"writer fails in padding", smallFile(), &failWriter{after: fileLen(t, smallFile()) - 288 - 1}, errDisk, "padding tensor \"c\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			if w == nil {
				w = io.Discard
			}
			_, err := tc.file.WriteTo(w)
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestTensorSize(t *testing.T) {
	tests := []struct {
		typ  GGMLType
		dims []int64
		want int64
	}{
		{TypeF32, []int64{64, 3}, 768},
		{TypeF16, []int64{10}, 20},
		{TypeBF16, []int64{10}, 20},
		{TypeQ8_0, []int64{64, 2}, 136},
		{TypeQ4_0, []int64{32}, 18},
		{TypeQ5_0, []int64{64}, 44},
		{TypeQ4_K, []int64{768, 2048}, 768 / 256 * 144 * 2048},
		{TypeQ6_K, []int64{256, 10}, 2100},
		{TypeI32, []int64{3}, 12},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			tensor := Tensor{Name: "x", Type: tc.typ, Dims: tc.dims}
			got, err := tensor.Size()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	require.Equal(t, "Q4_K", TypeQ4_K.String())
	require.Equal(t, "GGMLType(4)", GGMLType(4).String())
	require.Equal(t, int64(256), TypeQ4_K.BlockSize())
	require.Equal(t, int64(144), TypeQ4_K.TypeSize())
}
