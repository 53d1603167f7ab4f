#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/switchyard, offline: `helm lint --strict`
# and `helm template` for several value sets (deploy/helm/switchyard/ci/),
# every rendered manifest validated with kubeconform -strict against the
# Kubernetes JSON schemas, the rendered config.yaml checked by
# `switchyard config check`, the chart's own refusals, and which changes
# roll the pods.
#
# Needs only Go: helm and kubeconform are built from the Go module proxy at
# the pinned versions below, once, into $CACHE/bin; the schemas are
# generated (deploy/helm/schemagen) from the OpenAPI spec inside the module
# k8s.io/kubernetes and the ServiceMonitor CRD inside prometheus-operator's
# module, once, into $CACHE/schemas. CACHE is
# ${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-tools.
#
#   bash scripts/check-helm.sh
set -euo pipefail

HELM_VERSION=v4.3.2                  # helm.sh/helm/v4
KUBECONFORM_VERSION=v0.8.0           # github.com/yannh/kubeconform
KUBERNETES_VERSION=v1.37.2           # k8s.io/kubernetes: api/openapi-spec/swagger.json
PROMETHEUS_OPERATOR_VERSION=v0.85.0  # github.com/prometheus-operator/prometheus-operator: the ServiceMonitor CRD

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart=$root/deploy/helm/switchyard
cache=${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
fail() { echo "FAIL: $*" >&2; exit 1; }

# build NAME PACKAGE VERSION: go install PACKAGE@VERSION into $cache/bin once.
build() {
  local exe=$cache/bin/$1-$3
  if [ ! -x "$exe" ]; then
    echo "building $2@$3 (once, into $cache/bin)" >&2
    mkdir -p "$cache/bin"
    (cd "$work" && GOBIN=$work/gobin go install "$2@$3") >&2
    mv "$work/gobin/$1" "$exe"
  fi
  printf '%s' "$exe"
}
helm=$(build helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION")
kubeconform=$(build kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")
echo "tools: helm.sh/helm/v4@$HELM_VERSION ($("$helm" version --short)), github.com/yannh/kubeconform@$KUBECONFORM_VERSION"

# The schemas, regenerated when a version or the generator changes.
gen=$root/deploy/helm/schemagen
gen_sum=$(cat "$gen/go.mod" "$gen/main.go" | sha256sum | cut -c1-12)
schemas=$cache/schemas/k8s-$KUBERNETES_VERSION-po-$PROMETHEUS_OPERATOR_VERSION-$gen_sum
if [ ! -f "$schemas/complete" ]; then
  rm -rf "$schemas"
  (cd "$gen" && go run . -out "$schemas/standalone-strict" -kubernetes "$KUBERNETES_VERSION" \
    -crd "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION:jsonnet/prometheus-operator/servicemonitors-crd.json")
  touch "$schemas/complete"
fi
echo "schemas: $(ls "$schemas/standalone-strict" | wc -l) kinds, Kubernetes $KUBERNETES_VERSION + ServiceMonitor (prometheus-operator $PROMETHEUS_OPERATOR_VERSION)"

location="$schemas/standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
validate() { "$kubeconform" -strict -summary -output text -verbose -kubernetes-version "${KUBERNETES_VERSION#v}" -schema-location "$location" "$@"; }

# The schemas refuse what the API server would: a misspelt field, a wrong
# type, an unknown field of a custom resource.
bad() {
  printf '%s\n' "$2" >"$work/bad.yaml"
  if validate "$work/bad.yaml" >"$work/bad.out" 2>&1; then fail "kubeconform accepted $1"; fi
  grep -q "$3" "$work/bad.out" || { cat "$work/bad.out" >&2; fail "kubeconform refused $1 without naming $3"; }
}
pod='{"containers": [{"name": "c", "image": "i"}]}'
bad "a misspelt field" '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
  "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"readOnlyRootFileSystem": true}}]}}' readOnlyRootFileSystem
bad "a string for an integer" '{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "2",
  "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": '"$pod"'}}}' replicas
bad "an unknown ServiceMonitor field" '{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "s"},
  "spec": {"selector": {}, "endpoints": [{"port": "http", "paths": "/metrics"}]}}' paths
echo "schemas refuse:  a misspelt field, a string for an integer, an unknown ServiceMonitor field"

# The gateway, for `config check` of every rendered config.yaml.
(cd "$root" && go build -o "$work/switchyard" ./cmd/switchyard)

kube=${KUBERNETES_VERSION#v}
release=sy
namespace=switchyard

policy_args=()
for f in "$root"/policies/bundle/*.rego "$root"/policies/bundle/data.json; do
  b=$(basename "$f")
  policy_args+=(--set-file "policyBundle.files.${b//./\\.}=$f")
done

# kinds FILE: the sorted kinds of the rendered manifests in FILE.
kinds() { awk '/^kind: /{print $2}' "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }

# doc FILE KIND: the manifest of that kind (the first) in FILE.
doc() { awk -v k="kind: $2" 'BEGIN{RS="\n---\n"} index($0, "\n" k "\n") || index($0, k "\n") == 1 {print; exit}' "$1"; }

# check_config NAME FILE: switchyard config check on the rendered
# config.yaml, with the rendered Secret's variables; a ${VAR} that the
# Secret does not hold (an existingSecret's) gets a stand-in value.
check_config() {
  local name=$1 file=$2 cfg=$work/$1.config.yaml
  awk '/^  config.yaml: \|$/{f=1;next} f&&/^    /{sub(/^    /,"");print;next} f{exit}' "$file" >"$cfg"
  [ -s "$cfg" ] || fail "$name: no config.yaml in the rendered ConfigMap"
  (
    while IFS= read -r line; do
      k=${line%%:*}; k=${k// /}; v=${line#*: }; v=${v//\"/}
      export "$k=$(printf '%s' "$v" | base64 -d)"
    done < <(doc "$file" Secret | awk '/^data:/{f=1;next} f&&/^  [A-Za-z_][A-Za-z0-9_]*: /{print;next} f{exit}')
    for var in $(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$cfg" | tr -d '${}' | sort -u); do
      [ -n "${!var:-}" ] || export "$var=$(printf '%s' "$var" | sha256sum | cut -c1-64)"
    done
    "$work/switchyard" config check -config "$cfg" >"$work/$name.check" 2>&1
  )
}

# expect NAME FILE PATTERN...: each grep -E pattern occurs in FILE.
expect() {
  local name=$1 file=$2; shift 2
  for p in "$@"; do grep -Eq -- "$p" "$file" || fail "$name: rendered manifests lack /$p/"; done
}

# The hardening every value set keeps.
hardening=(
  'runAsNonRoot: true' 'runAsUser: 65532' 'readOnlyRootFilesystem: true'
  'allowPrivilegeEscalation: false' '- ALL' 'type: RuntimeDefault'
  'automountServiceAccountToken: false' 'path: /readyz' 'path: /healthz'
  'mountPath: /tmp' 'mountPath: /var/lib/switchyard' 'checksum/config: [0-9a-f]{64}'
)

total=0
# check NAME "EXPECTED KINDS" ARGS...: lint, render, validate one value set.
check() {
  local name=$1 want=$2; shift 2
  local out=$work/$name.yaml
  "$helm" lint --strict "$chart" "$@" >"$work/$name.lint" 2>&1 || { cat "$work/$name.lint" >&2; fail "$name: helm lint"; }
  "$helm" template "$release" "$chart" --namespace "$namespace" --kube-version "$kube" "$@" >"$out" 2>"$work/$name.err" ||
    { cat "$work/$name.err" >&2; fail "$name: helm template"; }
  validate "$out" >"$work/$name.kc" 2>&1 || { cat "$work/$name.kc" >&2; fail "$name: kubeconform"; }
  # NOTES.txt is rendered by install only (a client-side dry run: no cluster).
  "$helm" install "$release" "$chart" --namespace "$namespace" --dry-run=client "$@" >"$work/$name.install" 2>&1 &&
    grep -q "^NOTES:" "$work/$name.install" || { cat "$work/$name.install" >&2; fail "$name: NOTES.txt"; }
  local got n
  got=$(kinds "$out")
  [ "$got" = "$want" ] || fail "$name: rendered kinds [$got], want [$want]"
  n=$(grep -c ' is valid$' "$work/$name.kc" || true)
  [ "$n" -eq "$(wc -w <<<"$want")" ] || { cat "$work/$name.kc" >&2; fail "$name: $n valid resources, want $(wc -w <<<"$want")"; }
  expect "$name" "$out" "${hardening[@]}"
  check_config "$name" "$out" || { cat "$work/$name.check" >&2; fail "$name: switchyard config check refused the rendered config.yaml"; }
  total=$((total + n))
  printf '%-16s %d resources valid (%s); config.yaml valid\n' "$name:" "$n" \
    "$(sed -n 's/^.* - \([A-Za-z]*\) \([^ ]*\) is valid$/\1/p' "$work/$name.kc" | sort | tr '\n' ' ' | sed 's/ $//')"
}

ci=$chart/ci
base="ConfigMap Deployment HorizontalPodAutoscaler PodDisruptionBudget Secret Service ServiceAccount"
check defaults "$base"
expect defaults "$work/defaults.yaml" 'kind: HorizontalPodAutoscaler' 'averageUtilization: 70' 'minAvailable: 1' \
  'preStop:' 'seconds: 5' 'terminationGracePeriodSeconds: 45' 'checksum/secret: [0-9a-f]{64}'
check no-hpa-no-pdb "ConfigMap Deployment Secret Service ServiceAccount" -f "$ci/no-hpa-no-pdb-values.yaml"
expect no-hpa-no-pdb "$work/no-hpa-no-pdb.yaml" '^  replicas: 1$'
if grep -q 'startupProbe:\|preStop:' "$work/no-hpa-no-pdb.yaml"; then fail "no-hpa-no-pdb: startupProbe or preStop rendered while disabled"; fi
check servicemonitor "$base ServiceMonitor" -f "$ci/servicemonitor-values.yaml"
expect servicemonitor "$work/servicemonitor.yaml" 'apiVersion: monitoring.coreos.com/v1' 'path: /metrics' 'release: kube-prometheus-stack' \
  'maxUnavailable: 1' 'name: memory'
check gpu "ConfigMap Deployment HorizontalPodAutoscaler Secret Service ServiceAccount" -f "$ci/gpu-values.yaml"
expect gpu "$work/gpu.yaml" 'nvidia.com/gpu: 1' 'nvidia.com/gpu.present: "true"' 'key: nvidia.com/gpu' 'key: dedicated' \
  'runtimeClassName: nvidia' 'claimName: switchyard-models' 'mountPath: /models' 'gpu_layers: -1'
check existing-secret "ConfigMap Deployment HorizontalPodAutoscaler PodDisruptionBudget Service" -f "$ci/existing-secret-values.yaml"
expect existing-secret "$work/existing-secret.yaml" 'name: switchyard-credentials' 'serviceAccountName: switchyard-runtime' \
  'sha256: \$\{SWITCHYARD_KEY_TEAM_A_SHA256\}' 'sha256: \$\{SWITCHYARD_KEY_EU_BANK_BATCH_SHA256\}' \
  'sha256: \$\{SWITCHYARD_ADMIN_KEY_OPS_SHA256\}' 'password: \$\{REDIS_PASSWORD\}'
check policy-bundle "ConfigMap $base" -f "$ci/policy-bundle-values.yaml" "${policy_args[@]}"
expect policy-bundle "$work/policy-bundle.yaml" 'name: sy-switchyard-policy' 'bundle: /etc/switchyard/policy' \
  'mountPath: /etc/switchyard/policy' '^  routing.rego: ' '^  data.json: '
check redis "$base" -f "$ci/redis-values.yaml"
expect redis "$work/redis.yaml" 'store: redis' 'REDIS_PASSWORD: ' 'SWITCHYARD_KEY_DEV_SHA256: ' 'SWITCHYARD_ADMIN_KEY_OPS_SHA256: ' \
  'OPENAI_API_KEY: ' '- redis-cluster-2.redis-cluster.redis.svc:6379'

# Which changes roll the pods: config.yaml does, the policy bundle does not
# (the gateway reloads it from the mounted ConfigMap).
annotations() { "$helm" template "$release" "$chart" --kube-version "$kube" "$@" | grep -E 'checksum/(config|secret):'; }
a0=$(annotations -f "$ci/policy-bundle-values.yaml" "${policy_args[@]}")
a1=$(annotations -f "$ci/policy-bundle-values.yaml" "${policy_args[@]}" --set-string 'policyBundle.files.extra\.rego=package switchyard.extra')
a2=$(annotations -f "$ci/policy-bundle-values.yaml" "${policy_args[@]}" --set config.log.level=debug)
[ "$a0" = "$a1" ] || fail "a policy bundle change changed the pods' checksums: it would restart them"
[ "$a0" != "$a2" ] || fail "a config.yaml change left the pods' checksums as they were: pods would keep the old config"
echo "rollout:         a config.yaml change rolls the pods; a policy bundle change does not (hot reload)"

# What the chart refuses to render.
refuse() {
  local why=$1 msg=$2; shift 2
  if "$helm" template "$release" "$chart" --kube-version "$kube" "$@" >"$work/refuse.out" 2>&1; then
    fail "rendered, but should refuse: $why"
  fi
  grep -q -- "$msg" "$work/refuse.out" || { cat "$work/refuse.out" >&2; fail "$why: refused without saying '$msg'"; }
}
refuse "grace period shorter than the shutdown" "terminationGracePeriodSeconds (30) must be at least" --set terminationGracePeriodSeconds=30
refuse "virtual key without a hash" 'has no sha256' --set 'virtualKeys[0].id=a' --set 'virtualKeys[0].tenant=t'
refuse "malformed hash" 'must be 64 lowercase hex digits' --set 'virtualKeys[0].id=a' --set 'virtualKeys[0].tenant=t' --set 'virtualKeys[0].sha256=ABC'
refuse "key ids that clash" 'both map to SWITCHYARD_KEY_A_B_SHA256' --set 'secrets.existingSecret=s' \
  --set 'virtualKeys[0].id=a-b' --set 'virtualKeys[0].tenant=t' --set 'virtualKeys[1].id=a.b' --set 'virtualKeys[1].tenant=t'
refuse "redis without addresses" 'redis.enabled needs redis.addrs' --set redis.enabled=true
refuse "empty policy bundle" 'at least one .rego file' --set policyBundle.enabled=true
refuse "ServiceMonitor without metrics" 'serves no metrics' --set serviceMonitor.enabled=true --set config.telemetry.metrics.path=off
echo "refusals:        7 misconfigurations refused with their message"

# And config check does refuse: a misspelt config field fails the check.
"$helm" template "$release" "$chart" --kube-version "$kube" --set config.server.shutdown_timout=30s >"$work/typo.yaml"
if check_config typo "$work/typo.yaml"; then fail "switchyard config check accepted config.server.shutdown_timout"; fi
grep -q 'shutdown_timout: unknown field' "$work/typo.check" || { cat "$work/typo.check" >&2; fail "config check refused the typo without naming it"; }
echo "config check:    refuses a misspelt field (server.shutdown_timout)"

echo "check-helm: OK: 7 value sets, $total resources valid against Kubernetes $KUBERNETES_VERSION schemas (kubeconform -strict), in $((SECONDS - start)) s"
