#!/usr/bin/env bash
# One entry point for every chore, used by the README and by CI alike.
#   scripts/dev.sh deps   install the system packages Keybridge builds and tests with (Debian/Ubuntu)
#   scripts/dev.sh demo   build, then start Keybridge on its demo default (the built-in simulator):
#                         the desktop app when there is a display, the headless broker otherwise
#   scripts/dev.sh ui     build the window's TypeScript into ui/dist (the app embeds it)
#   scripts/dev.sh test   formatting, lints and every test, as CI runs them
#   scripts/dev.sh windows  the Windows build, cross-compiled: lints, and the named pipe's tests under Wine
#   scripts/dev.sh bench  measure, and write docs/BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

APT_BUILD=(build-essential pkg-config file libssl-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev nodejs npm)
APT_TEST=(dbus dbus-x11 gnome-keyring libsecret-tools keyutils python3-pip util-linux
  xvfb xauth x11-utils webkit2gtk-driver at-spi2-core trayer xdotool imagemagick dunst
  gcc-mingw-w64-x86-64 wine64)
WINDOWS_TARGET=x86_64-pc-windows-gnu

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
  local missing=()
  for p in "${APT_BUILD[@]}" "${APT_TEST[@]}"; do
    case "$p" in nodejs | npm) command -v "$p" >/dev/null && continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust from your distribution or rustup first" >&2; exit 1; }
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # Node from the distribution only when there is none: a newer one may already be on PATH.
  # The official Python MCP SDK: a third-party MCP client for the end-to-end tests.
  python3 -c 'import mcp' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "mcp==1.30.0"
}

# `npm install` follows package-lock.json; `npm ci` would refuse the lock whenever the registry
# lacks some other platform's optional rollup binary, which nothing here needs.
npm_deps() {
  (cd ui && npm install --no-audit --no-fund)
}

ui() {
  npm_deps
  (cd ui && npm run build)
}

demo() {
  deps
  ui
  cargo build --release -p keybridge-cli -p keybridge-mcp -p keybridge-app --features keybridge-app/custom-protocol
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    echo "Starting the Keybridge app on the built-in QuantConnect simulator (quit from its tray menu)."
    exec ./target/release/keybridge-app --demo
  fi
  echo "No display: starting the headless Keybridge broker on the built-in QuantConnect simulator (Ctrl-C to stop)."
  echo "In another terminal: ./target/release/keybridge status | client list | audit tail --follow"
  echo "With a display, the same command starts the desktop app."
  exec ./target/release/keybridge serve --demo
}

test_all() {
  deps
  # The app embeds ui/dist at compile time, so the window is built before any cargo step.
  ui
  (cd ui && npm test)
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
  # The end-to-end tests run the real binaries: build them first.
  cargo build --workspace --bins
  cargo test --workspace
  windows
}

# Windows cannot run here, so: the broker, bridge, CLI, host and desktop app must build and lint
# clean for it; under Wine, in a prefix of the build's own, run the endpoint's tests (the named
# pipe, its owner and access list, who is at the other end), the vault's (a round trip through
# Credential Manager), and the demo end to end (broker, CLI and bridge over the pipe).
windows() {
  if ! rustup target list --installed | grep -qx "$WINDOWS_TARGET"; then
    rustup target add "$WINDOWS_TARGET" || {
      echo "cannot add Rust's standard library for $WINDOWS_TARGET (rustup target add failed above): the Windows checks need it" >&2
      exit 1
    }
  fi
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-broker -p keybridge-mcp -p keybridge-cli -p keybridge-host -p keybridge-app \
    --lib --bins -- -D warnings
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-endpoint -p keybridge-vault --all-targets -- -D warnings
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-cli --test windows_demo -- -D warnings
  local wine
  wine="$(command -v wine64 || echo /usr/lib/wine/wine64)"
  export WINEPREFIX="${CARGO_TARGET_DIR:-$PWD/target}/wine" WINEDEBUG=-all
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$(dirname "$WINEPREFIX")"
    "$wine" wineboot --init >/dev/null 2>&1 || true
    wineserver -w 2>/dev/null || true
    [ -d "$WINEPREFIX/drive_c/windows/system32" ] || { echo "wineboot could not make $WINEPREFIX" >&2; exit 1; }
  fi
  # Wine 8 lacks bcryptprimitives.dll, which Rust's standard library imports on Windows.
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c -ladvapi32
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" cargo test --target "$WINDOWS_TARGET" \
    -p keybridge-endpoint -p keybridge-vault
  # The whole path on Windows: the demo broker on its pipe, the CLI, and the bridge beside it.
  cargo build --target "$WINDOWS_TARGET" -p keybridge-mcp
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" cargo test --target "$WINDOWS_TARGET" \
    -p keybridge-cli --test windows_demo
}

bench() {
  deps
  cargo build --release -p keybridge-cli -p keybridge-mcp -p keybridge-bench
  ./target/release/keybridge-bench
}

case "${1:-}" in
  deps) deps ;;
  demo) demo ;;
  ui) ui ;;
  test) test_all ;;
  windows) deps && ui && windows ;;
  bench) bench ;;
  *) echo "usage: scripts/dev.sh deps|demo|ui|test|windows|bench" >&2; exit 2 ;;
esac
