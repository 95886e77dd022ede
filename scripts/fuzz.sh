#!/usr/bin/env bash
# Fuzzes the wire decoders and the room's update path (fuzz/fuzz_targets/) for N seconds each.
#   ./scripts/fuzz.sh [seconds per target, default 60]
# Needs cargo-fuzz (installed here if missing). Only stable Rust is assumed: RUSTC_BOOTSTRAP=1 lets
# it use the nightly-only flags cargo-fuzz passes (-Zsanitizer). The committed seeds in
# fuzz/corpus/<target>/ are read only; what a run discovers goes to fuzz/corpus-new/<target>/
# (git-ignored) and crashes to fuzz/artifacts/<target>/. Exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
targets=(ws_frame hocuspocus_frame room_update)
export RUSTC_BOOTSTRAP=1
# yrs reserves capacity for a declared element count with `try_reserve` and refuses the update when
# that fails; a 100-byte update can ask for ~96 GiB that way. Under AddressSanitizer a failed
# allocation aborts instead of returning null, so let it return null like the system allocator does.
# Touched memory stays bounded by -rss_limit_mb; -malloc_limit_mb is raised so a large but
# untouched reservation is not reported on its own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
# -O: optimised *without* debug assertions, i.e. the code `cargo build --release` ships. yrs has
# debug assertions and overflow checks reachable from wire input (a client id over 53 bits, a clock
# that overflows u32): in debug builds they panic, wire::decode_frame catches the panic and refuses
# the frame; release builds mask / wrap instead. Fuzzing the release semantics checks what runs.
echo "== building the fuzz targets"
cargo fuzz build -O
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus-new/$target"
  echo "== $target: ${seconds}s"
  # -timeout: one input running longer than 10 s is reported as a hang.
  # -rss_limit_mb: an input that makes the process use more than 2 GiB is reported too.
  if ! cargo fuzz run -O "$target" "corpus-new/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1048576 -print_final_stats=1; then
    echo "!! $target failed: see fuzz/artifacts/$target/ (replay: cargo fuzz run -O $target <file>)" >&2
    status=1
  fi
done
exit $status
