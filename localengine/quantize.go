package localengine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// quantTypes are the quantizations Quantize offers, by llama.cpp's names.
var quantTypes = map[string]llama.Ftype{
	"f16":    llama.FtypeMostlyF16,
	"q8_0":   llama.FtypeMostlyQ8_0,
	"q4_0":   llama.FtypeMostlyQ4_0,
	"q4_k_m": llama.FtypeMostlyQ4_K_M,
	"q5_k_m": llama.FtypeMostlyQ5_K_M,
}

// QuantTypes lists the names Quantize accepts.
func QuantTypes() []string {
	out := make([]string, 0, len(quantTypes))
	for k := range quantTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Quantize writes a quantized copy of a GGUF model with llama.cpp's own
// quantizer (llama_model_quantize). typ is one of QuantTypes.
func (rt *Runtime) Quantize(in, out, typ string, threads int) error {
	ft, ok := quantTypes[strings.ToLower(typ)]
	if !ok {
		return fmt.Errorf("unknown quantization %q (known: %s)", typ, strings.Join(QuantTypes(), ", "))
	}
	if err := checkGGUF(in); err != nil {
		return err
	}
	p := llama.ModelQuantizeDefaultParams()
	p.Ftype = ft
	p.NThread = int32(max(threads, 1))
	if rc := llama.ModelQuantize(in, out, &p); rc != 0 {
		return fmt.Errorf("quantizing %s to %s failed (llama_model_quantize returned %d)", in, typ, rc)
	}
	return nil
}
