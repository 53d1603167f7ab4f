#!/usr/bin/env bash
# Fetches the pinned llama.cpp CPU libraries that the local engine loads at
# run time (no cgo): the prebuilt .so files inside the npm package
# @node-llama-cpp/linux-x64. `npm pack` only downloads the tarball; no Node
# code runs. The package and the Go binding (yzma) are pinned as a pair:
# see docs/localengine.md before changing either.
#
#   scripts/fetch-llama.sh [DIR]     (default: .llama/lib)
set -euo pipefail

PKG=@node-llama-cpp/linux-x64
VERSION=3.21.1
# The registry's integrity of that tarball; npm pack checks it as well.
INTEGRITY=sha512-Totj6RTDMGo3FoK2yNUaz/oGmZD0olAqTrRluFUWmu0kW2i9TOzHSW0OWCAiGkzRCVX0WsU2CyUQo/W2NYtdPA==

dir=${1:-.llama/lib}
if [[ -f "$dir/libllama.so" && -f "$dir/.version" && "$(cat "$dir/.version")" == "$PKG@$VERSION" ]]; then
	echo "llama.cpp libraries already in $dir ($PKG@$VERSION)"
	exit 0
fi
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
