#!/usr/bin/env bash
# Benchmarks `ward pg probe` against `openssl s_client -starttls postgres`, whole processes,
# side by side against one PostgreSQL 15 on 127.0.0.1, and prints a Markdown table.
#   ./scripts/bench-pg.sh > /tmp/bench-pg.md
# Needs: hyperfine, openssl, PostgreSQL 15 (apt-get install hyperfine openssl postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=/usr/lib/postgresql/15/bin
for tool in hyperfine openssl python3 "$BIN/initdb"; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
cargo build --release --locked -q
WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
RUNS="${RUNS:-50}"
B="$(mktemp -d)"
chmod 755 "$B"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$BIN/pg_ctl" -D "$B/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$B"; }
trap cleanup EXIT
mkdir "$B/data" "$B/sock"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$B/data" "$B/sock"
as_pg "$BIN/initdb" -D "$B/data" -U postgres -A trust --no-sync --no-instructions >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" "$PORT" "$B/sock" >> "$B/data/postgresql.conf"
printf 'ca: {cn: Bench CA}\npostgres:\n  - name: localhost\n    hosts: [127.0.0.1]\n' > "$B/plan.yml"
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null
"$WARD" pg configure --pgdata "$B/data" --cert "$B/tls/localhost.pem" --key "$B/tls/localhost-key.pem" --ca "$B/tls/ca.pem" >/dev/null
as_pg "$BIN/pg_ctl" -D "$B/data" -l "$B/sock/log" -w start >/dev/null

hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "$B/probe.json" \
  -n "ward pg probe" "$WARD pg probe localhost:$PORT --root-cert $B/tls/ca.pem >/dev/null" \
  -n "openssl s_client -starttls postgres" "openssl s_client -starttls postgres -connect 127.0.0.1:$PORT -servername localhost -CAfile $B/tls/ca.pem -verify_return_error </dev/null >/dev/null 2>&1" \
  >/dev/null
python3 - "$B/probe.json" "$RUNS" <<'PY'
import json, statistics, sys
m = {r["command"]: statistics.median(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
w = m["ward pg probe"]; o = m["openssl s_client -starttls postgres"]
print("| one probe, whole process (median of %s) | time | openssl / ward |" % sys.argv[2])
print("| --- | --- | --- |")
print(f"| ward pg probe (handshake, chain and name checks, TLS 1.0 and 1.1 refusal: 3 connections) | {w*1e3:.1f} ms | {o/w:.2f}x |")
print(f"| openssl s_client -starttls postgres (1 connection, chain check) | {o*1e3:.1f} ms | 1.00x |")
PY
