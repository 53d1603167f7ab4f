#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short fixed time each
# (FUZZTIME, default 10s), one after the other, as CI does. A failure
# leaves the crasher under the package's testdata/fuzz/<Target>/, where
# `go test` then replays it as a regression test: commit it with the fix.
#     scripts/fuzz.sh              # every target
#     FUZZTIME=1m scripts/fuzz.sh ./gateway/
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
n=0
for pkg in $(go list "${pkgs[@]}"); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($fuzztime)"
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 2
		n=$((n + 1))
	done
done
echo "fuzzed $n targets for $fuzztime each"
