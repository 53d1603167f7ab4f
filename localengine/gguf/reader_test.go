package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// raw builds GGUF bytes by hand, including invalid ones.
type raw []byte

func (r raw) u32(v uint32) raw { return binary.LittleEndian.AppendUint32(r, v) }
func (r raw) u64(v uint64) raw { return binary.LittleEndian.AppendUint64(r, v) }
func (r raw) str(s string) raw { return append(r.u64(uint64(len(s))), s...) }

func header(version uint32, nTensors, nKV uint64) raw {
	return raw(Magic).u32(version).u64(nTensors).u64(nKV)
}

// tensorInfo appends a tensor info.
func (r raw) tensorInfo(name string, typ GGMLType, offset uint64, dims ...uint64) raw {
	r = r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r = r.u64(d)
	}
	return r.u32(uint32(typ)).u64(offset)
}

func TestReadErrors(t *testing.T) {
	kvU32 := func(r raw, key string, v uint32) raw { return r.str(key).u32(uint32(valUint32)).u32(v) }
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "magic"},
		{"short magic", []byte("GG"), ErrTruncated, "magic"},
		{"bad magic", raw("GGML").u32(3).u64(0).u64(0), ErrBadMagic, `"GGML"`},
		{"no version", []byte(Magic), ErrTruncated, "version"},
		{"version 0", header(0, 0, 0), ErrVersion, "0, want 2 or 3"},
		{"version 1", header(1, 0, 0), ErrVersion, "1, want 2 or 3"},
		{"version 4", header(4, 0, 0), ErrVersion, "4, want 2 or 3"},
		{"big endian", header(0x03000000, 0, 0), ErrVersion, "big-endian"},
		{"no counts", raw(Magic).u32(3), ErrTruncated, "tensor count"},
		{"too many tensors", header(3, 1<<40, 0), ErrInvalid, "tensor count"},
		{"too many keys", header(3, 0, 1<<40), ErrInvalid, "metadata count"},
		{"missing kv", header(3, 0, 1), ErrTruncated, "metadata key 0"},
		{"huge key", header(3, 0, 1).u64(1 << 40), ErrInvalid, "exceeds"},
		{"truncated long key", header(3, 0, 1).u64(1 << 20).str("abc"), ErrTruncated, "metadata key 0"},
		{"invalid value type", header(3, 0, 1).str("k").u32(13), ErrInvalid, "invalid type"},
		{"missing value", header(3, 0, 1).str("k").u32(uint32(valUint64)), ErrTruncated, `value of "k"`},
		{"nested array", header(3, 0, 1).str("k").u32(uint32(valArray)).u32(uint32(valArray)).u64(1), ErrInvalid, "array of invalid type array"},
		{"huge array", header(3, 0, 1).str("k").u32(uint32(valArray)).u32(uint32(valUint8)).u64(1 << 40), ErrInvalid, "elements"},
		{"truncated array", header(3, 0, 1).str("k").u32(uint32(valArray)).u32(uint32(valString)).u64(1 << 30).str("a"), ErrTruncated, `value of "k"`},
		{"duplicate key", kvU32(kvU32(header(3, 0, 2), "k", 1), "k", 2), ErrInvalid, "duplicate metadata key"},
		{"alignment type", header(3, 0, 1).str(KeyAlignment).u32(uint32(valUint64)).u64(32), ErrInvalid, "want uint32"},
		{"alignment 0", kvU32(header(3, 0, 1), KeyAlignment, 0), ErrInvalid, "power of two"},
		{"alignment 48", kvU32(header(3, 0, 1), KeyAlignment, 48), ErrInvalid, "power of two"},
		{"missing tensor", header(3, 1, 0), ErrTruncated, "tensor 0 name"},
		{"long tensor name", header(3, 1, 0).str(string(make([]byte, 64))), ErrInvalid, "exceeds 63"},
		{"duplicate tensor", header(3, 2, 0).tensorInfo("t", TypeF32, 0, 8).tensorInfo("t", TypeF32, 32, 8), ErrInvalid, "duplicate tensor name"},
		{"five dims", header(3, 1, 0).tensorInfo("t", TypeF32, 0, 1, 1, 1, 1, 1), ErrInvalid, "5 dimensions"},
		{"negative dim", header(3, 1, 0).tensorInfo("t", TypeF32, 0, 1<<63), ErrInvalid, "negative"},
		{"too many elements", header(3, 1, 0).tensorInfo("t", TypeF32, 0, 1<<40, 1<<40), ErrInvalid, "too many"},
		{"too large", header(3, 1, 0).tensorInfo("t", TypeF64, 0, 1<<61, 2), ErrInvalid, "too large"},
		{"unknown type", header(3, 1, 0).tensorInfo("t", 4, 0, 8), ErrInvalid, "unknown ggml type 4"},
		{"type beyond table", header(3, 1, 0).tensorInfo("t", 1000, 0, 8), ErrInvalid, "unknown ggml type 1000"},
		{"row not a block multiple", header(3, 1, 0).tensorInfo("t", TypeQ4_K, 0, 128), ErrInvalid, "block size 256"},
		{"wrong first offset", header(3, 1, 0).tensorInfo("t", TypeF32, 32, 8), ErrInvalid, "offset 32, expected 0"},
		{"gap between tensors", header(3, 2, 0).tensorInfo("a", TypeF32, 0, 8).tensorInfo("b", TypeF32, 64, 8), ErrInvalid, "offset 64, expected 32"},
		{"overlapping tensors", header(3, 2, 0).tensorInfo("a", TypeF32, 0, 16).tensorInfo("b", TypeF32, 32, 8), ErrInvalid, "offset 32, expected 64"},
		{"huge offset", header(3, 1, 0).tensorInfo("t", TypeF32, 1<<63, 8), ErrInvalid, "offset"},
		{"truncated tensor info", header(3, 1, 0).str("t").u32(2).u64(8), ErrTruncated, `tensor "t" shape`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Read(bytes.NewReader(tc.data))
			require.Nil(t, info)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestReadVersion2AndEmptyShapes(t *testing.T) {
	// Version 2 has the version 3 layout; llama.cpp also accepts tensors with
	// zero dimensions or zero elements.
	data := header(2, 2, 0).tensorInfo("scalar", TypeF32, 0).tensorInfo("empty", TypeQ8_0, 32, 0, 4)
	info, err := Read(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, uint32(2), info.Version)
	require.Equal(t, int64(1), info.Tensors[0].Elements())
	require.Equal(t, int64(0), info.Tensors[1].Elements())
	require.Equal(t, info.DataOffset+32, info.Size)
}

func TestReadIOError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Read(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, ErrTruncated)

	_, err = Read(iotest.OneByteReader(bytes.NewReader(header(3, 0, 0))))
	require.NoError(t, err)
}

// TestReadTruncatedTiny cuts a Tiny model at many points: every cut inside
// the metadata fails with ErrTruncated from Read, every cut inside the data
// with ErrTruncated from ReadFile.
func TestReadTruncatedTiny(t *testing.T) {
	data := generateTiny(t, 3)
	info, err := Read(bytes.NewReader(data))
	require.NoError(t, err)

	// End of the tensor infos: the metadata encoded without padding.
	model, err := Model(Tiny, 3)
	require.NoError(t, err)
	meta, _, err := model.encodeMeta(1)
	require.NoError(t, err)
	infoEnd := len(meta)
	require.Equal(t, info.DataOffset, int64(infoEnd)+padding(int64(infoEnd), info.Alignment))
	_, err = Read(bytes.NewReader(data[:infoEnd]))
	require.NoError(t, err, "Read stops at the end of the tensor infos")

	cuts := []int{0, 1, 3, 4, 7, 8, 15, 16, 23, 24, 100, 1000, infoEnd - 9, infoEnd - 8, infoEnd - 1}
	for cut := 25; cut < infoEnd; cut += 97 {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		_, err := Read(bytes.NewReader(data[:cut]))
		require.ErrorIs(t, err, ErrTruncated, "cut at %d of %d", cut, infoEnd)
	}

	dir := t.TempDir()
	for _, cut := range []int{int(info.DataOffset), int(info.DataOffset) + 1, len(data) / 2, int(info.Size) - 1} {
		_, err := Read(bytes.NewReader(data[:cut]))
		require.NoError(t, err, "metadata is complete at cut %d", cut)
		path := filepath.Join(dir, "cut.gguf")
		require.NoError(t, os.WriteFile(path, data[:cut], 0o644))
		_, err = ReadFile(path)
		require.ErrorIs(t, err, ErrTruncated, "cut at %d", cut)
		require.ErrorContains(t, err, "tensor data needs")
	}
	path := filepath.Join(dir, "full.gguf")
	require.NoError(t, os.WriteFile(path, data[:info.Size], 0o644))
	_, err = ReadFile(path)
	require.NoError(t, err, "the padding after the last tensor is optional")

	_, err = ReadFile(filepath.Join(dir, "missing.gguf"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzRead checks that Read never panics and that whatever it accepts
// re-encodes to metadata it reads back identically.
func FuzzRead(f *testing.F) {
	var small bytes.Buffer
	if _, err := smallFile().WriteTo(&small); err != nil {
		f.Fatal(err)
	}
	f.Add(small.Bytes())
	f.Add(small.Bytes()[:200])
	tiny, err := Model(Tiny, 1)
	if err != nil {
		f.Fatal(err)
	}
	meta, _, err := tiny.encodeMeta(DefaultAlignment)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(meta)
	f.Add([]byte{})
	f.Add([]byte("GGUF"))
	f.Add([]byte(header(3, 0, 0)))
	f.Add([]byte(header(2, 1, 0).tensorInfo("t", TypeQ4_K, 0, 256, 2)))
	f.Add([]byte(header(3, 0, 1).str("k").u32(uint32(valArray)).u32(uint32(valString)).u64(2).str("a").str("b")))

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Read(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) &&
				!errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if info.DataOffset%info.Alignment != 0 || info.Size < info.DataOffset {
			t.Fatalf("bad layout: %+v", info)
		}
		for _, tensor := range info.Tensors {
			if tensor.Offset%info.Alignment != 0 {
				t.Fatalf("tensor %q offset %d", tensor.Name, tensor.Offset)
			}
		}
		// Re-encode; the writer is stricter (no zero dimensions), so it may
		// refuse. What it writes must read back to the same encoding. A huge
		// general.alignment would mean gigabytes of padding: skip those.
		if info.Alignment > 1<<16 {
			return
		}
		for i := range info.Tensors {
			info.Tensors[i].Data = Bytes(nil)
		}
		meta1, _, err := info.File.encodeMeta(info.Alignment)
		if err != nil {
			return
		}
		again, err := Read(bytes.NewReader(meta1))
		if err != nil {
			t.Fatalf("re-encoded metadata does not read: %v", err)
		}
		for i := range again.Tensors {
			again.Tensors[i].Data = Bytes(nil)
		}
		meta2, _, err := again.File.encodeMeta(again.Alignment)
		if err != nil {
			t.Fatalf("re-encoding again: %v", err)
		}
		if !bytes.Equal(meta1, meta2) {
			t.Fatal("metadata changed on the second round trip")
		}
	})
}
