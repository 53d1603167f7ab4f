#!/usr/bin/env bash
# Load benchmark: a bare reverse proxy, Switchyard with everything off and
# Switchyard with everything on, each in front of the same zero-delay mock
# upstream, measured in one run of bench/load.
#
# Builds switchyard, the mock upstream and the load harness into a temp dir
# and starts, each as a child of this script with its files in that dir:
#
#   mock   bench/mockupstream (also the OTLP trace sink) on 127.0.0.1:18081
#   nginx  Debian's nginx, one process (master_process off, daemon off),
#          proxy_pass to the mock with an upstream keep-alive pool,
#          proxy_buffering off (SSE streams through), access_log off;
#          sent chat completions, like the mock
#   off    Switchyard with everything that can be switched off off: policy
#          audit none, no quotas, no tracing, no metrics endpoint, the
#          default (memory) cost ledger. Policy evaluation and sensitive-data
#          classification cannot be switched off in Switchyard: they run
#          here too.
#   on     Switchyard with everything on, on 127.0.0.1:18080: policy audit
#          to a file, quotas in Redis (limits that never refuse), OTLP/HTTP
#          tracing of every request (sampling_ratio 1) to the mock's sink,
#          metrics at /metrics, the cost ledger in the same Redis (shared by
#          replicas, as in production; the memory ledger keeps up to a
#          million entries in process)
#   redis  redis-server for "on"'s quotas and ledger, on a free loopback port, no
#          persistence, unless REDIS names one
#
# Every port is checked to be free first (18080/18081 are used when free,
# otherwise the next free ones), the Switchyard processes run with
# GOMAXPROCS unset, each process's health is awaited (/healthz; for nginx
# the mock's /healthz through it), then bench/load measures direct (the
# mock) and each target at every rate in json and stream mode, searches
# each one's sustained ceiling, and writes a summary with ratios to nginx
# (when nginx runs). Every child is stopped on exit, Ctrl-C included.
#
# Usage: bench/run.sh [extra bench/load flags...]
# Environment overrides:
#   RATES     comma-separated req/s steps   (default 1000,2000,5000)
#   DURATION  measured time per step        (default 10s; about 15 minutes in
#             all on a 2-core box with the defaults)
#   STREAM    also run streaming mode       (default true)
#   API       format the Switchyard targets are sent: chat, responses (POST
#             /v1/responses, store false) or messages (POST /v1/messages,
#             key in x-api-key); the mock and nginx are always sent chat
#             (default chat)
#   CEILING   search each target's sustained ceiling (default true)
#   TARGETS   comma-separated subset of nginx,off,on, run in that order
#             (default nginx,off,on)
#   OUT       markdown file to append to    (default bench/results.md)
#   REDIS     host:port of a redis-server for "on"'s quotas (default: one
#             started here)
#   NGINX     the nginx binary              (default /usr/sbin/nginx)
#   PROBE     true: while the load runs, send the last Switchyard target
#             one chat completion every 0.2 s on a fresh connection (curl)
#             and report, per status, how many and how fast, and how soon
#             after the last refusal one was served (default false)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES=${RATES:-1000,2000,5000}
DURATION=${DURATION:-10s}
STREAM=${STREAM:-true}
API=${API:-chat}
CEILING=${CEILING:-true}
TARGETS=${TARGETS:-nginx,off,on}
OUT=${OUT:-$ROOT/bench/results.md}
REDIS=${REDIS:-}
NGINX=${NGINX:-/usr/sbin/nginx}
PROBE=${PROBE:-false}
KEY=sk-bench

# The targets, in the order given; each at most once.
WANT=()
IFS=, read -r -a names <<<"$TARGETS"
for name in "${names[@]}"; do
	name=${name// /}
	[[ -z "$name" ]] && continue
	case "$name" in
	nginx | off | on) ;;
	*)
		echo "run.sh: TARGETS: unknown target \"$name\" (want nginx, off, on)" >&2
		exit 2
		;;
	esac
	for w in "${WANT[@]}"; do
		if [[ "$w" == "$name" ]]; then
			echo "run.sh: TARGETS: \"$name\" given twice" >&2
			exit 2
		fi
	done
	WANT+=("$name")
done
if ((${#WANT[@]} == 0)); then
	echo "run.sh: TARGETS names no target" >&2
	exit 2
fi
want() {
	local w
	for w in "${WANT[@]}"; do
		[[ "$w" == "$1" ]] && return 0
	done
	return 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
PIDS=() # every child, stopped in reverse order on exit
LOAD_PID=
cleanup() {
	local pid i
	set +e
	trap - INT TERM
	# The harness first, so that it writes its (partial) report while its
	# targets are still up.
	if [[ -n "$LOAD_PID" ]] && running "$LOAD_PID"; then
		kill -TERM "$LOAD_PID" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			running "$LOAD_PID" || break
			sleep 0.1
		done
		kill -KILL "$LOAD_PID" 2>/dev/null
		wait "$LOAD_PID" 2>/dev/null
	fi
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null
	done
	# Up to 10s for a graceful exit, then SIGKILL.
	for ((i = 0; i < 100; i++)); do
		local alive=0
		for pid in "${PIDS[@]}"; do
			running "$pid" && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do
		if running "$pid"; then
			echo "run.sh: process $pid ignored SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# running PID: the process exists and is not a zombie (our exited children
# stay zombies until waited for).
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat:0:1}" != Z ]]
}

# pick_port VAR PREFERRED: set VAR to PREFERRED, or the first port above it,
# that nothing listens on and that no earlier pick_port took.
TAKEN=()
pick_port() {
	local var=$1 port=$2 t ok
	for ((; port < $2 + 500; port++)); do
		ok=1
		for t in "${TAKEN[@]}"; do
			[[ "$t" == "$port" ]] && ok=0
		done
		if ((ok)) && [[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			TAKEN+=("$port")
			printf -v "$var" '%s' "$port"
			return 0
		fi
	done
	echo "run.sh: no free port from $2 up" >&2
	return 1
}

# wait_http URL SECONDS PID: poll URL until it answers 200, failing early if
# process PID dies.
wait_http() {
	local url=$1 secs=$2 pid=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		if ! running "$pid"; then
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

# fail LOG MESSAGE: print the message and the log's tail, and exit.
fail() {
	echo "run.sh: $2" >&2
	[[ -s "$1" ]] && tail -n 30 "$1" >&2
	exit 1
}

cd "$ROOT"
echo "run.sh: building into $TMP" >&2
if want off || want on; then
	go build -o "$TMP/switchyard" ./cmd/switchyard
fi
go build -o "$TMP/mockupstream" ./bench/mockupstream
go build -o "$TMP/load" ./bench/load

pick_port ON_PORT 18080
pick_port MOCK_PORT 18081
pick_port NGINX_PORT 18082
pick_port OFF_PORT 18083
MOCK_ADDR=127.0.0.1:$MOCK_PORT

"$TMP/mockupstream" -addr "$MOCK_ADDR" >"$TMP/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_http "http://$MOCK_ADDR/healthz" 10 "$MOCK_PID" || fail "$TMP/mock.log" "mock upstream did not start"

LOAD_ARGS=()
STARTED=()

if want nginx; then
	[[ -x "$NGINX" ]] || fail /dev/null "no nginx at $NGINX (apt-get install nginx-light, or set NGINX)"
	NGINX_ADDR=127.0.0.1:$NGINX_PORT
	mkdir -p "$TMP/nginx"
	nofile=$(ulimit -n)
	[[ "$nofile" == unlimited ]] && nofile=65536
	cat >"$TMP/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx.log warn;
worker_rlimit_nofile $nofile;

events {
    worker_connections $((nofile / 2));
}

http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;

    upstream mock {
        server $MOCK_ADDR;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 75s;
    }

    server {
        listen $NGINX_ADDR;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
	"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" -e "$TMP/nginx.log" >>"$TMP/nginx.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	wait_http "http://$NGINX_ADDR/healthz" 10 "$NGINX_PID" || fail "$TMP/nginx.log" "nginx did not start"
	STARTED+=("nginx $NGINX_ADDR pid $NGINX_PID")
	LOAD_ARGS+=(
		-target "nginx=http://$NGINX_ADDR/v1,pid=$NGINX_PID,api=chat"
		-describe "nginx=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), one process (master_process off, worker_connections $((nofile / 2))), proxy_pass to the mock with an upstream keep-alive pool, proxy_buffering off, access_log off: the bare reverse proxy."
		-baseline nginx
	)
fi

# switchyard_config NAME ADDR: the base configuration, the same model,
# backend and key for both Switchyard targets.
KEY_SHA=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
switchyard_config() {
	cat <<EOF
log: {level: warn}
server:
  listen: $2
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
}

# start_switchyard NAME ADDR: start Switchyard with $TMP/NAME.yaml and wait
# for its health; sets SY_PID.
start_switchyard() {
	env -u GOMAXPROCS "$TMP/switchyard" serve -config "$TMP/$1.yaml" >"$TMP/$1.log" 2>&1 &
	SY_PID=$!
	PIDS+=("$SY_PID")
	wait_http "http://$2/healthz" 30 "$SY_PID" || fail "$TMP/$1.log" "Switchyard \"$1\" did not start"
	STARTED+=("$1 $2 pid $SY_PID")
}

REDIS_DESC=$REDIS
for name in "${WANT[@]}"; do
	case "$name" in
	off)
		OFF_ADDR=127.0.0.1:$OFF_PORT
		PROBE_URL=http://$OFF_ADDR/v1
		{
			switchyard_config off "$OFF_ADDR"
			cat <<EOF
policy: {audit: none}
telemetry:
  traces: {exporter: none}
  metrics: {path: "off"}
EOF
		} >"$TMP/off.yaml"
		start_switchyard off "$OFF_ADDR"
		LOAD_ARGS+=(
			-target "off=http://$OFF_ADDR/v1,pid=$SY_PID"
			-describe "off=Switchyard with policy audit none, no quotas, no tracing, no metrics endpoint, memory ledger. Policy evaluation and sensitive-data classification cannot be switched off in Switchyard and run here too."
		)
		;;
	on)
		if [[ -z "$REDIS" ]]; then
			command -v redis-server >/dev/null || fail /dev/null "no redis-server (apt-get install redis-server, or set REDIS)"
			pick_port REDIS_PORT 18084
			redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
				--dir "$TMP" --daemonize no --logfile "$TMP/redis.log" >/dev/null 2>&1 &
			REDIS_PID=$!
			PIDS+=("$REDIS_PID")
			REDIS=127.0.0.1:$REDIS_PORT
			REDIS_DESC="$REDIS, started here"
			for ((i = 0; ; i++)); do
				running "$REDIS_PID" || fail "$TMP/redis.log" "redis-server exited"
				[[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
				((i < 100)) || fail "$TMP/redis.log" "redis-server not answering after 10s"
				sleep 0.1
			done
			STARTED+=("redis $REDIS pid $REDIS_PID")
		fi
		ON_ADDR=127.0.0.1:$ON_PORT
		PROBE_URL=http://$ON_ADDR/v1
		{
			switchyard_config on "$ON_ADDR"
			cat <<EOF
policy: {audit: $TMP/audit.jsonl}
data_dir: $TMP/on-data
ledger: {store: redis}
telemetry:
  traces: {exporter: otlp-http, endpoint: "http://$MOCK_ADDR", insecure: true, sampling_ratio: 1}
quotas:
  store: redis
  redis: {addrs: ["$REDIS"]}
  limits:
    - {scope: key, requests_per_minute: 100000000, tokens_per_minute: 10000000000}
    - {scope: team, usd_per_month: 1000000}
EOF
		} >"$TMP/on.yaml"
		start_switchyard on "$ON_ADDR"
		LOAD_ARGS+=(
			-target "on=http://$ON_ADDR/v1,pid=$SY_PID"
			-describe "on=Switchyard with policy audit to a file, quotas in Redis ($REDIS_DESC; limits that never refuse), OTLP/HTTP traces of every request to the mock's sink, metrics at /metrics, the cost ledger in the same Redis."
		)
		;;
	esac
done

echo "run.sh: mock $MOCK_ADDR pid $MOCK_PID; $(IFS=';' && echo "${STARTED[*]}" | sed 's/;/; /g')" >&2

status=0
"$TMP/load" \
	-direct "http://$MOCK_ADDR/v1" \
	-direct-pid "$MOCK_PID" \
	"${LOAD_ARGS[@]}" \
	-key "$KEY" \
	-model bench-model \
	-rates "$RATES" \
	-duration "$DURATION" \
	-stream="$STREAM" \
	-api "$API" \
	-ceiling="$CEILING" \
	-out "$OUT" \
	"$@" &
LOAD_PID=$!
PROBE_PID=
if [[ "$PROBE" == true && -n "${PROBE_URL:-}" ]]; then
	(
		while kill -0 "$LOAD_PID" 2>/dev/null; do
			# start time, status, seconds
			printf '%s ' "$(date +%s.%N)"
			curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 \
				-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -H 'Connection: close' \
				-d '{"model":"bench-model","messages":[{"role":"user","content":"probe"}]}' \
				"$PROBE_URL/chat/completions" || echo "000 5"
			sleep 0.2
		done
	) >"$TMP/probe.txt" &
	PROBE_PID=$!
fi
wait "$LOAD_PID" || status=$?
LOAD_PID=
if [[ -n "$PROBE_PID" ]]; then
	wait "$PROBE_PID" || true
	{
		echo
		echo "### Probe: one request every 0.2 s on a fresh connection to $PROBE_URL"
		echo
		echo "| status | probes | p50 | max |"
		echo "|---:|---:|---:|---:|"
		for code in $(awk '{print $2}' "$TMP/probe.txt" | sort -u); do
			awk -v c="$code" '$2 == c {print $3}' "$TMP/probe.txt" | sort -n | awk -v c="$code" \
				'{t[NR] = $1} END {printf "| %s | %d | %.1f ms | %.1f ms |\n", c, NR, 1000 * t[int((NR + 1) / 2)], 1000 * t[NR]}'
		done
		awk '$2 != 200 {last = $1; after = 0; next} last {after++}
			END {if (last) printf "\nLast refusal at +%.1f s of the probe; all %d probes after it served.\n", last - start, after}' \
			start="$(head -n1 "$TMP/probe.txt" | cut -d' ' -f1)" "$TMP/probe.txt"
	} | tee -a "$OUT" >&2
fi

for name in mock nginx off on redis; do
	# The mock's and Redis's logs only say they started, unless something failed.
	[[ ("$name" == mock || "$name" == redis) && "$status" == 0 ]] && continue
	if [[ -s "$TMP/$name.log" ]]; then
		echo "run.sh: $name log (last 20 lines):" >&2
		tail -n 20 "$TMP/$name.log" >&2
	fi
done
exit "$status"
