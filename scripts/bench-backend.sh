#!/usr/bin/env bash
# Benchmarks the backend's HTTPS API against nginx serving the same bytes over the same
# certificate, in one run, with wrk; prints a Markdown table for BENCHMARKS.md.
#   ./scripts/bench-backend.sh > /tmp/bench-backend.md
# Needs: wrk, nginx, curl (apt-get install wrk nginx-light curl).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install wrk nginx-light curl)" >&2; exit 1; }
done
cargo build --release --locked -q
WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
DUR="${DUR:-8s}"
B="$(mktemp -d)"
chmod 755 "$B"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WP=$(free_port); AP=$(free_port); DP=$(free_port); NP=$(free_port)
cleanup() { kill "$WPID" 2>/dev/null || true; chmod 644 "$B/www"/*
nginx -c "$B/nginx.conf" -p "$B" -s stop 2>/dev/null || true; rm -rf "$B"; }
trap cleanup EXIT
printf 'ca: {cn: Bench CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n' > "$B/plan.yml"
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null
"$WARD" backend init --state-dir "$B/state" --cluster-admin-username admin --cluster-admin-password 'bench password' >/dev/null
"$WARD" backend start --state-dir "$B/state" --api-listen-address "127.0.0.1:$WP" --agent-host 127.0.0.1 --agent-port "$AP" --dashboard-host 127.0.0.1 --dashboard-port "$DP" \
  --cert-file "$B/tls/localhost.pem" --key-file "$B/tls/localhost-key.pem" --log-level error >/dev/null 2>&1 &
WPID=$!
for _ in $(seq 100); do curl -s --cacert "$B/tls/ca.pem" "https://localhost:$WP/health" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s --cacert "$B/tls/ca.pem" -u 'admin:bench password' "https://localhost:$WP/auth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
EV="https://localhost:$WP/api/core/v2/namespaces/default/events"
# 1,000 stored events, posted by one curl over one connection.
python3 - "$B" "$EV" "$TOKEN" <<'PY'
import json, sys
b, url, token = sys.argv[1:4]
with open(f"{b}/curl.cfg", "w") as f:
    for i in range(1000):
        if i:
            f.write("next\n")
        body = '{"entity":{"entity_class":"agent","metadata":{"name":"host-%d"}},"check":{"metadata":{"name":"cpu"},"status":%d,"output":"CPU OK: 12 percent","interval":60}}' % (i, i % 3)
        f.write(f'url = "{url}"\ncacert = "{b}/tls/ca.pem"\nheader = "Authorization: Bearer {token}"\nsilent\noutput = "/dev/null"\ndata = {json.dumps(body)}\n')
PY
curl -K "$B/curl.cfg"
mkdir -p "$B/www"
chmod 755 "$B/www"
curl -s --cacert "$B/tls/ca.pem" -H "Authorization: Bearer $TOKEN" "$EV?limit=1000" > "$B/www/events.json"
COUNT=$(python3 -c "import json; print(len(json.load(open('$B/www/events.json'))))")
curl -s --cacert "$B/tls/ca.pem" "https://localhost:$WP/health" > "$B/www/health.json"
cat > "$B/nginx.conf" <<NGX
worker_processes 2;
pid $B/nginx.pid;
error_log $B/nginx-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NP ssl;
    ssl_certificate $B/tls/localhost.pem;
    ssl_certificate_key $B/tls/localhost-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $B/www;
    location = /post { return 201 '{}'; }
  }
}
NGX
chmod 644 "$B/www"/*
nginx -c "$B/nginx.conf" -p "$B"
cat > "$B/post.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = '{"entity":{"entity_class":"agent","metadata":{"name":"host-' .. (counter % 1000) .. '"}},"check":{"metadata":{"name":"cpu"},"status":0,"output":"CPU OK","interval":60}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("WARD_TOKEN")}, body)
end
LUA
run() { # name, wrk args…
  local out; out=$(WARD_TOKEN="$TOKEN" wrk --latency -d "$DUR" "$@" 2>&1)
  if echo "$out" | grep -q "Non-2xx"; then echo "error: wrk $* got error responses:" >&2; echo "$out" >&2; echo "ERR ERR"; return; fi
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $p99"
}
read -r W1 W1L < <(run -t2 -c16 -H "Authorization: Bearer $TOKEN" "$EV?limit=1000")
read -r N1 N1L < <(run -t2 -c16 "https://localhost:$NP/events.json")
read -r W2 W2L < <(run -t2 -c16 -H "Authorization: Bearer $TOKEN" -s "$B/post.lua" "$EV")
read -r N2 N2L < <(run -t2 -c16 -s "$B/post.lua" "https://localhost:$NP/post")
read -r W3 W3L < <(run -t2 -c16 -H "Connection: close" "https://localhost:$WP/health")
read -r N3 N3L < <(run -t2 -c16 -H "Connection: close" "https://localhost:$NP/health.json")
for v in "$W1" "$N1" "$W2" "$N2" "$W3" "$N3"; do [ "$v" != ERR ] || exit 1; done
python3 - "$COUNT" "$W1" "$W1L" "$N1" "$N1L" "$W2" "$W2L" "$N2" "$N2L" "$W3" "$W3L" "$N3" "$N3L" "$(stat -c %s "$B/www/events.json")" <<'PY'
import sys
a = sys.argv[1:]
count, size = a[0], int(a[13])
rows = [
    (f"GET …/events ({count} events, {size // 1024} KiB), keep-alive", a[1], a[2], a[3], a[4]),
    ("POST …/events (one durable event each), keep-alive", a[5], a[6], a[7], a[8]),
    ("full TLS handshake + GET /health per request (Connection: close)", a[9], a[10], a[11], a[12]),
]
print("| HTTPS, wrk -t2 -c16 | ward req/s | ward p99 | nginx req/s | nginx p99 | ward / nginx |")
print("| --- | --- | --- | --- | --- | --- |")
for name, w, wl, n, nl in rows:
    print(f"| {name} | {float(w):.0f} | {wl} | {float(n):.0f} | {nl} | {float(w)/float(n):.2f}x |")
PY
