#!/usr/bin/env bash
# Optional: `go run ./cmd/switchyard` does this itself on its first start,
# because config.yaml sets local_engine.fetch_libraries and the demo
# model's `generate: tiny`. This does it ahead of time (say, before going
# offline): fetches the pinned llama.cpp libraries into .llama/lib and
# generates the demo model that config.yaml names (.llama/models/demo.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-llama.sh .llama/lib
if [[ ! -f .llama/models/demo.gguf ]]; then
	go run ./cmd/switchyard model generate -shape tiny .llama/models/demo.gguf
fi
echo "ready: go run ./cmd/switchyard, then ask for model \"demo\""
