#!/usr/bin/env bash
# Load benchmark: Switchyard in front of a zero-delay mock upstream.
#
# Builds switchyard, the mock upstream and the load harness into a temp dir,
# starts the mock on 127.0.0.1:18081 and the gateway on 127.0.0.1:18080
# (GOMAXPROCS unset), waits for /healthz, runs bench/load against both and
# stops everything on exit.
#
# Usage: bench/run.sh [extra bench/load flags...]
# Environment overrides:
#   RATES     comma-separated req/s steps   (default 500,1000,2000,3000,5000,6000)
#   DURATION  measured time per step        (default 10s)
#   STREAM    also run streaming mode       (default true)
#   API       format the gateway is sent: chat, responses (POST
#             /v1/responses, store false) or messages (POST /v1/messages,
#             key in x-api-key); the mock is always sent chat (default chat)
#   OUT       markdown file to append to    (default bench/results.md)
#   TRACES    true: export every request's spans (100% sampling) over
#             OTLP/HTTP to the mock's /v1/traces sink (default: off)
#   QUOTAS    host:port of a redis-server: turn quotas on, stored there,
#             with limits high enough never to refuse (default: off)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES=${RATES:-500,1000,2000,3000,5000,6000}
DURATION=${DURATION:-10s}
STREAM=${STREAM:-true}
API=${API:-chat}
OUT=${OUT:-$ROOT/bench/results.md}

GW_ADDR=127.0.0.1:18080
MOCK_ADDR=127.0.0.1:18081
KEY=sk-bench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL SECONDS PID: poll URL until it answers 200, failing early if
# process PID dies.
wait_http() {
	local url=$1 secs=$2 pid=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run.sh: process $pid exited while waiting for $url" >&2
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "run.sh: $url not healthy after ${secs}s" >&2
	return 1
}

cd "$ROOT"
echo "run.sh: building into $TMP" >&2
go build -o "$TMP/switchyard" ./cmd/switchyard
go build -o "$TMP/mockupstream" ./bench/mockupstream
go build -o "$TMP/load" ./bench/load

"$TMP/mockupstream" -addr "$MOCK_ADDR" >"$TMP/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_http "http://$MOCK_ADDR/healthz" 10 "$MOCK_PID" || { cat "$TMP/mock.log" >&2; exit 1; }

KEY_SHA=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$TMP/switchyard.yaml" <<EOF
log: {level: warn}
policy: {audit: $TMP/audit.jsonl}
server:
  listen: $GW_ADDR
backends:
  - name: mock
    kind: selfhosted
    provider: openai
    base_url: http://$MOCK_ADDR/v1
    models: [bench-model]
models:
  - name: bench-model
    deployments:
      - backend: mock
keys:
  - id: bench
    sha256: $KEY_SHA
    tenant: bench
    team: bench
EOF
if [[ "${TRACES:-false}" == true ]]; then
	cat >>"$TMP/switchyard.yaml" <<EOF
telemetry:
  traces: {exporter: otlp-http, endpoint: "http://$MOCK_ADDR", insecure: true, sampling_ratio: 1}
EOF
fi
if [[ -n "${QUOTAS:-}" ]]; then
	cat >>"$TMP/switchyard.yaml" <<EOF
quotas:
  store: redis
  redis: {addrs: ["$QUOTAS"]}
  limits:
    - {scope: key, requests_per_minute: 100000000, tokens_per_minute: 10000000000}
    - {scope: team, usd_per_month: 1000000}
EOF
fi

env -u GOMAXPROCS "$TMP/switchyard" serve -config "$TMP/switchyard.yaml" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://$GW_ADDR/healthz" 30 "$GW_PID" || { cat "$TMP/gateway.log" >&2; exit 1; }

status=0
"$TMP/load" \
	-gateway "http://$GW_ADDR/v1" \
	-direct "http://$MOCK_ADDR/v1" \
	-key "$KEY" \
	-model bench-model \
	-rates "$RATES" \
	-duration "$DURATION" \
	-stream="$STREAM" \
	-api "$API" \
	-pid "$GW_PID" \
	-out "$OUT" \
	"$@" || status=$?

if [[ -s "$TMP/gateway.log" ]]; then
	echo "run.sh: gateway log (last 20 lines):" >&2
	tail -n 20 "$TMP/gateway.log" >&2
fi
exit "$status"
