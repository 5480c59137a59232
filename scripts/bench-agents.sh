#!/usr/bin/env bash
# Benchmarks the agent transport at fleet scale on this machine: one TLS backend on the
# embedded store with agent mTLS (client certificates checked against the CA and a CRL),
# and `ward bench agents` with N simulated agents, each presenting its own certificate
# from `ward pki bootstrap`, sending keepalives and check results. Prints the load tool's
# report (sessions held, events/s stored, p50/p99, backend RSS per session, handshakes/s).
#   COUNT=19500 RATE=20000 DUR=30s ./scripts/bench-agents.sh
# Knobs: COUNT (agents, 1000), RATE (check results/s in total, 5000), DUR (30s),
# RESTART=1 (kill -9 the backend a quarter into sending and start it again: reconnect storm),
# SOURCES (loopback source addresses, 16), PERF=FILE (perf record the backend into FILE),
# API=1 (during the sending phase, an authenticated GET of the checks list 10 times a second
# on one keep-alive HTTPS connection, as a dashboard would poll; prints its p50/p99),
# PIPELINE=none|handler|filters (check results with status 2 naming a udp handler `sink`:
# `handler` runs it with no filter, `filters` behind three EventFilters with expressions and
# a JavaScript mutator; prints the pipeline's counters from /metrics at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null || { echo "error: curl is not installed (apt-get install curl)" >&2; exit 1; }
# WARD=PATH benchmarks that binary (another build, for a side-by-side run) instead.
if [ -z "${WARD:-}" ]; then
  cargo build --release --locked -q
  WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
fi
COUNT="${COUNT:-1000}"; RATE="${RATE:-5000}"; DUR="${DUR:-30s}"; SOURCES="${SOURCES:-16}"
B="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AP=$(free_port); GP=$(free_port); DP=$(free_port)
cleanup() {
  [ -f "$B/backend.pid" ] && kill "$(cat "$B/backend.pid")" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT

cat > "$B/plan.yml" <<YML
ca: {cn: Bench CA}
backends:
  - name: localhost
    hosts: [127.0.0.1]
agents:
  - prefix: agent-
    count: $COUNT
YML
t0=$(date +%s.%N)
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null 2>&1
echo "certificates: $COUNT agent certificates in $(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")s (ward pki bootstrap)" >&2
"$WARD" pki crl --ca-dir "$B/tls" --out "$B/tls/crl.pem" >/dev/null
"$WARD" backend init --state-dir "$B/state" --cluster-admin-username admin --cluster-admin-password 'bench-password' >/dev/null
start_backend() {
  "$WARD" backend start --state-dir "$B/state" --log-level warn \
    --api-listen-address "127.0.0.1:$AP" --agent-host 127.0.0.1 --agent-port "$GP" \
    --dashboard-host 127.0.0.1 --dashboard-port "$DP" \
    --cert-file "$B/tls/localhost.pem" --key-file "$B/tls/localhost-key.pem" \
    --agent-auth-cert-file "$B/tls/localhost.pem" --agent-auth-key-file "$B/tls/localhost-key.pem" \
    --agent-auth-trusted-ca-file "$B/tls/ca.pem" --agent-auth-crl-urls "file://$B/tls/crl.pem" \
    >>"$B/backend.log" 2>&1 &
  BPID=$!; echo "$BPID" > "$B/backend.pid"
  for _ in $(seq 100); do curl -s --cacert "$B/tls/ca.pem" "https://localhost:$AP/ready" >/dev/null && break; sleep 0.1; done
}
start_backend
if [ -n "${PERF:-}" ]; then
  # PERF=/tmp/ward.perf: a flat CPU profile of the backend for the whole run.
  perf record -F 499 ${PERF_OPTS:-} -p "$BPID" -o "$PERF" >/dev/null 2>&1 &
fi
PIPE_ARGS=()
if [ -n "${PIPELINE:-}" ] && [ "$PIPELINE" != none ]; then
  TOKEN=$(curl -s --cacert "$B/tls/ca.pem" -u admin:bench-password "https://localhost:$AP/auth" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  api() {
    code=$(curl -s -o "$B/put.txt" -w '%{http_code}' --cacert "$B/tls/ca.pem" -H "Authorization: Bearer $TOKEN" \
      -X PUT -H 'Content-Type: application/json' "https://localhost:$AP/api/core/v2/namespaces/default/$1" -d "$2")
    [ "$code" = 201 ] || { echo "error: PUT $1: $code $(cat "$B/put.txt")" >&2; exit 1; }
  }
  SINK=$(free_port)
  if [ "$PIPELINE" = filters ]; then
    api filters/f1 '{"metadata":{"name":"f1"},"action":"allow","expressions":["event.check.occurrences >= 1","event.entity.entity_class == \"agent\""]}'
    api filters/f2 '{"metadata":{"name":"f2"},"action":"deny","expressions":["event.entity.labels.maintenance == \"true\""]}'
    api filters/f3 '{"metadata":{"name":"f3"},"action":"allow","expressions":["hour(event.timestamp) >= 0 && event.check.name.match(/^bench/)"]}'
    api mutators/short '{"metadata":{"name":"short"},"type":"javascript","eval":"return JSON.stringify({entity: event.entity.metadata.name, status: event.check.status})"}'
    api handlers/sink "{\"metadata\":{\"name\":\"sink\"},\"type\":\"udp\",\"socket\":{\"host\":\"127.0.0.1\",\"port\":$SINK},\"filters\":[\"is_incident\",\"f1\",\"f2\",\"f3\"],\"mutator\":\"short\"}"
  else
    api handlers/sink "{\"metadata\":{\"name\":\"sink\"},\"type\":\"udp\",\"socket\":{\"host\":\"127.0.0.1\",\"port\":$SINK}}"
  fi
  PIPE_ARGS=(--status 2 --handlers sink)
fi
if [ "${RESTART:-0}" = 1 ]; then
  (
    # A quarter into the sending phase (connecting takes about COUNT/1000 s).
    secs=${DUR%s}
    sleep $(( COUNT / 1000 + 5 + secs / 4 ))
    echo "kill -9 the backend" >&2
    kill -9 "$(cat "$B/backend.pid")"; sleep 1
    start_backend
  ) &
fi
if [ "${API:-0}" = 1 ]; then
  TOKEN=$(curl -s --cacert "$B/tls/ca.pem" -u admin:bench-password "https://localhost:$AP/auth" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  (
    # Once the agents are connected (about COUNT/1000 s, plus 5), for half the duration.
    secs=${DUR%s}
    sleep $(( COUNT / 1000 + 5 ))
    n=$(( secs * 5 ))
    urls=(); for _ in $(seq "$n"); do urls+=(--url "https://localhost:$AP/api/core/v2/namespaces/default/checks" -o /dev/null); done
    curl -s --cacert "$B/tls/ca.pem" -H "Authorization: Bearer $TOKEN" --rate 10/s \
      -w '%{http_code} %{time_total}\n' "${urls[@]}" > "$B/api.txt"
  ) &
  APIPID=$!
fi
"$WARD" bench agents --backend-url "wss://localhost:$GP" --trusted-ca-file "$B/tls/ca.pem" \
  --certs "$B/tls" --count "$COUNT" --rate "$RATE" --duration "$DUR" --sources "$SOURCES" \
  --api-url "https://localhost:$AP" --connect-rate 2000 "${PIPE_ARGS[@]}"
if [ ${#PIPE_ARGS[@]} -gt 0 ]; then
  sleep 2
  curl -s --cacert "$B/tls/ca.pem" "https://localhost:$AP/metrics" |
    grep -E '^ward_(handler_(runs|dropped|filtered)_total|filter_evaluations_total|handler_failures_total\{reason="(filter|mutator|socket|timeout)"\}) ' >&2 || true
fi
if [ -n "${APIPID:-}" ]; then
  wait "$APIPID" || true
  python3 - "$B/api.txt" >&2 <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
t = sorted(float(r[1]) * 1000 for r in rows)
bad = sum(1 for r in rows if r[0] != "200")
q = lambda p: t[min(len(t) - 1, int(len(t) * p))]
print(f"API under agent load: {len(t)} GETs (non-200: {bad}), p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {t[-1]:.1f} ms")
PY
fi
grep -c '"level":"ERROR"' "$B/backend.log" | sed 's/^/backend errors logged: /' >&2 || true
