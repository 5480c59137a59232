#!/usr/bin/env bash
# Runs every test of the Ward workspace on a fresh Debian machine: installs the real peers
# the tests talk to (openssl, cfssl, PostgreSQL 15, curl) when they are missing, checks formatting
# and lints, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
{ command -v cfssl >/dev/null 2>&1 && command -v cfssljson >/dev/null 2>&1; } || missing+=(golang-cfssl)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing test dependencies: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# One PostgreSQL template (initdb) for the whole run, removed at the end.
export WARD_TEST_RUN_ID="run-$$-$(date +%s)"
trap 'rm -rf "${TMPDIR:-/tmp}/ward-testkit-pg15-${WARD_TEST_RUN_ID}"' EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# TLS goes through rustls/aws-lc-rs only: no second crypto provider, no OpenSSL linked.
if cargo tree --workspace --locked -e normal -i ring 2>/dev/null | grep -q "^ring "; then
  echo "error: the ring crate is linked; use the aws-lc-rs features everywhere" >&2
  exit 1
fi
if cargo tree --workspace --locked -e normal -i openssl-sys 2>/dev/null | grep -q "^openssl-sys "; then
  echo "error: openssl-sys is linked into ward; TLS must go through rustls" >&2
  exit 1
fi
cargo test --workspace --locked
