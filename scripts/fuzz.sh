#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short fixed budget each
# (FUZZTIME, default 5000x: 5,000 executions; a duration such as 30s works
# too), one after the other, as CI does. CI counts executions rather than
# seconds: with a duration, Go's coordinator can fail a target with
# "context deadline exceeded" and no crasher when the deadline races a
# busy worker (golang/go#75804); a count has no deadline to race. A failure
# leaves the crasher under the package's testdata/fuzz/<Target>/, where
# `go test` then replays it as a regression test: commit it with the fix.
#     scripts/fuzz.sh              # every target
#     FUZZTIME=1m scripts/fuzz.sh ./gateway/
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5000x}"
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
