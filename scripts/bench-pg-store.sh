#!/usr/bin/env bash
# Benchmarks the PostgreSQL event store: events posted to a TLS backend (wrk, keep-alive, each
# POST answered only after its batch committed in PostgreSQL over verify-full TLS with a client
# certificate), side by side, in the same run and on the same PostgreSQL 15, with the same
# rows loaded by `psql \copy` into the same table. PostgreSQL runs with its durable defaults
# (fsync, synchronous_commit on). Prints a Markdown table for BENCHMARKS.md.
#   ./scripts/bench-pg-store.sh > /tmp/bench-pg-store.md
# Knobs: DUR (wrk duration, 10s), CONNS (wrk connections, 64), ENTITIES x CHECKS keys (1000 x 20),
# WORKERS (the PostgresConfig's batch_workers; unset: Ward's default), PERF=FILE (perf record
# the backend during the load; PERF_OPTS="--call-graph fp" for call graphs).
# LOAD=agents: instead of wrk, `ward bench agents` with COUNT agents (1000) over wss with mTLS
# (each its own certificate, CRL checked) sending RATE check results/s in total (10000), each
# acknowledged only after its batch committed in PostgreSQL. The row shows what the agents
# managed to send (sent/s): to measure the ceiling, offer more than the machine can take
# (RATE=48000 on the 2-core machine of BENCHMARKS.md) and check that sent/s fell short of it.
# Needs: wrk, curl, python3, PostgreSQL 15 (apt-get install wrk curl postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk curl python3 runuser; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install wrk curl)" >&2; exit 1; }
done
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || { echo "error: PostgreSQL 15 is not installed (apt-get install postgresql)" >&2; exit 1; }
cargo build --release --locked -q
WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
DUR="${DUR:-10s}"; CONNS="${CONNS:-64}"; ENTITIES="${ENTITIES:-1000}"; CHECKS="${CHECKS:-20}"
LOAD="${LOAD:-wrk}"; COUNT="${COUNT:-1000}"; RATE="${RATE:-10000}"
B="$(mktemp -d)"; chmod 755 "$B"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WP=$(free_port); AP=$(free_port); DP=$(free_port); PP=$(free_port)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -z "${WPID:-}" ] || kill "$WPID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$B/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$B"
}
trap cleanup EXIT

# Certificates from Ward's own CA: the backend, the PostgreSQL server, the client user `ward`.
cat > "$B/plan.yml" <<'YML'
ca: {cn: Bench CA}
backends:
  - name: localhost
    hosts: [127.0.0.1]
postgres:
  - name: postgres.example.com
    hosts: [localhost, 127.0.0.1]
postgres_clients:
  - user: ward
YML
[ "$LOAD" != agents ] || printf 'agents:\n  - prefix: agent-\n    count: %s\n' "$COUNT" >> "$B/plan.yml"
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null

# PostgreSQL 15 as in the guide: TLS, certificates only for ward on ward_events.
mkdir -p "$B/pg" "$B/sock"
[ "$(id -u)" -ne 0 ] || chown postgres "$B/pg" "$B/sock"
as_pg "$PGBIN/initdb" -D "$B/pg" -U postgres -A trust -E UTF8 --locale=C --no-instructions >/dev/null
install -m 600 "$B/tls/postgres.example.com-key.pem" "$B/pg/server.key"
install -m 644 "$B/tls/postgres.example.com.pem" "$B/pg/server.crt"
install -m 644 "$B/tls/ca.pem" "$B/pg/root.crt"
[ "$(id -u)" -ne 0 ] || chown postgres "$B/pg/server.key" "$B/pg/server.crt" "$B/pg/root.crt"
cat >> "$B/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PP
unix_socket_directories = '$B/sock'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'root.crt'
max_connections = 100
CONF
printf 'local all all trust\nhostssl all postgres 127.0.0.1/32 reject\nhostssl ward_events ward 127.0.0.1/32 cert\n' > "$B/pg/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$B/pg" -l "$B/sock/pg.log" -w start >/dev/null
PSQL=("$PGBIN/psql" -h "$B/sock" -p "$PP" -U postgres -v ON_ERROR_STOP=1 -Atq)
"${PSQL[@]}" -d postgres -c "CREATE ROLE ward LOGIN" -c "CREATE DATABASE ward_events OWNER ward"

AGENT_AUTH=()
if [ "$LOAD" = agents ]; then
  "$WARD" pki crl --ca-dir "$B/tls" --out "$B/tls/crl.pem" >/dev/null
  AGENT_AUTH=(--agent-auth-cert-file "$B/tls/localhost.pem" --agent-auth-key-file "$B/tls/localhost-key.pem"
    --agent-auth-trusted-ca-file "$B/tls/ca.pem" --agent-auth-crl-urls "file://$B/tls/crl.pem")
fi
# The backend, with the guide's PG* variables in its env file.
cat > "$B/ward-backend.env" <<ENV
PGHOSTADDR=127.0.0.1
PGUSER=ward
PGSSLMODE="verify-full"
PGSSLCERT="$B/tls/ward.pem"
PGSSLKEY="$B/tls/ward-key.pem"
PGSSLROOTCERT="$B/tls/ca.pem"
ENV
"$WARD" backend init --state-dir "$B/state" --cluster-admin-username admin --cluster-admin-password 'bench password' >/dev/null
"$WARD" backend start --state-dir "$B/state" --env-file "$B/ward-backend.env" --api-listen-address "127.0.0.1:$WP" \
  --agent-host 127.0.0.1 --agent-port "$AP" --dashboard-host 127.0.0.1 --dashboard-port "$DP" \
  --cert-file "$B/tls/localhost.pem" --key-file "$B/tls/localhost-key.pem" --log-level warn "${AGENT_AUTH[@]}" >/dev/null 2>"$B/backend.log" &
WPID=$!
for _ in $(seq 100); do curl -s --cacert "$B/tls/ca.pem" "https://localhost:$WP/health" >/dev/null && break; sleep 0.1; done
export WARD_CTL_CONFIG="$B/ctl.json"
"$WARD" ctl configure -n --url "https://localhost:$WP" --username admin --password 'bench password' --trusted-ca-file "$B/tls/ca.pem" >/dev/null
cat > "$B/postgresconfig.yml" <<YML
type: PostgresConfig
api_version: store/v1
metadata:
  name: bench_postgres
spec:
  dsn: "postgresql://postgres.example.com:$PP/ward_events"
  pool_size: 20
  strict: true
${WORKERS:+  batch_workers: $WORKERS}
YML
# STORE=embedded: the same load with no PostgresConfig (the embedded store), as a control.
[ "${STORE:-postgres}" = embedded ] || "$WARD" ctl create -f "$B/postgresconfig.yml" >/dev/null
for _ in $(seq 100); do
  [ "${STORE:-postgres}" = embedded ] && break
  curl -s --cacert "$B/tls/ca.pem" "https://localhost:$WP/health" | grep -q '"Healthy":true}' && break; sleep 0.2
done
TOKEN=$(curl -s --cacert "$B/tls/ca.pem" -u 'admin:bench password' "https://localhost:$WP/auth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
EV="https://localhost:$WP/api/core/v2/namespaces/default/events"

# PERF=FILE: a CPU profile of the backend during the load (perf record).
[ -z "${PERF:-}" ] || { perf record -F 499 ${PERF_OPTS:-} -p "$WPID" -o "$PERF" >/dev/null 2>&1 & }
if [ "$LOAD" = agents ]; then
  # COUNT agents, one check each plus its keepalive event: 2 x COUNT rows.
  OUT=$("$WARD" bench agents --backend-url "wss://localhost:$AP" --trusted-ca-file "$B/tls/ca.pem" \
    --certs "$B/tls" --count "$COUNT" --rate "$RATE" --duration "$DUR" --api-url "https://localhost:$WP" \
    --connect-rate 2000 --json)
  read -r RPS P50 P99 RETRIED SENT <<<"$(echo "$OUT" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %.1fms %.1fms %d %.0f" % (r["events_per_s"], r["latency_p50_ms"], r["latency_p99_ms"], r["retried"], r.get("events_sent_per_s", 0)))')"
  [ "$RETRIED" = 0 ] || echo "note: $RETRIED events answered retry" >&2
  SHAPE="ward bench agents --count $COUNT --rate $RATE --duration $DUR"
  # What the agents managed to send: below --rate when the machine (shared with the tool)
  # is saturated, so the rate stored is then Ward's ceiling, not the offered rate.
  HOW="events over wss (mTLS), each acknowledged after its batch committed; $SENT/s sent"
else
# ENTITIES x CHECKS checks, each event an upsert of its check's row (the steady state of a fleet).
cat > "$B/post.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local e = counter % $ENTITIES
  local c = math.floor(counter / $ENTITIES) % $CHECKS
  local body = '{"entity":{"entity_class":"agent","metadata":{"name":"host-' .. e .. '"}},"check":{"metadata":{"name":"check-' .. c .. '"},"status":' .. (counter % 3) .. ',"output":"CHECK OK: 12 percent used","interval":10}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("WARD_TOKEN")}, body)
end
LUA
OUT=$(WARD_TOKEN="$TOKEN" wrk --latency -t2 -c"$CONNS" -d "$DUR" -s "$B/post.lua" "$EV" 2>&1)
if echo "$OUT" | grep -q "Non-2xx"; then echo "error: wrk got error responses:" >&2; echo "$OUT" >&2; tail -20 "$B/backend.log" >&2; exit 1; fi
RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
P99=$(echo "$OUT" | awk '$1=="99%" {print $2}')
SHAPE="wrk -t2 -c$CONNS -d$DUR"
HOW="POST …/events over HTTPS, each acknowledged after its batch committed"
fi
STORED=$(curl -s --cacert "$B/tls/ca.pem" "https://localhost:$WP/metrics" | awk '/^ward_events_stored_total / {print $2}')
if [ "${STORE:-postgres}" = embedded ]; then
  echo "| control: the same load on the embedded store (SQLite, group commit), no PostgresConfig ($STORED events) | $RPS | $P50 | $P99 | – |"
  exit 0
fi
ROWS=$("${PSQL[@]}" -d ward_events -c "SELECT count(*) FROM events")
# The backend's CPU time (user + system, its start and handshakes included) per event stored.
CPU_US=$(awk -v n="$STORED" -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz * 1e6 / n}' "/proc/$WPID/stat")
HOW="$HOW; backend CPU $CPU_US µs/event"
kill "$WPID"; wait "$WPID" 2>/dev/null || true

# The peer: the same rows (as many as the backend stored events), loaded by psql \copy into the
# same table, emptied first; over the same kind of connection (TLS, client certificate).
REPS=$(( (STORED + ROWS - 1) / ROWS ))
"${PSQL[@]}" -d ward_events -c "\\copy (SELECT namespace, entity, check_name || '-' || g, status, state, occurrences, occurrences_watermark, last_ok, history, executed, updated_at, event, version FROM events, generate_series(1, $REPS) g LIMIT $STORED) TO '$B/rows.copy'"
"${PSQL[@]}" -d ward_events -c "TRUNCATE events"
# A checkpoint first, so that the COPY does not pay for the WAL the backend's run left.
"${PSQL[@]}" -d ward_events -c "CHECKPOINT"
chmod 600 "$B/tls/ward-key.pem"
T0=$(date +%s.%N)
"$PGBIN/psql" "host=postgres.example.com hostaddr=127.0.0.1 port=$PP dbname=ward_events user=ward sslmode=verify-full sslrootcert=$B/tls/ca.pem sslcert=$B/tls/ward.pem sslkey=$B/tls/ward-key.pem" \
  -v ON_ERROR_STOP=1 -Atq -c "\\copy events FROM '$B/rows.copy'"
T1=$(date +%s.%N)
COPIED=$("${PSQL[@]}" -d ward_events -c "SELECT count(*) FROM events")
python3 - "$RPS" "$P50" "$P99" "$STORED" "$ROWS" "$COPIED" "$T0" "$T1" "$SHAPE" "$HOW" <<'PY'
import sys
rps, p50, p99, stored, rows, copied, t0, t1, shape, how = sys.argv[1:]
copy_rate = int(copied) / (float(t1) - float(t0))
print(f"| PostgreSQL event store ({shape}, {rows} checks) | events/s | p50 ack | p99 ack | ward / COPY |")
print("| --- | --- | --- | --- | --- |")
print(f"| ward: {how} ({stored} events) | {float(rps):.0f} | {p50} | {p99} | {float(rps)/copy_rate:.2f}x |")
print(f"| psql \\copy of the same rows into the same table ({copied} rows, one transaction) | {copy_rate:.0f} | – | – | 1.00x |")
PY
