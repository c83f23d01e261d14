#!/usr/bin/env bash
# pgtls on wasm32-unknown-unknown (README.md, "wasm32"):
#   1. installs what is missing: the rustup target, Debian's clang (ring's C parts for
#      wasm32) and wasm-bindgen-test-runner at the exact wasm-bindgen version of
#      wasm-tests/Cargo.lock;
#   2. builds the library as a user would, with no extra flags:
#        cargo build --target wasm32-unknown-unknown --no-default-features --features ring
#   3. runs the tests of wasm-tests/ inside wasm under node (wasm-bindgen-test).
# With --size it instead builds wasm-tests/ as a release cdylib optimised for size and
# prints the `.wasm` sizes (before and after wasm-bindgen, which removes the JS-binding
# sections and the function names). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
target=wasm32-unknown-unknown

if ! rustup target list --installed | grep -qx "$target"; then
  echo "==> rustup target add $target"
  rustup target add "$target"
fi
if ! command -v clang >/dev/null; then
  echo "==> apt-get install clang (ring's C code for wasm32)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang
fi

bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' wasm-tests/Cargo.lock)
if [ -z "$bindgen_version" ]; then
  echo "wasm-tests/Cargo.lock has no wasm-bindgen" >&2
  exit 1
fi
installed=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$installed" != "$bindgen_version" ]; then
  echo "==> cargo install wasm-bindgen-cli $bindgen_version (found: ${installed:-none})"
  # --locked first; its lock file can name a version the registry no longer serves, and
  # then the newest compatible dependencies are the only way to build it.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

if [ "${1:-}" = "--size" ]; then
  echo "==> release .wasm of the core (wasm-tests: opt-level=z, lto, strip)"
  (cd wasm-tests && cargo build --release --target "$target" --lib)
  raw="$CARGO_TARGET_DIR/$target/release/pgtls_wasm_tests.wasm"
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$out" "$raw"
  printf '%-40s %9d bytes\n' "cargo output (pgtls_wasm_tests.wasm)" "$(stat -c %s "$raw")"
  printf '%-40s %9d bytes\n' "after wasm-bindgen (_bg.wasm)" "$(stat -c %s "$out"/pgtls_wasm_tests_bg.wasm)"
  printf '%-40s %9d bytes\n' "after wasm-bindgen, gzip -9" "$(gzip -9c "$out"/pgtls_wasm_tests_bg.wasm | wc -c)"
  exit 0
fi

echo "==> cargo build --target $target --no-default-features --features ring"
cargo build --target "$target" --no-default-features --features ring

echo "==> wasm tests under node (wasm-tests/)"
cd wasm-tests
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target "$target" --tests
