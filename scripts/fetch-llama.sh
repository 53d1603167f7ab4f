#!/usr/bin/env bash
# Installs the pinned llama.cpp CPU libraries that the local engine loads at
# run time (no cgo) in DIR: the prebuilt .so files inside the npm package
# @node-llama-cpp/linux-x64. The gateway does the same by itself at start
# when the config sets local_engine.fetch_libraries (config.yaml does); this
# is for CI, images and fetching ahead of time.
#
#   scripts/fetch-llama.sh [DIR]     (default: .llama/lib)
#
# In a clone with Go it runs `switchyard llama fetch DIR` (the pin lives in
# localengine/llamalib: the tarball from the npm registry over HTTPS, its
# size and SHA-512 integrity checked, only its .so files unpacked; no npm).
# Copied alone somewhere without Go (the Dockerfile's first stage), it uses
# `npm pack` with the same pin (no Node code runs); a test keeps the two
# pins equal. The package and the Go binding (yzma) are pinned as a pair:
# see docs/localengine.md before changing either.
set -euo pipefail

PKG=@node-llama-cpp/linux-x64
VERSION=3.21.1
# The registry's integrity of that tarball.
INTEGRITY=sha512-Totj6RTDMGo3FoK2yNUaz/oGmZD0olAqTrRluFUWmu0kW2i9TOzHSW0OWCAiGkzRCVX0WsU2CyUQo/W2NYtdPA==

dir=${1:-.llama/lib}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -f "$root/go.mod" ]] && command -v go >/dev/null; then
	[[ "$dir" == /* ]] || dir="$PWD/$dir"
	cd "$root"
	exec go run ./cmd/switchyard llama fetch "$dir"
fi

if [[ -f "$dir/libllama.so" && -f "$dir/.version" && "$(cat "$dir/.version")" == "$PKG@$VERSION" ]]; then
	echo "llama.cpp libraries already in $dir ($PKG@$VERSION)"
	exit 0
fi
command -v npm >/dev/null || { echo "fetch-llama: needs Go (in a clone of the repository) or npm" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --json "$PKG@$VERSION" >pack.json)
got=$(grep -o '"integrity": *"[^"]*"' "$tmp/pack.json" | head -1 | sed 's/.*: *"//; s/"$//')
if [[ "$got" != "$INTEGRITY" ]]; then
	echo "fetch-llama: integrity mismatch for $PKG@$VERSION: got $got, want $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p "$dir"
cp "$tmp"/package/bins/linux-x64/*.so "$dir"/
# The binding opens libllama.so and libggml.so; the package versions them.
ln -sf libllama.v0.4.0.so "$dir/libllama.so"
ln -sf libggml.v0.4.0.so "$dir/libggml.so"
echo "$PKG@$VERSION" >"$dir/.version"
echo "llama.cpp libraries in $dir ($PKG@$VERSION):"
ls "$dir"
