#!/usr/bin/env bash
# One step to serve a model from the embedded engine: fetches the pinned
# llama.cpp libraries into .llama/lib and generates the demo model that
# config.yaml names (.llama/models/demo.gguf). Then `go run ./cmd/switchyard`
# serves it as model "demo".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-llama.sh .llama/lib
if [[ ! -f .llama/models/demo.gguf ]]; then
	go run ./cmd/switchyard model generate -shape tiny .llama/models/demo.gguf
fi
echo "ready: go run ./cmd/switchyard, then ask for model \"demo\""
