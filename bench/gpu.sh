#!/usr/bin/env bash
# GPU throughput of the embedded engine on a Llama-3-8B-shaped model in
# Q4_K_M: decode tokens/s at 1 and 16 streams, against the memory-bandwidth
# bound (weight bytes read per token / HBM bandwidth).
#
# Needs: an NVIDIA GPU (nvidia-smi), Go, and a llama.cpp library directory
# of the pinned version WITH the CUDA backend (libggml-cuda.so beside
# libllama.so, libggml.so, libggml-base.so), named by SWITCHYARD_LLAMA_LIB.
# See docs/localengine.md, "GPU", for how to build or install one. Disk:
# about 40 GB free for the F32 model before quantization.
#
#   SWITCHYARD_LLAMA_LIB=/opt/llama-cuda bench/gpu.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/switchyard-gpu}
mkdir -p "$work"
: "${SWITCHYARD_LLAMA_LIB:?set SWITCHYARD_LLAMA_LIB to a llama.cpp directory with libggml-cuda.so}"
test -f "$SWITCHYARD_LLAMA_LIB/libggml-cuda.so" || { echo "no libggml-cuda.so in $SWITCHYARD_LLAMA_LIB" >&2; exit 1; }

gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)
echo "gpu: $gpu"
# HBM bandwidth in GB/s by model name (spec sheets); override with BW_GBS.
case "$gpu" in
	*H200*) bw=4800 ;;
	*H100*NVL*) bw=3900 ;;
	*H100*PCIe*) bw=2000 ;;
	*H100*) bw=3350 ;;
	*A100*80GB*) bw=2039 ;;
	*A100*) bw=1555 ;;
	*) bw=${BW_GBS:-0} ;;
esac
bw=${BW_GBS:-$bw}

model="$work/llama3-8b-q4km.gguf"
if [[ ! -f "$model" ]]; then
	time go run ./cmd/switchyard model generate -shape llama3-8b -quantize q4_k_m -lib "$SWITCHYARD_LLAMA_LIB" "$model"
fi
bytes=$(stat -c %s "$model")

go build -o "$work/lebench" ./bench/localengine
"$work/lebench" -model "$model" -lib "$SWITCHYARD_LLAMA_LIB" -gpu-layers -1 -threads 4 \
	-context 1024 -batch 2048 -tokens 256 -streams 1,16 | tee "$work/results.jsonl"

# The bound: every decode step reads all weights once; at batch 1 that is
# one token per step.
python3 - "$work/results.jsonl" "$bytes" "$bw" <<'PY'
import json, sys
path, size, bw = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
bound = bw * 1e9 / size if bw else float("nan")
print(f"weights {size/1e9:.2f} GB, bandwidth {bw:.0f} GB/s: batch-1 bound {bound:.0f} tok/s")
for line in open(path):
    r = json.loads(line)
    per_stream = r["tokens_per_second"] / r["streams"]
    print(f'{r["streams"]:>2} streams: {r["tokens_per_second"]:8.1f} tok/s aggregate, {per_stream:6.1f} per stream, '
          f'{per_stream / bound:5.1%} of the batch-1 bound per stream, TTFT {r["ttft_ms_mean"]:.0f} ms')
PY
