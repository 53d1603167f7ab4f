#!/usr/bin/env bash
# Baseline benchmark: llama.cpp's own batched generation through
# node-llama-cpp 3.21.1 (prebuilt CPU libraries, no GPU, no build, no download).
#
# Usage: bench/nodellama/run.sh MODEL.gguf [bench.mjs flags...]
#   e.g. bench/nodellama/run.sh .llama/models/bench-q4km.gguf --threads 1 --streams 1,4,8 --fresh
#
# Installs the pinned packages into bench/nodellama/node_modules with
#   npm install --no-audit --no-fund --omit=optional --ignore-scripts
# (--omit=optional skips the ~630 MB of CUDA/Vulkan/other-platform binaries;
# @node-llama-cpp/linux-x64 is a direct dependency so it is still installed.
# --ignore-scripts skips node-llama-cpp's postinstall, which may try to build
# or download llama.cpp.) Then runs bench.mjs; JSON lines go to stdout,
# diagnostics to stderr.
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -lt 1 ]]; then
	echo "usage: $0 MODEL.gguf [--streams 1,4,8] [--threads 1] [--tokens 128] [--context 512] [--batch 512] [--fresh]" >&2
	exit 2
fi
MODEL=$(realpath "$1")
shift

command -v node >/dev/null || { echo "run.sh: node (>= 20) not found" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm not found" >&2; exit 1; }

(cd "$DIR" && npm install --no-audit --no-fund --omit=optional --ignore-scripts >&2)

export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
exec node "$DIR/bench.mjs" "$MODEL" "$@"
