package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Format constants.
const (
	// Magic is the four bytes every GGUF file starts with.
	Magic = "GGUF"
	// Version is the GGUF version this package writes.
	Version = 3
	// DefaultAlignment is the alignment of tensor data when the file has no
	// general.alignment key.
	DefaultAlignment = 32
	// KeyAlignment is the metadata key that overrides [DefaultAlignment]. Its
	// value must be a uint32 power of two.
	KeyAlignment = "general.alignment"
	// MaxDims is the largest number of dimensions a tensor may have
	// (GGML_MAX_DIMS).
	MaxDims = 4
	// MaxNameLen is the longest tensor name llama.cpp accepts, in bytes
	// (GGML_MAX_NAME - 1).
	MaxNameLen = 63
)

// KV is one metadata key/value pair.
//
// Value must be one of the Go types that map to a GGUF value type: uint8,
// int8, uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64, or a slice of one of them (a GGUF array). [Read] returns values with
// exactly these types.
type KV struct {
	Key   string
	Value any
}

// Tensor describes one tensor of a GGUF file.
type Tensor struct {
	// Name is the tensor name, such as "blk.0.attn_q.weight".
	Name string
	// Type is the element type.
	Type GGMLType
	// Dims holds ggml's ne: Dims[0] is the row length, the fastest-varying
	// dimension. A llama.cpp weight matrix {n_in, n_out} has n_out rows of
	// n_in elements.
	Dims []int64
	// Offset is the position of the data relative to the start of the data
	// section. [Read] sets it; [File.WriteTo] computes offsets itself and
	// ignores this field.
	Offset int64
	// Data writes the tensor's bytes, exactly [Tensor.Size] of them, when the
	// file is written. It may be called once per [File.WriteTo]. [Read] leaves
	// it nil.
	Data io.WriterTo
}

// Elements returns the number of elements of the tensor, or -1 if a dimension
// is negative or the count overflows int64.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d != 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// Size returns the number of data bytes of the tensor. It fails for an unknown
// type, a row length that is not a multiple of the type's block size, or a
// shape whose size overflows int64.
func (t *Tensor) Size() (int64, error) {
	l, ok := typeLayouts[t.Type]
	if !ok {
		return 0, fmt.Errorf("%w: tensor %q has unknown ggml type %d", ErrInvalid, t.Name, uint32(t.Type))
	}
	n := t.Elements()
	if n < 0 {
		return 0, fmt.Errorf("%w: tensor %q has invalid shape %v", ErrInvalid, t.Name, t.Dims)
	}
	if len(t.Dims) > 0 && t.Dims[0]%l.blockSize != 0 {
		return 0, fmt.Errorf("%w: tensor %q of type %s has %d elements per row, not a multiple of the block size %d",
			ErrInvalid, t.Name, l.name, t.Dims[0], l.blockSize)
	}
	blocks := n / l.blockSize
	if blocks > math.MaxInt64/l.typeSize {
		return 0, fmt.Errorf("%w: tensor %q is too large", ErrInvalid, t.Name)
	}
	return blocks * l.typeSize, nil
}

// Bytes is tensor data held in memory. Unlike a *bytes.Reader it can be
// written any number of times.
type Bytes []byte

// WriteTo writes b to w.
func (b Bytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// File is the content of a GGUF file: metadata and tensors, in file order.
type File struct {
	KV      []KV
	Tensors []Tensor
}

// Lookup returns the value of the metadata key, if present.
func (f *File) Lookup(key string) (any, bool) {
	for i := range f.KV {
		if f.KV[i].Key == key {
			return f.KV[i].Value, true
		}
	}
	return nil, false
}

// Tensor returns the tensor with the given name, if present.
func (f *File) Tensor(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Alignment returns the data alignment of the file: the value of
// general.alignment, or [DefaultAlignment] when the key is absent. It fails
// when the key has another type than uint32 or is not a power of two.
func (f *File) Alignment() (int64, error) {
	v, ok := f.Lookup(KeyAlignment)
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := v.(uint32)
	if !ok {
		return 0, fmt.Errorf("%w: %s has type %T, want uint32", ErrInvalid, KeyAlignment, v)
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("%w: %s %d is not a power of two", ErrInvalid, KeyAlignment, a)
	}
	return int64(a), nil
}

// WriteTo writes f as a GGUF v3 file. The metadata and tensor infos are
// encoded in memory and written at once; tensor data is streamed from each
// Tensor.Data in order, and every tensor is padded to the file's alignment.
// It returns the number of bytes written.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	align, err := f.Alignment()
	if err != nil {
		return 0, err
	}
	meta, sizes, err := f.encodeMeta(align)
	if err != nil {
		return 0, err
	}
	var total int64
	write := func(p []byte) error {
		n, err := w.Write(p)
		total += int64(n)
		if err == nil && n != len(p) {
			err = io.ErrShortWrite
		}
		return err
	}
	if err := write(meta); err != nil {
		return total, fmt.Errorf("gguf: writing header: %w", err)
	}
	var zeros [256]byte
	pad := func(n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if err := write(zeros[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		cw := &countingWriter{w: w}
		_, err := t.Data.WriteTo(cw)
		total += cw.n
		if err != nil {
			return total, fmt.Errorf("gguf: writing tensor %q: %w", t.Name, err)
		}
		if cw.n != sizes[i] {
			return total, fmt.Errorf("gguf: tensor %q: data wrote %d bytes, want %d", t.Name, cw.n, sizes[i])
		}
		if err := pad(padding(sizes[i], align)); err != nil {
			return total, fmt.Errorf("gguf: padding tensor %q: %w", t.Name, err)
		}
	}
	return total, nil
}

// encodeMeta validates f and encodes everything before the tensor data,
// including the padding to the data section. It also returns the data size of
// every tensor.
func (f *File) encodeMeta(align int64) ([]byte, []int64, error) {
	b := make([]byte, 0, 4096)
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(f.Tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(f.KV)))

	keys := make(map[string]bool, len(f.KV))
	for _, kv := range f.KV {
		if kv.Key == "" {
			return nil, nil, fmt.Errorf("%w: empty metadata key", ErrInvalid)
		}
		if keys[kv.Key] {
			return nil, nil, fmt.Errorf("%w: duplicate metadata key %q", ErrInvalid, kv.Key)
		}
		keys[kv.Key] = true
		b = appendString(b, kv.Key)
		var err error
		if b, err = appendValue(b, kv.Value); err != nil {
			return nil, nil, fmt.Errorf("gguf: metadata key %q: %w", kv.Key, err)
		}
	}

	names := make(map[string]bool, len(f.Tensors))
	sizes := make([]int64, len(f.Tensors))
	var offset int64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if err := checkTensor(t, names); err != nil {
			return nil, nil, err
		}
		size, err := t.Size()
		if err != nil {
			return nil, nil, err
		}
		sizes[i] = size
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, uint64(offset))
		next := size + padding(size, align)
		if offset > math.MaxInt64-next {
			return nil, nil, fmt.Errorf("%w: tensor data too large", ErrInvalid)
		}
		offset += next
	}
	b = append(b, make([]byte, padding(int64(len(b)), align))...)
	return b, sizes, nil
}

// checkTensor validates what the writer needs of a tensor and records its name.
func checkTensor(t *Tensor, names map[string]bool) error {
	switch {
	case t.Name == "":
		return fmt.Errorf("%w: empty tensor name", ErrInvalid)
	case len(t.Name) > MaxNameLen:
		return fmt.Errorf("%w: tensor name %q is longer than %d bytes", ErrInvalid, t.Name, MaxNameLen)
	case names[t.Name]:
		return fmt.Errorf("%w: duplicate tensor name %q", ErrInvalid, t.Name)
	case len(t.Dims) == 0 || len(t.Dims) > MaxDims:
		return fmt.Errorf("%w: tensor %q has %d dimensions, want 1 to %d", ErrInvalid, t.Name, len(t.Dims), MaxDims)
	case t.Data == nil:
		return fmt.Errorf("%w: tensor %q has no data", ErrInvalid, t.Name)
	}
	for _, d := range t.Dims {
		if d < 1 {
			return fmt.Errorf("%w: tensor %q has shape %v, want positive dimensions", ErrInvalid, t.Name, t.Dims)
		}
	}
	names[t.Name] = true
	return nil
}

// padding returns how many bytes bring n up to a multiple of align.
func padding(n, align int64) int64 {
	return (align - n%align) % align
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends the type tag and encoding of a metadata value.
func appendValue(b []byte, v any) ([]byte, error) {
	le := binary.LittleEndian
	tag := func(t valueType) { b = le.AppendUint32(b, uint32(t)) }
	arr := func(t valueType, n int) {
		tag(valArray)
		b = le.AppendUint32(b, uint32(t))
		b = le.AppendUint64(b, uint64(n))
	}
	switch v := v.(type) {
	case uint8:
		tag(valUint8)
		b = append(b, v)
	case int8:
		tag(valInt8)
		b = append(b, byte(v))
	case uint16:
		tag(valUint16)
		b = le.AppendUint16(b, v)
	case int16:
		tag(valInt16)
		b = le.AppendUint16(b, uint16(v))
	case uint32:
		tag(valUint32)
		b = le.AppendUint32(b, v)
	case int32:
		tag(valInt32)
		b = le.AppendUint32(b, uint32(v))
	case float32:
		tag(valFloat32)
		b = le.AppendUint32(b, math.Float32bits(v))
	case bool:
		tag(valBool)
		b = append(b, boolByte(v))
	case string:
		tag(valString)
		b = appendString(b, v)
	case uint64:
		tag(valUint64)
		b = le.AppendUint64(b, v)
	case int64:
		tag(valInt64)
		b = le.AppendUint64(b, uint64(v))
	case float64:
		tag(valFloat64)
		b = le.AppendUint64(b, math.Float64bits(v))
	case []uint8:
		arr(valUint8, len(v))
		b = append(b, v...)
	case []int8:
		arr(valInt8, len(v))
		for _, x := range v {
			b = append(b, byte(x))
		}
	case []uint16:
		arr(valUint16, len(v))
		for _, x := range v {
			b = le.AppendUint16(b, x)
		}
	case []int16:
		arr(valInt16, len(v))
		for _, x := range v {
			b = le.AppendUint16(b, uint16(x))
		}
	case []uint32:
		arr(valUint32, len(v))
		for _, x := range v {
			b = le.AppendUint32(b, x)
		}
	case []int32:
		arr(valInt32, len(v))
		for _, x := range v {
			b = le.AppendUint32(b, uint32(x))
		}
	case []float32:
		arr(valFloat32, len(v))
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
	case []bool:
		arr(valBool, len(v))
		for _, x := range v {
			b = append(b, boolByte(x))
		}
	case []string:
		arr(valString, len(v))
		for _, x := range v {
			b = appendString(b, x)
		}
	case []uint64:
		arr(valUint64, len(v))
		for _, x := range v {
			b = le.AppendUint64(b, x)
		}
	case []int64:
		arr(valInt64, len(v))
		for _, x := range v {
			b = le.AppendUint64(b, uint64(x))
		}
	case []float64:
		arr(valFloat64, len(v))
		for _, x := range v {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
	default:
		return b, fmt.Errorf("%w: unsupported value type %T", ErrInvalid, v)
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
