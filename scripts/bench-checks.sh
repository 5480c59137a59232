#!/usr/bin/env bash
# Benchmarks one real agent (mTLS to a TLS backend on the embedded store): how many check
# executions a second it sustains, with `true` as the command, without and with a runtime
# asset (served once over HTTPS, then from the cache), beside a plain `sh -c true` loop on
# this machine; and how many StatsD lines a second its listener takes into metrics events.
#   CHECKS=400 DUR=20 ./scripts/bench-checks.sh
# Knobs: CHECKS (checks with interval 1, all subscribed by the agent: the offered rate),
# DUR (seconds measured, 20), LINES (StatsD lines sent, 2,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in curl python3 openssl; do
  command -v "$t" >/dev/null || { echo "error: $t is not installed (apt-get install $t)" >&2; exit 1; }
done
if [ -z "${WARD:-}" ]; then
  cargo build --release --locked -q
  WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
fi
CHECKS="${CHECKS:-400}"; DUR="${DUR:-20}"; LINES="${LINES:-2000000}"
B="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AP=$(free_port); GP=$(free_port); DP=$(free_port); AAPI=$(free_port); ASOCK=$(free_port); STATSD=$(free_port); FILES=$(free_port)
cleanup() {
  for p in backend agent files; do [ -f "$B/$p.pid" ] && kill "$(cat "$B/$p.pid")" 2>/dev/null || true; done
  rm -rf "$B"
}
[ -n "${KEEP:-}" ] && echo "keeping $B" >&2 || trap cleanup EXIT

cat > "$B/plan.yml" <<YML
ca: {cn: Bench CA}
backends:
  - name: localhost
    hosts: [127.0.0.1]
agents:
  - prefix: bench-
    count: 1
YML
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null 2>&1
"$WARD" pki crl --ca-dir "$B/tls" --out "$B/tls/crl.pem" >/dev/null
"$WARD" backend init --state-dir "$B/state" --cluster-admin-username admin --cluster-admin-password 'bench-password' >/dev/null
"$WARD" backend start --state-dir "$B/state" --log-level warn \
  --api-listen-address "127.0.0.1:$AP" --agent-host 127.0.0.1 --agent-port "$GP" \
  --dashboard-host 127.0.0.1 --dashboard-port "$DP" \
  --cert-file "$B/tls/localhost.pem" --key-file "$B/tls/localhost-key.pem" \
  --agent-auth-cert-file "$B/tls/localhost.pem" --agent-auth-key-file "$B/tls/localhost-key.pem" \
  --agent-auth-trusted-ca-file "$B/tls/ca.pem" --agent-auth-crl-urls "file://$B/tls/crl.pem" >>"$B/backend.log" 2>&1 &
echo $! > "$B/backend.pid"
for _ in $(seq 100); do curl -s --cacert "$B/tls/ca.pem" "https://localhost:$AP/ready" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s --cacert "$B/tls/ca.pem" -u admin:bench-password "https://localhost:$AP/auth" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
api() {
  code=$(curl -s -o "$B/put.txt" -w '%{http_code}' --cacert "$B/tls/ca.pem" -H "Authorization: Bearer $TOKEN" \
    -X "$1" -H 'Content-Type: application/json' "https://localhost:$AP/api/core/v2/namespaces/default/$2" ${3:+-d "$3"})
  case "$code" in 2*) ;; *) echo "error: $1 $2: $code $(cat "$B/put.txt")" >&2; exit 1 ;; esac
}

# An asset (bin/tool) served over HTTPS by openssl s_server's file mode, once: the agent
# caches it by its SHA-512.
mkdir -p "$B/asset/bin" "$B/www"
printf '#!/bin/sh\nexit 0\n' > "$B/asset/bin/tool"; chmod +x "$B/asset/bin/tool"
tar -C "$B/asset" -czf "$B/www/tool.tar.gz" bin
SHA=$(sha512sum "$B/www/tool.tar.gz" | cut -d' ' -f1)
(cd "$B/www" && exec openssl s_server -quiet -WWW -accept "$FILES" -cert "$B/tls/localhost.pem" -key "$B/tls/localhost-key.pem") >/dev/null 2>&1 &
echo $! > "$B/files.pid"
api PUT assets/tool "{\"metadata\":{\"name\":\"tool\"},\"url\":\"https://localhost:$FILES/tool.tar.gz\",\"sha512\":\"$SHA\"}"

"$WARD" agent start --name bench-00001 --backend-url "wss://localhost:$GP" \
  --trusted-ca-file "$B/tls/ca.pem" --cert-file "$B/tls/bench-00001.pem" --key-file "$B/tls/bench-00001-key.pem" \
  --subscriptions bench --cache-dir "$B/agent" --api-port "$AAPI" --socket-port "$ASOCK" \
  --statsd-metrics-port "$STATSD" --statsd-flush-interval 1 --log-level warn >>"$B/agent.log" 2>&1 &
echo $! > "$B/agent.pid"
for _ in $(seq 100); do curl -s "http://127.0.0.1:$AAPI/healthz" | grep -q ok && break; sleep 0.1; done
metric() { curl -s "http://127.0.0.1:$AAPI/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# Peer: a plain sh -c loop, for DUR/4 seconds.
peer=$(python3 - "$(( DUR / 4 ))" <<'PY'
import subprocess, sys, time
end = time.time() + int(sys.argv[1]); n = 0; t0 = time.time()
while time.time() < end:
    subprocess.run(["sh", "-c", "true"]); n += 1
print(f"{n / (time.time() - t0):.0f}")
PY
)
echo "peer: sh -c true in a loop (python subprocess): $peer/s" >&2

run_checks() { # $1: label, $2: extra JSON for each check
  for i in $(seq "$CHECKS"); do
    api PUT "checks/c$i" "{\"metadata\":{\"name\":\"c$i\"},\"command\":\"${3:-true}\",\"interval\":1,\"publish\":true,\"subscriptions\":[\"bench\"]$2}"
  done
  sleep 5
  local a0 s0 t0 a1 s1 t1
  a0=$(metric ward_agent_checks_executed_total); s0=$(metric ward_agent_events_acked_total); t0=$(date +%s.%N)
  sleep "$DUR"
  a1=$(metric ward_agent_checks_executed_total); s1=$(metric ward_agent_events_acked_total); t1=$(date +%s.%N)
  python3 -c "d=$t1-$t0; print(f'$1: $CHECKS checks every 1 s offered; executed {($a1-$a0)/d:.0f}/s, stored {($s1-$s0)/d:.0f}/s over {d:.1f} s')" >&2
  grep -c 'still running from an earlier request' "$B/agent.log" | sed 's/^/  requests skipped (check still running): /' >&2 || true
}
run_checks "checks, command true" ""
run_checks "checks, command tool from a runtime asset" ",\"runtime_assets\":[\"tool\"]" tool
for i in $(seq "$CHECKS"); do api DELETE "checks/c$i"; done

# StatsD: LINES counter lines, 20 a datagram, as fast as one sender can.
sleep 2
l0=$(metric ward_agent_statsd_lines_total); e0=$(metric ward_agent_statsd_events_total)
python3 - "$STATSD" "$LINES" > "$B/statsd.txt" <<'PY'
import socket, sys, time
port, lines = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dgram = "\n".join(f"bench.counter.{i % 100}:1|c" for i in range(20)).encode()
t0 = time.time(); sent = 0
while sent < lines:
    s.sendto(dgram, ("127.0.0.1", port)); sent += 20
d = time.time() - t0
print(f"{sent} {d:.3f}")
PY
sleep 3
l1=$(metric ward_agent_statsd_lines_total); e1=$(metric ward_agent_statsd_events_total)
read -r sent secs < "$B/statsd.txt"
python3 -c "r=$l1-$l0; print(f'statsd, one sender as fast as it goes: sent $sent lines in {$secs:.2f} s; the agent read {r} ({100*r/$sent:.1f}%; the rest overflowed the socket buffer); $((e1 - e0)) metrics events')" >&2
# Sustained: RATE lines a second (paced in 10 ms slices) for DUR seconds.
RATE="${RATE:-500000}"
l0=$(metric ward_agent_statsd_lines_total)
python3 - "$STATSD" "$RATE" "$DUR" > "$B/statsd.txt" <<'PY'
import socket, sys, time
port, rate, dur = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dgram = "\n".join(f"bench.counter.{i % 100}:1|c" for i in range(20)).encode()
per_slice = max(1, rate // 100 // 20)
t0 = time.time(); sent = 0; k = 0
while time.time() - t0 < dur:
    for _ in range(per_slice):
        s.sendto(dgram, ("127.0.0.1", port)); sent += 20
    k += 1
    delay = t0 + k / 100 - time.time()
    if delay > 0: time.sleep(delay)
print(f"{sent} {time.time() - t0:.3f}")
PY
sleep 2
l1=$(metric ward_agent_statsd_lines_total)
read -r sent secs < "$B/statsd.txt"
python3 -c "r=$l1-$l0; print(f'statsd, {$sent/$secs:.0f} lines/s offered for {$secs:.0f} s: the agent read {r/$secs:.0f}/s ({100*r/$sent:.1f}%)')" >&2
grep -c '"level":"ERROR"' "$B/backend.log" | sed 's/^/backend errors logged: /' >&2 || true
