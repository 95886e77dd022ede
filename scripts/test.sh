#!/usr/bin/env bash
# The whole Nox Sync test suite: installs what the machine lacks, then runs every test.
#   ./scripts/test.sh
# Needs no configuration: tests start their own PostgreSQL cluster from the system's binaries
# (or use DATABASE_URL when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
need_deb() { # need_deb <command-or-path> <debian package>
  if ! command -v "$1" >/dev/null 2>&1 && [[ ! -x $1 ]]; then
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    echo "installing $2"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null
  fi
}

# PostgreSQL server binaries (initdb/postgres) for the embedded cluster.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  need_deb /usr/lib/postgresql/15/bin/initdb postgresql
fi
need_deb node nodejs
need_deb npm npm
# Headless browser for tests/js/browser.test.mjs (the canvas page, driven by playwright-core).
need_deb chromium chromium

mkdir -p target
echo "== cargo test"
cargo test --workspace --all-targets --locked 2>&1 | tee target/cargo-test.log
grep -E "^test result:" target/cargo-test.log | awk '
  { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
  END { printf "cargo: %d passed, %d failed\n", p, f }'

if [[ -d tests/js ]]; then
  # Stock yjs + y-websocket clients against a real nox-sync process (tests/js/interop.test.mjs).
  echo "== JavaScript interop tests"
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if (( node_major < 20 )); then
    echo "tests/js needs Node.js >= 20 (node:test flags --test-concurrency/--test-timeout); found $(node --version)" >&2
    exit 1
  fi
  cargo build --locked --bin nox-sync
  export NOX_SYNC_BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/nox-sync
  js_rc=0
  rm -f target/js-test.tap
  (
    cd tests/js
    if [[ -f package-lock.json ]]; then
      npm ci --no-audit --no-fund --loglevel=error
    else
      npm install --no-audit --no-fund --loglevel=error
    fi
    # Human-readable progress on stdout, TAP in a file for the counts below.
    npm test -- --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination=../../target/js-test.tap
  ) || js_rc=$?
  js_pass=$(awk '/^# pass /{print $3}' target/js-test.tap 2>/dev/null | tail -n1)
  js_fail=$(awk '/^# fail /{print $3}' target/js-test.tap 2>/dev/null | tail -n1)
  js_pass=${js_pass:-0}
  js_fail=${js_fail:-0}
  # A non-zero exit with no failed test counted (npm ci failed, the runner crashed, a hook failed,
  # a test was cancelled) still counts as one failure.
  if (( js_rc != 0 && js_fail == 0 )); then js_fail=1; fi
  echo "js: ${js_pass} passed, ${js_fail} failed"
  { grep -E "^test result:" target/cargo-test.log || true; } | awk -v jp="$js_pass" -v jf="$js_fail" '
    { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
    END { printf "total: %d passed, %d failed\n", p + jp, f + jf }'
  if (( js_rc != 0 )); then
    echo "JavaScript interop tests failed (exit $js_rc)" >&2
    exit "$js_rc"
  fi
fi
