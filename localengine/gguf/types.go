package gguf

import "fmt"

// GGMLType is a ggml tensor element type, as stored in a GGUF tensor info.
type GGMLType uint32

// The ggml tensor types this package knows the block layout of. The values
// are those of enum ggml_type in ggml.h.
const (
	TypeF32     GGMLType = 0
	TypeF16     GGMLType = 1
	TypeQ4_0    GGMLType = 2
	TypeQ4_1    GGMLType = 3
	TypeQ5_0    GGMLType = 6
	TypeQ5_1    GGMLType = 7
	TypeQ8_0    GGMLType = 8
	TypeQ8_1    GGMLType = 9
	TypeQ2_K    GGMLType = 10
	TypeQ3_K    GGMLType = 11
	TypeQ4_K    GGMLType = 12
	TypeQ5_K    GGMLType = 13
	TypeQ6_K    GGMLType = 14
	TypeQ8_K    GGMLType = 15
	TypeIQ2_XXS GGMLType = 16
	TypeIQ2_XS  GGMLType = 17
	TypeIQ3_XXS GGMLType = 18
	TypeIQ1_S   GGMLType = 19
	TypeIQ4_NL  GGMLType = 20
	TypeIQ3_S   GGMLType = 21
	TypeIQ2_S   GGMLType = 22
	TypeIQ4_XS  GGMLType = 23
	TypeI8      GGMLType = 24
	TypeI16     GGMLType = 25
	TypeI32     GGMLType = 26
	TypeI64     GGMLType = 27
	TypeF64     GGMLType = 28
	TypeIQ1_M   GGMLType = 29
	TypeBF16    GGMLType = 30
	TypeTQ1_0   GGMLType = 34
	TypeTQ2_0   GGMLType = 35
	TypeMXFP4   GGMLType = 39
)

// typeLayout is the block layout of a ggml type: a block of blockSize
// elements takes typeSize bytes.
type typeLayout struct {
	name      string
	blockSize int64
	typeSize  int64
}

// typeLayouts is read-only after initialisation.
var typeLayouts = map[GGMLType]typeLayout{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 18},
	TypeQ4_1:    {"Q4_1", 32, 20},
	TypeQ5_0:    {"Q5_0", 32, 22},
	TypeQ5_1:    {"Q5_1", 32, 24},
	TypeQ8_0:    {"Q8_0", 32, 34},
	TypeQ8_1:    {"Q8_1", 32, 36},
	TypeQ2_K:    {"Q2_K", 256, 84},
	TypeQ3_K:    {"Q3_K", 256, 110},
	TypeQ4_K:    {"Q4_K", 256, 144},
	TypeQ5_K:    {"Q5_K", 256, 176},
	TypeQ6_K:    {"Q6_K", 256, 210},
	TypeQ8_K:    {"Q8_K", 256, 292},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 66},
	TypeIQ2_XS:  {"IQ2_XS", 256, 74},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 98},
	TypeIQ1_S:   {"IQ1_S", 256, 50},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18},
	TypeIQ3_S:   {"IQ3_S", 256, 110},
	TypeIQ2_S:   {"IQ2_S", 256, 82},
	TypeIQ4_XS:  {"IQ4_XS", 256, 136},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", 256, 56},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", 256, 54},
	TypeTQ2_0:   {"TQ2_0", 256, 66},
	TypeMXFP4:   {"MXFP4", 32, 17},
}

// String returns the ggml name of the type, such as "F32" or "Q4_K".
func (t GGMLType) String() string {
	if l, ok := typeLayouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of the type (1 for
// plain types such as F32, 32 or 256 for quantized ones), or 0 for a type this
// package does not know.
func (t GGMLType) BlockSize() int64 { return typeLayouts[t].blockSize }

// TypeSize returns the number of bytes of one block of the type, or 0 for a
// type this package does not know.
func (t GGMLType) TypeSize() int64 { return typeLayouts[t].typeSize }

// valueType is a GGUF metadata value type (enum gguf_type).
type valueType uint32

const (
	valUint8   valueType = 0
	valInt8    valueType = 1
	valUint16  valueType = 2
	valInt16   valueType = 3
	valUint32  valueType = 4
	valInt32   valueType = 5
	valFloat32 valueType = 6
	valBool    valueType = 7
	valString  valueType = 8
	valArray   valueType = 9
	valUint64  valueType = 10
	valInt64   valueType = 11
	valFloat64 valueType = 12
)

// fixedSize returns the encoded size of a fixed-size value type, or 0 for
// strings, arrays and unknown types.
func (v valueType) fixedSize() int {
	switch v {
	case valUint8, valInt8, valBool:
		return 1
	case valUint16, valInt16:
		return 2
	case valUint32, valInt32, valFloat32:
		return 4
	case valUint64, valInt64, valFloat64:
		return 8
	}
	return 0
}

func (v valueType) String() string {
	names := [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("type(%d)", uint32(v))
}
