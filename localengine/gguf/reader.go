package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Errors returned by [Read] and [ReadFile], wrapped with details; test them
// with errors.Is. [File.WriteTo] returns ErrInvalid for a file it cannot write.
var (
	// ErrBadMagic means the input does not start with "GGUF".
	ErrBadMagic = errors.New("gguf: bad magic")
	// ErrVersion means the GGUF version is not 2 or 3, or the file has the
	// other byte order.
	ErrVersion = errors.New("gguf: unsupported version")
	// ErrTruncated means the input ended early.
	ErrTruncated = errors.New("gguf: truncated file")
	// ErrInvalid means the content breaks a rule of the format or of
	// llama.cpp's loader.
	ErrInvalid = errors.New("gguf: invalid file")
)

// Limits that keep [Read] from allocating without bound on garbage input.
const (
	maxStringLen = 1 << 30
	maxArrayLen  = 1 << 31
	maxCount     = 1 << 31
)

// Info is the metadata of a GGUF file as returned by [Read].
type Info struct {
	// File holds the metadata and the tensor infos. Tensor offsets are set,
	// tensor data is not read (Tensor.Data is nil).
	File
	// Version is the GGUF version of the file (2 or 3).
	Version uint32
	// Alignment is the alignment of the data section and of every tensor.
	Alignment int64
	// DataOffset is the absolute file offset of the tensor data section.
	DataOffset int64
	// Size is the smallest size of a file that holds all tensor data: the end
	// of the last tensor's data. Writers usually pad the last tensor as well,
	// so a complete file may be up to Alignment-1 bytes longer.
	Size int64
}

// ReadFile reads the metadata of the GGUF file at path with [Read] and also
// checks that the file is long enough to hold all tensor data.
func ReadFile(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer f.Close()
	info, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if st.Size() < info.Size {
		return nil, fmt.Errorf("%w: %s has %d bytes, its tensor data needs %d", ErrTruncated, path, st.Size(), info.Size)
	}
	return info, nil
}

// Read reads and validates the header, metadata and tensor infos of a GGUF
// file. It stops at the start of the tensor data and does not read it. It
// checks what llama.cpp's gguf loader checks: magic, version, value types,
// duplicate keys and tensor names, tensor name length, dimensions, types, row
// lengths against block sizes, alignment, and that tensors are packed in order
// at aligned offsets. It reads GGUF versions 2 and 3 in little-endian byte
// order.
func Read(r io.Reader) (*Info, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 64<<10)}
	info := &Info{}

	var magic [4]byte
	if err := d.read(magic[:], "magic"); err != nil {
		return nil, err
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("%w: %q, want %q", ErrBadMagic, magic[:], Magic)
	}
	v, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case v == 2 || v == 3:
	case v != 0 && v&0xFFFF == 0:
		return nil, fmt.Errorf("%w: %d (0x%08x): a big-endian file?", ErrVersion, v, v)
	default:
		return nil, fmt.Errorf("%w: %d, want 2 or 3", ErrVersion, v)
	}
	info.Version = v

	nTensors, err := d.count("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("metadata count")
	if err != nil {
		return nil, err
	}

	info.KV = make([]KV, 0, min(nKV, 1024))
	keys := make(map[string]bool)
	for i := range nKV {
		kv, err := d.kv(i)
		if err != nil {
			return nil, err
		}
		if keys[kv.Key] {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrInvalid, kv.Key)
		}
		keys[kv.Key] = true
		info.KV = append(info.KV, kv)
	}
	if info.Alignment, err = info.File.Alignment(); err != nil {
		return nil, err
	}

	info.Tensors = make([]Tensor, 0, min(nTensors, 1024))
	names := make(map[string]bool)
	for i := range nTensors {
		t, err := d.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%w: duplicate tensor name %q", ErrInvalid, t.Name)
		}
		names[t.Name] = true
		info.Tensors = append(info.Tensors, t)
	}

	info.DataOffset = d.pos + padding(d.pos, info.Alignment)
	var next int64 // expected offset of the next tensor
	info.Size = info.DataOffset
	for i := range info.Tensors {
		t := &info.Tensors[i]
		if t.Offset != next {
			return nil, fmt.Errorf("%w: tensor %q has offset %d, expected %d", ErrInvalid, t.Name, t.Offset, next)
		}
		size, err := t.Size()
		if err != nil {
			return nil, err
		}
		end := size + padding(size, info.Alignment)
		if next > math.MaxInt64-info.DataOffset-end {
			return nil, fmt.Errorf("%w: tensor data too large", ErrInvalid)
		}
		info.Size = info.DataOffset + next + size
		next += end
	}
	return info, nil
}

// decoder reads little-endian GGUF primitives and tracks the position.
type decoder struct {
	r   *bufio.Reader
	pos int64
	buf [8]byte
}

func (d *decoder) read(p []byte, what string) error {
	n, err := io.ReadFull(d.r, p)
	d.pos += int64(n)
	return d.wrap(err, what)
}

func (d *decoder) wrap(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: reading %s at offset %d: %w", ErrTruncated, what, d.pos, io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("gguf: reading %s at offset %d: %w", what, d.pos, err)
	}
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.read(d.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(d.buf[:4]), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.read(d.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(d.buf[:8]), nil
}

func (d *decoder) count(what string) (int, error) {
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if n > maxCount {
		return 0, fmt.Errorf("%w: %s %d is too large", ErrInvalid, what, n)
	}
	return int(n), nil
}

// string reads a length-prefixed string of at most limit bytes. Memory grows
// with the bytes actually read, not with the length the input claims.
func (d *decoder) string(what string, limit uint64) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", fmt.Errorf("%w: %s length %d exceeds %d", ErrInvalid, what, n, limit)
	}
	if n <= 64<<10 {
		b := make([]byte, n)
		if err := d.read(b, what); err != nil {
			return "", err
		}
		return string(b), nil
	}
	var sb bytes.Buffer
	copied, err := io.CopyN(&sb, d.r, int64(n))
	d.pos += copied
	if err != nil {
		return "", d.wrap(err, what)
	}
	return sb.String(), nil
}

func (d *decoder) kv(i int) (KV, error) {
	key, err := d.string(fmt.Sprintf("metadata key %d", i), maxStringLen)
	if err != nil {
		return KV{}, err
	}
	what := fmt.Sprintf("value of %q", key)
	t, err := d.u32(what)
	if err != nil {
		return KV{}, err
	}
	var v any
	if valueType(t) == valArray {
		v, err = d.array(what)
	} else {
		v, err = d.scalar(valueType(t), what)
	}
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: v}, nil
}

// scalar reads one value of a non-array type.
func (d *decoder) scalar(t valueType, what string) (any, error) {
	if t == valString {
		return d.string(what, maxStringLen)
	}
	size := t.fixedSize()
	if size == 0 {
		return nil, fmt.Errorf("%w: %s has invalid type %s", ErrInvalid, what, t)
	}
	b := d.buf[:size]
	if err := d.read(b, what); err != nil {
		return nil, err
	}
	return decodeFixed(t, b), nil
}

func decodeFixed(t valueType, b []byte) any {
	le := binary.LittleEndian
	switch t {
	case valUint8:
		return b[0]
	case valInt8:
		return int8(b[0])
	case valBool:
		return b[0] != 0
	case valUint16:
		return le.Uint16(b)
	case valInt16:
		return int16(le.Uint16(b))
	case valUint32:
		return le.Uint32(b)
	case valInt32:
		return int32(le.Uint32(b))
	case valFloat32:
		return math.Float32frombits(le.Uint32(b))
	case valUint64:
		return le.Uint64(b)
	case valInt64:
		return int64(le.Uint64(b))
	case valFloat64:
		return math.Float64frombits(le.Uint64(b))
	}
	panic("gguf: decodeFixed: not a fixed-size type") // unreachable: callers check fixedSize
}

// array reads an array value (after its type tag) as a typed Go slice.
func (d *decoder) array(what string) (any, error) {
	et, err := d.u32(what + " element type")
	if err != nil {
		return nil, err
	}
	n, err := d.u64(what + " length")
	if err != nil {
		return nil, err
	}
	if n > maxArrayLen {
		return nil, fmt.Errorf("%w: %s has %d elements, more than %d", ErrInvalid, what, n, maxArrayLen)
	}
	switch t := valueType(et); t {
	case valString:
		return readArray(d, n, what, func() (string, error) { return d.string(what, maxStringLen) })
	case valUint8:
		return readFixedArray[uint8](d, t, n, what)
	case valInt8:
		return readFixedArray[int8](d, t, n, what)
	case valBool:
		return readFixedArray[bool](d, t, n, what)
	case valUint16:
		return readFixedArray[uint16](d, t, n, what)
	case valInt16:
		return readFixedArray[int16](d, t, n, what)
	case valUint32:
		return readFixedArray[uint32](d, t, n, what)
	case valInt32:
		return readFixedArray[int32](d, t, n, what)
	case valFloat32:
		return readFixedArray[float32](d, t, n, what)
	case valUint64:
		return readFixedArray[uint64](d, t, n, what)
	case valInt64:
		return readFixedArray[int64](d, t, n, what)
	case valFloat64:
		return readFixedArray[float64](d, t, n, what)
	default:
		return nil, fmt.Errorf("%w: %s is an array of invalid type %s", ErrInvalid, what, t)
	}
}

func readFixedArray[T any](d *decoder, t valueType, n uint64, what string) ([]T, error) {
	size := t.fixedSize()
	return readArray(d, n, what, func() (T, error) {
		var zero T
		if err := d.read(d.buf[:size], what); err != nil {
			return zero, err
		}
		return decodeFixed(t, d.buf[:size]).(T), nil
	})
}

// readArray reads n elements with next. The slice grows as elements arrive,
// so a huge claimed length in a short input fails at the end of the input.
func readArray[T any](d *decoder, n uint64, what string, next func() (T, error)) ([]T, error) {
	out := make([]T, 0, min(n, 4096))
	for range n {
		v, err := next()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *decoder) tensorInfo(i int) (Tensor, error) {
	var t Tensor
	name, err := d.string(fmt.Sprintf("tensor %d name", i), MaxNameLen)
	if err != nil {
		return t, err
	}
	t.Name = name
	what := fmt.Sprintf("tensor %q", name)
	nDims, err := d.u32(what + " dimension count")
	if err != nil {
		return t, err
	}
	if nDims > MaxDims {
		return t, fmt.Errorf("%w: %s has %d dimensions, more than %d", ErrInvalid, what, nDims, MaxDims)
	}
	t.Dims = make([]int64, nDims)
	for j := range t.Dims {
		ne, err := d.u64(what + " shape")
		if err != nil {
			return t, err
		}
		if ne > math.MaxInt64 {
			return t, fmt.Errorf("%w: %s dimension %d is negative", ErrInvalid, what, j)
		}
		t.Dims[j] = int64(ne)
	}
	if t.Elements() < 0 {
		return t, fmt.Errorf("%w: %s has %v elements, too many", ErrInvalid, what, t.Dims)
	}
	typ, err := d.u32(what + " type")
	if err != nil {
		return t, err
	}
	t.Type = GGMLType(typ)
	if _, err := t.Size(); err != nil {
		return t, err
	}
	off, err := d.u64(what + " offset")
	if err != nil {
		return t, err
	}
	if off > math.MaxInt64 {
		return t, fmt.Errorf("%w: %s offset %d is too large", ErrInvalid, what, off)
	}
	t.Offset = int64(off)
	return t, nil
}
