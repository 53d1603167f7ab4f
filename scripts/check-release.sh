#!/usr/bin/env bash
# Checks that a release build of switchyard is bit-for-bit reproducible and
# writes its SBOM (docs/release.md).
#
#   scripts/check-release.sh        (VERSION, REVISION: as the image's build args)
#
# 1. Builds ./cmd/switchyard twice with the Dockerfile's flags, from one
#    snapshot of the tree unpacked at two different paths: once with the
#    usual build cache, once with an empty one. The two binaries must be
#    the same bytes (-trimpath keeps paths out, -buildid= and
#    -buildvcs=false keep out what differs between checkouts,
#    CGO_ENABLED=0 keeps out the C toolchain).
# 2. Writes a CycloneDX SBOM of what the binary links (cyclonedx-gomod app
#    in a git clone, bin from a tarball) and checks it: CycloneDX JSON,
#    more than 50 components, OPA among them, and every module in the
#    binary's own build information listed at the same version.
#
# Outputs in ${SWITCHYARD_ARTIFACTS:-dist}/: switchyard-GOOS-GOARCH, its
# .sha256, its build information (go version -m) and sbom.cdx.json.
# Needs only Go (and the Go module proxy, for the toolchain the Dockerfile
# pins if it is not the installed one, and cyclonedx-gomod the first time;
# both are cached).
set -euo pipefail
start=$SECONDS
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CYCLONEDX_GOMOD_VERSION=v1.10.0
VERSION=${VERSION:-dev}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || true)}
out=${SWITCHYARD_ARTIFACTS:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tools=${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-tools

# The Go toolchain is part of the input: use the one the Dockerfile pins
# (the go command fetches it through the module proxy when the installed
# one differs), so this hash is the image's binary's.
pin=$(sed -n 's/^FROM golang:\([0-9][0-9.]*\)-.* AS build$/\1/p' Dockerfile)
if [[ -z "$pin" ]]; then
	echo "check-release: no 'FROM golang:X.Y.Z-... AS build' in Dockerfile" >&2
	exit 1
fi
export GOTOOLCHAIN=go$pin GOWORK=off GOFLAGS=
unset GOEXPERIMENT
echo "toolchain: $(go version) (Dockerfile pins go$pin)"
echo "VERSION=$VERSION REVISION=$REVISION"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
	echo "note: the work tree has uncommitted changes; REVISION names the commit they sit on"
fi
goos=$(go env GOOS)
goarch=$(go env GOARCH)

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

# The Dockerfile's build, in directory $1, to file $2.
release_build() {
	(cd "$1" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.revision=${REVISION}" -o "$2" ./cmd/switchyard)
}

# One snapshot of the tree (a tree being edited must not change between the
# builds), unpacked at two different paths.
excludes=(--exclude=./.git --exclude=./.llama --exclude=node_modules --exclude=./dist)
case "$out/" in "$root"/*) excludes+=("--exclude=./${out#"$root"/}") ;; esac
# (Exit status 1 is GNU tar's "a file changed as we read it": both builds
# still see the same snapshot.)
tar -C "$root" "${excludes[@]}" -cf "$tmp/src.tar" . || [[ $? -eq 1 ]]
src1=$tmp/a/switchyard
src2=$tmp/elsewhere/src/github.com/switchyard
mkdir -p "$src1" "$src2"
tar -C "$src1" -xf "$tmp/src.tar"
tar -C "$src2" -xf "$tmp/src.tar"
rm "$tmp/src.tar"

t=$SECONDS
release_build "$src1" "$tmp/bin1/switchyard"
echo "build 1: in $src1, GOCACHE $(go env GOCACHE): $((SECONDS - t))s"
# The other path, with an empty build cache: the standard library and every
# dependency compiled again.
t=$SECONDS
GOCACHE=$tmp/gocache release_build "$src2" "$tmp/bin2/switchyard"
echo "build 2: in $src2, GOCACHE $tmp/gocache (empty): $((SECONDS - t))s"

a=$(sha256sum "$tmp/bin1/switchyard" | cut -d' ' -f1)
b=$(sha256sum "$tmp/bin2/switchyard" | cut -d' ' -f1)
if [[ "$a" != "$b" ]]; then
	echo "check-release: NOT reproducible: $a (build 1) != $b (build 2)" >&2
	diff <(go version -m "$tmp/bin1/switchyard") <(go version -m "$tmp/bin2/switchyard") >&2 || true
	exit 1
fi

bin=switchyard-$goos-$goarch
cp "$tmp/bin1/switchyard" "$out/$bin"
(cd "$out" && sha256sum "$bin" >"$bin.sha256")
go version -m "$out/$bin" >"$out/$bin.buildinfo.txt"
echo "reproducible: sha256 $a  $bin ($(stat -c %s "$out/$bin") bytes)"

# The SBOM of what the main package links, under the same constraints.
tool=$tools/cyclonedx-gomod@$CYCLONEDX_GOMOD_VERSION/cyclonedx-gomod
if [[ ! -x "$tool" ]]; then
	t=$SECONDS
	GOBIN=$(dirname "$tool") go install "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$CYCLONEDX_GOMOD_VERSION"
	echo "installed cyclonedx-gomod $CYCLONEDX_GOMOD_VERSION in $(dirname "$tool"): $((SECONDS - t))s"
fi
# In a clone, app mode: the modules of the packages cmd/switchyard links,
# with their packages' licenses; it takes the main module's version from
# git, so it reads the clone itself. Without git (a tarball), bin mode: the
# modules in the release binary's own build information. Either way the
# check below holds the SBOM to the binary.
if git -C "$root" rev-parse -q --verify HEAD >/dev/null 2>&1; then
	CGO_ENABLED=0 "$tool" app -json -licenses -main cmd/switchyard -output "$out/sbom.cdx.json" "$root"
else
	echo "no git repository at $root: SBOM from the binary (cyclonedx-gomod bin, no licenses)"
	"$tool" bin -json -version "$VERSION" -output "$out/sbom.cdx.json" "$out/$bin"
fi

# A minimal validation, in Go so that nothing but Go is needed.
mkdir -p "$tmp/sbomcheck"
cat >"$tmp/sbomcheck/main.go" <<'EOF'
package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type component struct {
	Name       string      `json:"name"`
	Version    string      `json:"version"`
	PURL       string      `json:"purl"`
	Components []component `json:"components"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "check-release: SBOM: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var bom struct {
		BOMFormat   string      `json:"bomFormat"`
		SpecVersion string      `json:"specVersion"`
		Metadata    struct{ Component component } `json:"metadata"`
		Components  []component `json:"components"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		fail("not JSON: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || !strings.HasPrefix(bom.SpecVersion, "1.") {
		fail("bomFormat %q, specVersion %q; want CycloneDX 1.x", bom.BOMFormat, bom.SpecVersion)
	}
	versions := map[string]string{}
	var walk func([]component)
	walk = func(cs []component) {
		for _, c := range cs {
			if strings.HasPrefix(c.PURL, "pkg:golang/") {
				versions[c.Name] = c.Version
			}
			walk(c.Components)
		}
	}
	walk(bom.Components)
	if len(versions) <= 50 {
		fail("%d components; want more than 50", len(versions))
	}
	if versions["github.com/open-policy-agent/opa"] == "" {
		fail("no github.com/open-policy-agent/opa")
	}
	// Every module the binary says it links is in the SBOM, at its version.
	bi, err := buildinfo.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if versions[d.Path] != d.Version {
			fail("the binary links %s %s; the SBOM lists %q", d.Path, d.Version, versions[d.Path])
		}
	}
	fmt.Printf("sbom: CycloneDX %s, %d components (all %d modules in the binary's build information, at their versions), OPA %s\n",
		bom.SpecVersion, len(versions), len(bi.Deps), versions["github.com/open-policy-agent/opa"])
}
EOF
(cd "$tmp/sbomcheck" && go run main.go "$out/sbom.cdx.json" "$out/$bin")
echo "artifacts in $out: $(cd "$out" && echo *)"
echo "check-release: ok in $((SECONDS - start))s"
