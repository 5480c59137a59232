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
command -v jq >/dev/null 2>&1 || missing+=(jq)
# update-ca-certificates, for `ward pki trust` against Debian's real store tool.
PATH="$PATH:/usr/sbin" command -v update-ca-certificates >/dev/null 2>&1 || missing+=(ca-certificates)
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
# clippy's incompatible_msrv (denied in [workspace.lints]) refuses std APIs newer than the
# workspace's rust-version.
cargo clippy --workspace --all-targets --locked -- -D warnings

# rust-version: no locked dependency built for this host may need a newer Rust than the
# workspace declares (cargo itself only compares against the compiler in use).
declared=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
host=$(rustc -vV | sed -n 's/^host: //p')
needed=$(cargo metadata --format-version 1 --locked --filter-platform "$host" |
  jq -r '.packages[] | select(.rust_version != null) | "\(.rust_version) \(.name) \(.version)"' |
  sort -V | tail -n 1)
if [ -z "$declared" ] || [ "$(printf '%s\n%s\n' "${needed%% *}" "$declared" | sort -V | tail -n 1)" != "$declared" ]; then
  echo "error: rust-version in Cargo.toml is '${declared}' but ${needed#* } needs Rust ${needed%% *}; raise rust-version (and check the code with clippy)" >&2
  exit 1
fi
for manifest in crates/*/Cargo.toml; do
  grep -q '^rust-version.workspace = true$' "$manifest" || {
    echo "error: $manifest does not take the workspace's rust-version; add 'rust-version.workspace = true' to [package]" >&2
    exit 1
  }
done

# Licenses, banned crates (ring, OpenSSL), sources, duplicate versions (warnings), and
# advisories when the RustSec database can be fetched: policy in deny.toml.
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "installing cargo-deny (cargo install --locked cargo-deny; several minutes)"
  cargo install --locked cargo-deny
fi
if cargo deny fetch db >/dev/null 2>&1; then
  cargo deny --locked check
else
  echo "warning: the RustSec advisory database cannot be fetched from github.com: advisories NOT checked; licenses, bans and sources are" >&2
  cargo deny --locked check licenses bans sources
fi
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
