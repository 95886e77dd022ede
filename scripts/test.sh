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

mkdir -p target
echo "== cargo test"
cargo test --workspace --all-targets --locked 2>&1 | tee target/cargo-test.log
grep -E "^test result:" target/cargo-test.log | awk '
  { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
  END { printf "cargo: %d passed, %d failed\n", p, f }'

if [[ -d tests/js ]]; then
  echo "== JavaScript interop tests"
  cargo build --locked --bin nox-sync
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
