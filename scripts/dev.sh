#!/usr/bin/env bash
# One entry point for every chore, used by the README and by CI alike.
#   scripts/dev.sh deps   install the system packages Keybridge builds and tests with (Debian/Ubuntu)
#   scripts/dev.sh demo   build, then start Keybridge on its demo default (the built-in simulator)
#   scripts/dev.sh test   formatting, lints and every test, as CI runs them
#   scripts/dev.sh bench  measure, and write docs/BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

APT_BUILD=(build-essential pkg-config file libssl-dev libdbus-1-dev)
APT_TEST=(dbus gnome-keyring libsecret-tools keyutils python3-pip util-linux)

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
  local missing=()
  for p in "${APT_BUILD[@]}" "${APT_TEST[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust from your distribution or rustup first" >&2; exit 1; }
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # The official Python MCP SDK: a third-party MCP client for the end-to-end tests.
  python3 -c 'import mcp' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "mcp==1.30.0"
}

demo() {
  deps
  cargo build --release -p keybridge-cli -p keybridge-mcp
  echo "Starting the Keybridge broker on the built-in QuantConnect simulator (Ctrl-C to stop)."
  echo "In another terminal: ./target/release/keybridge status | client list | audit tail --follow"
  exec ./target/release/keybridge serve --demo
}

test_all() {
  deps
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
  # The end-to-end tests run the real binaries: build them first.
  cargo build --workspace --bins
  cargo test --workspace
}

bench() {
  deps
  cargo build --release -p keybridge-cli -p keybridge-mcp -p keybridge-bench
  ./target/release/keybridge-bench
}

case "${1:-}" in
  deps) deps ;;
  demo) demo ;;
  test) test_all ;;
  bench) bench ;;
  *) echo "usage: scripts/dev.sh deps|demo|test|bench" >&2; exit 2 ;;
esac
