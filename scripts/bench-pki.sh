#!/usr/bin/env bash
# Benchmarks `ward pki` against cfssl and openssl in one run, on this machine, and prints a
# Markdown report (medians and ratios) for BENCHMARKS.md.
#   ./scripts/bench-pki.sh > /tmp/bench.md
# Needs: hyperfine, cfssl, openssl (apt-get install hyperfine golang-cfssl openssl).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine cfssl openssl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install hyperfine golang-cfssl openssl)" >&2; exit 1; }
done
cargo build --release --locked -q
WARD="${CARGO_TARGET_DIR:-$PWD/target}/release/ward"
RUNS="${RUNS:-40}"
B="$(mktemp -d)"
trap 'rm -rf "$B"' EXIT
cd "$B"

# One CA per key type, made by Ward; all three tools sign with it.
"$WARD" pki init-ca --cn "Bench CA ecdsa" --key ecdsa-p256 --dir ecdsa-p256 >/dev/null
"$WARD" pki init-ca --cn "Bench CA rsa" --key rsa-2048 --dir rsa-2048 >/dev/null
echo '{"CN":"leaf.example.com","hosts":["leaf.example.com"],"key":{"algo":"ecdsa","size":256}}' > ecdsa-p256/csr.json
echo '{"CN":"leaf.example.com","hosts":["leaf.example.com"],"key":{"algo":"rsa","size":2048}}' > rsa-2048/csr.json

for alg in ecdsa-p256 rsa-2048; do
  case "$alg" in
    ecdsa-p256) newkey="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
    rsa-2048) newkey="-newkey rsa:2048" ;;
  esac
  (cd "$alg" && hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "../$alg.json" \
    -n ward "$WARD pki gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server csr.json >/dev/null" \
    -n cfssl "cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server csr.json >/dev/null 2>&1" \
    -n openssl "openssl req -x509 -new $newkey -nodes -keyout /dev/null -out /dev/null -CA ca.pem -CAkey ca-key.pem -days 180 -subj /CN=leaf.example.com -addext subjectAltName=DNS:leaf.example.com 2>/dev/null" \
    >/dev/null)
done

# Signing a CSR made elsewhere (`ward pki csr` on the host; the CA host signs): the three
# tools sign the same request.
for alg in ecdsa-p256 rsa-2048; do
  (cd "$alg" && "$WARD" pki csr --cn leaf.example.com --hosts leaf.example.com --key "$alg" --out leaf >/dev/null &&
    hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "../$alg-sign.json" \
    -n ward "$WARD pki sign -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server leaf.csr >/dev/null" \
    -n cfssl "cfssl sign -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server leaf.csr >/dev/null 2>&1" \
    -n openssl "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -days 180 -copy_extensions copy -out /dev/null 2>/dev/null" \
    >/dev/null)
done

printf 'ca: {cn: Fleet CA}\nagents:\n  - prefix: agent-\n    count: 10000\n' > fleet.yml
# Each run writes into a new directory and nothing is deleted until the end: deleting 30,000
# files just before creating 30,000 more makes ext4's inode allocator skip the recently
# freed inodes one by one, which measures the benchmark's own cleanup, not Ward.
mkdir runs
hyperfine --style none --runs 5 --export-json bootstrap.json \
  -n "ward bootstrap 10000" "$WARD pki bootstrap fleet.yml --dir \$(mktemp -u -p runs) >/dev/null 2>&1" >/dev/null
for d in runs/*; do test "$(ls "$d" | wc -l)" -eq 30004; done

python3 - "$RUNS" <<'PY'
import json, statistics, sys, subprocess
runs = sys.argv[1]
def med(path):
    return {r["command"]: statistics.median(r["times"]) for r in json.load(open(path))["results"]}
print("| leaf, whole process | ward | cfssl | openssl | cfssl / ward | openssl / ward |")
print("| --- | --- | --- | --- | --- | --- |")
ms = {}
for alg in ["ecdsa-p256", "rsa-2048"]:
    m = med(f"{alg}.json"); ms[alg] = m
    w, c, o = m["ward"], m["cfssl"], m["openssl"]
    print(f"| {alg} (median of {runs}) | {w*1e3:.1f} ms | {c*1e3:.1f} ms | {o*1e3:.1f} ms | {c/w:.2f}x | {o/w:.2f}x |")
print()
print("| sign a CSR, whole process | ward | cfssl | openssl | cfssl / ward | openssl / ward |")
print("| --- | --- | --- | --- | --- | --- |")
for alg in ["ecdsa-p256", "rsa-2048"]:
    m = med(f"{alg}-sign.json")
    w, c, o = m["ward"], m["cfssl"], m["openssl"]
    print(f"| {alg} (median of {runs}) | {w*1e3:.1f} ms | {c*1e3:.1f} ms | {o*1e3:.1f} ms | {c/w:.2f}x | {o/w:.2f}x |")
b = med("bootstrap.json")["ward bootstrap 10000"]
c = ms["ecdsa-p256"]["cfssl"] * 10000
print()
print("| 10,000 ECDSA agent certificates | ward pki bootstrap (median of 5) | cfssl, 10,000 × one leaf (extrapolated) | ratio |")
print("| --- | --- | --- | --- |")
print(f"| one run, CA + 30,000 files | {b:.2f} s | {c:.1f} s | {c/b:.0f}x |")
ver = lambda *a: subprocess.run(a, capture_output=True, text=True).stdout.strip().splitlines()[0]
print()
print(f"Tools: {ver('cfssl','version')}; {ver('openssl','version')}; {ver('hyperfine','--version')}; `nproc` = {subprocess.run(['nproc'],capture_output=True,text=True).stdout.strip()}.")
PY
