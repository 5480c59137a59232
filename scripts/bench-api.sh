#!/usr/bin/env bash
# Benchmarks the Sensu API's lists with RBAC on (issue 13): two binaries, a base and a new
# one, each a TLS backend on the embedded store with a fresh state dir and the same data,
# measured with wrk; prints a Markdown table for BENCHMARKS.md.
#   BASE=/path/to/base/ward ./scripts/bench-api.sh > /tmp/bench-api.md
# Knobs: WARD=PATH (the new binary; default: build HEAD), BASE=PATH (required), DUR (wrk's
# duration per measurement, default 8s), RUNS (rounds, default 3: every row is measured
# base, then new, RUNS times; the table gives medians and the range), PERF=DIR (after the
# rounds, record the new backend with perf (DWARF call graphs) while wrk runs rows a, b
# and c again; DIR/ROW.data, DIR/ROW.self.txt and DIR/ROW.children.txt, and the samples
# under ward_backend::rbac:: and api::access::permit to stderr).
# Data: 1,000 checks (POSTed wrapped, which both accept), 10,000 events (1,000 entities ×
# 10 checks); entity i has label region=eu when i % 4 == 0, region=us when i % 4 == 2,
# none otherwise (so a quarter of the events are in eu).
# Both backends stay up for the whole run; only one is under wrk at a time.
# Needs: wrk, curl, python3 (apt-get install wrk curl); perf (linux-perf) for PERF.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install wrk curl)" >&2; exit 1; }
done
[ -n "${BASE:-}" ] || { echo "error: BASE=PATH (the base binary) is required, e.g. git worktree add /tmp/base a4be5ca && (cd /tmp/base && cargo build --release --locked -p ward)" >&2; exit 1; }
if [ -z "${WARD:-}" ]; then
  cargo build --release --locked -q -p ward
  WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
fi
[ -z "${PERF:-}" ] || command -v perf >/dev/null || { echo "error: PERF needs perf (apt-get install linux-perf)" >&2; exit 1; }
DUR="${DUR:-8s}"
RUNS="${RUNS:-3}"
B="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$B"; }
trap cleanup EXIT
printf 'ca: {cn: Bench CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n' > "$B/plan.yml"
"$WARD" pki bootstrap "$B/plan.yml" --dir "$B/tls" >/dev/null
CA="$B/tls/ca.pem"
PASS='bench password'

# The same data for both: checks and events as curl configs (one connection each).
python3 - "$B" <<'PY'
import json, sys
b = sys.argv[1]
with open(f"{b}/checks.jsonl", "w") as f:
    for i in range(1000):
        f.write(json.dumps({"type": "CheckConfig", "api_version": "core/v2",
            "metadata": {"name": f"check-{i:04d}", "namespace": "default", "labels": {"team": "ops" if i % 2 else "web"}},
            "spec": {"command": f"check-cpu.rb -w 75 -c {90 + i % 10}", "interval": 60, "subscriptions": ["linux", f"rack-{i % 20}"],
                     "handlers": ["slack"], "publish": False, "timeout": 10}}) + "\n")
with open(f"{b}/events.jsonl", "w") as f:
    for e in range(1000):
        region = {0: "eu", 2: "us"}.get(e % 4)
        md = {"name": f"host-{e:04d}", "namespace": "default"}
        if region:
            md["labels"] = {"region": region}
        for c in range(10):
            f.write(json.dumps({"entity": {"entity_class": "agent", "metadata": md, "subscriptions": ["linux"]},
                "check": {"metadata": {"name": f"check-{c:02d}", "namespace": "default"}, "status": (e + c) % 3,
                          "output": "CPU OK: 12 percent", "interval": 60, "executed": 1796630400, "issued": 1796630400}}) + "\n")
PY
curl_cfg() { # url token file → a curl config POSTing every line of file
  python3 - "$1" "$2" "$3" "$CA" <<'PY'
import json, sys
url, token, path, ca = sys.argv[1:5]
for i, line in enumerate(open(path)):
    if i:
        print("next")
    print(f'url = "{url}"\ncacert = "{ca}"\nheader = "Authorization: Bearer {token}"\nheader = "Content-Type: application/json"\n'
          f'silent\noutput = "/dev/null"\nwrite-out = "%{{http_code}}\\n"\ndata = {json.dumps(line.strip())}')
PY
}
post_all() { # url token file what
  local codes; codes=$(curl -K <(curl_cfg "$1" "$2" "$3") | sort | uniq -c)
  if echo "$codes" | awk '$2 !~ /^2/ {bad=1} END {exit !bad}'; then echo "error: POSTing $4: $codes" >&2; exit 1; fi
}
api() { # port token method path [body] → the body; fails on non-2xx
  local args=(-sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $2" -X "$3")
  [ $# -lt 5 ] || args+=(-H "Content-Type: application/json" --data "$5")
  curl "${args[@]}" "https://localhost:$1$4"
}
login() { # port user → an access token
  curl -sS --fail --cacert "$CA" -u "$2:$PASS" "https://localhost:$1/auth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# Starts `binary` as backend `name` (base or new) with its data; sets PORT_<name>, PID_<name>.
start() { # name binary
  local n=$1 bin=$2 wp ap dp pid
  wp=$(free_port); ap=$(free_port); dp=$(free_port)
  "$bin" backend init --state-dir "$B/$n" --cluster-admin-username admin --cluster-admin-password "$PASS" >/dev/null
  "$bin" backend start --state-dir "$B/$n" --api-listen-address "127.0.0.1:$wp" --agent-host 127.0.0.1 --agent-port "$ap" \
    --dashboard-host 127.0.0.1 --dashboard-port "$dp" --cert-file "$B/tls/localhost.pem" --key-file "$B/tls/localhost-key.pem" \
    --log-level error >"$B/$n.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 100); do curl -s --cacert "$CA" "https://localhost:$wp/health" >/dev/null && break; sleep 0.1; done
  local t; t=$(login "$wp" admin)
  post_all "https://localhost:$wp/api/core/v2/namespaces/default/checks" "$t" "$B/checks.jsonl" "checks to $n"
  post_all "https://localhost:$wp/api/core/v2/namespaces/default/events" "$t" "$B/events.jsonl" "events to $n"
  if [ "$n" = base ]; then
    # The base has no RoleBindings: its non-admin is a user in group view (read-only).
    api "$wp" "$t" POST /api/core/v2/users '{"username":"reader","password":"bench password","groups":["view"]}' >/dev/null
  else
    # A Role in default allowing get/list on checks and events, and RoleBindings in default:
    # eight for other subjects (so RBAC walks past them), then the reader's.
    api "$wp" "$t" POST /api/core/v2/users '{"username":"reader","password":"bench password","groups":["dev"]}' >/dev/null
    api "$wp" "$t" POST /api/core/v2/namespaces/default/roles \
      '{"type":"Role","api_version":"core/v2","metadata":{"name":"list-checks-events","namespace":"default"},"spec":{"rules":[{"verbs":["get","list"],"resources":["checks","events"]}]}}' >/dev/null
    for i in 1 2 3 4 5 6 7 8; do
      api "$wp" "$t" POST /api/core/v2/namespaces/default/rolebindings \
        '{"type":"RoleBinding","api_version":"core/v2","metadata":{"name":"a-other-'$i'","namespace":"default"},"spec":{"subjects":[{"type":"User","name":"someone-'$i'"},{"type":"Group","name":"team-'$i'"}],"role_ref":{"type":"Role","name":"list-checks-events"}}}' >/dev/null
    done
    api "$wp" "$t" POST /api/core/v2/namespaces/default/rolebindings \
      '{"type":"RoleBinding","api_version":"core/v2","metadata":{"name":"z-reader","namespace":"default"},"spec":{"subjects":[{"type":"User","name":"reader"}],"role_ref":{"type":"Role","name":"list-checks-events"}}}' >/dev/null
  fi
  printf -v "PORT_$n" %s "$wp"; printf -v "PID_$n" %s "$pid"
}
start base "$BASE"
start new "$WARD"

CHECKS=/api/core/v2/namespaces/default/checks
SEL='/api/core/v2/namespaces/default/events?labelSelector=region%20%3D%3D%20eu&limit=500'
UNSEL='/api/core/v2/namespaces/default/events?limit=500'
# Row → (path, user) per binary; "-" where the binary has no such measurement.
declare -A PATH_ USER_
PATH_[a,base]=$CHECKS; USER_[a,base]=admin; PATH_[a,new]=$CHECKS; USER_[a,new]=admin
PATH_[b,base]=$CHECKS; USER_[b,base]=reader; PATH_[b,new]=$CHECKS; USER_[b,new]=reader
PATH_[c,base]=$UNSEL; USER_[c,base]=admin; PATH_[c,new]=$SEL; USER_[c,new]=admin
PATH_[d,new]=$UNSEL; USER_[d,new]=admin
ROWS=(a b c d)

# The answers, checked before anything is measured.
check() { # binary row
  local port="PORT_$1"; port=${!port}
  local path=${PATH_[$2,$1]} user=${USER_[$2,$1]}
  api "$port" "$(login "$port" "$user")" GET "$path" | python3 -c '
import json, sys
binary, row = sys.argv[1:3]
items = json.load(sys.stdin)
assert len(items) == 500, f"{binary} row {row}: {len(items)} items, not 500"
if row == "c" and binary == "new":
    regions = {i["entity"]["metadata"].get("labels", {}).get("region") for i in items}
    assert regions == {"eu"}, f"selected events in regions {regions}"
' "$1" "$2"
}
for r in "${ROWS[@]}"; do for n in base new; do [ -z "${PATH_[$r,$n]:-}" ] || check "$n" "$r"; done; done
# The reader really is limited: the new binary refuses it handlers (403).
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(login "$PORT_new" reader)" \
  "https://localhost:$PORT_new/api/core/v2/namespaces/default/handlers")
[ "$code" = 403 ] || { echo "error: the reader got $code, not 403, for handlers on the new binary" >&2; exit 1; }

wrk_row() { # binary row [extra command run beside wrk, given wrk's PID]
  local port="PORT_$1"; port=${!port}
  local out; out=$(wrk --latency -t2 -c16 -d "$DUR" -H "Authorization: Bearer $(login "$port" "${USER_[$2,$1]}")" \
    "https://localhost:$port${PATH_[$2,$1]}" 2>&1)
  if echo "$out" | grep -q "Non-2xx"; then echo "error: wrk on $1 row $2 got error responses:" >&2; echo "$out" >&2; exit 1; fi
  echo "$1 $2 $(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
}
for run in $(seq "$RUNS"); do
  for r in "${ROWS[@]}"; do
    for n in base new; do
      [ -z "${PATH_[$r,$n]:-}" ] || wrk_row "$n" "$r" >> "$B/results"
    done
  done
  echo "round $run of $RUNS done" >&2
done

if [ -n "${PERF:-}" ]; then
  # The binary has no frame pointers, so call chains are unwound from DWARF CFI
  # (.eh_frame); -F 499 keeps the stack copies' cost down.
  mkdir -p "$PERF"
  for r in a b c; do
    perf record -q -F 499 --call-graph dwarf,32768 -o "$PERF/$r.data" -p "$PID_new" -- sleep "${DUR%s}" 2>/dev/null &
    perf_pid=$!
    sleep 0.2
    wrk_row new "$r" >/dev/null
    wait "$perf_pid"
    perf report -i "$PERF/$r.data" --no-children --sort symbol --stdio -g none 2>/dev/null > "$PERF/$r.self.txt"
    perf report -i "$PERF/$r.data" --children --sort symbol --stdio -g none 2>/dev/null > "$PERF/$r.children.txt"
    {
      echo "perf, row $r ($(awk '/^# Samples/ {print $3}' "$PERF/$r.self.txt") samples); self, then inclusive, under RBAC:"
      grep -E 'ward_backend::rbac::|ward_backend::api::access::permit' "$PERF/$r.self.txt" | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' || echo "  (no self samples)"
      grep -E 'ward_backend::rbac::|ward_backend::api::access::permit' "$PERF/$r.children.txt" | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' || echo "  (no samples)"
    } >&2
  done
fi

python3 - "$B/results" "$RUNS" <<'PY'
import statistics, sys
res = {}
for line in open(sys.argv[1]):
    n, r, rps, p99 = line.split()
    ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-2]) / 1000 if p99.endswith("us") else float(p99[:-1]) * 1000
    res.setdefault((r, n), []).append((float(rps), ms))
def cell(r, n):
    v = res.get((r, n))
    if not v:
        return "–", "–", None
    rps = [x for x, _ in v]; p99 = [y for _, y in v]
    med = statistics.median(rps)
    return (f"{med:,.0f} ({min(rps):,.0f}–{max(rps):,.0f})",
            f"{statistics.median(p99):.1f} ms ({min(p99):.1f}–{max(p99):.1f})", med)
names = {
    "a": ("a. GET …/checks (500 of 1,000, the default page), admin", ""),
    "b": ("b. GET …/checks, non-admin: base group view; new RoleBinding in default (9 there)", ""),
    "c": ("c. GET …/events, 500 of 10,000: base unselected `?limit=500`; new `labelSelector=region == eu`", ""),
    "d": ("d. GET …/events `?limit=500`, unselected (new; base as in c)", ""),
}
print(f"| HTTPS, wrk -t2 -c16, median of {sys.argv[2]} (range) | base req/s | base p99 | new req/s | new p99 | new / base |")
print("| --- | --- | --- | --- | --- | --- |")
for r in "abcd":
    b = cell(r if r != "d" else "c", "base")
    n = cell(r, "new")
    ratio = f"{n[2] / b[2]:.2f}x" if b[2] and n[2] else "–"
    print(f"| {names[r][0]} | {b[0]} | {b[1]} | {n[0]} | {n[1]} | {ratio} |")
PY
