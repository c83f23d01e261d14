#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), failing on any crash.
# Installs cargo-fuzz, and the OpenSSL headers verifier_openssl links against, when
# missing. Needs the nightly toolchain.
#
# `-O -a`: optimised, with debug assertions ON (cargo-fuzz turns them off under -O
# unless -a is given; the fuzz bodies rely on assertions).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "==> installing libssl-dev and pkg-config (verifier_openssl)"
  apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
targets=$(cargo +nightly fuzz list)
for target in $targets; do
  echo "==> fuzzing $target for ${seconds}s"
  mkdir -p "corpus/$target"
  # New inputs go to a scratch corpus so the committed one stays small.
  scratch=$(mktemp -d)
  cargo +nightly fuzz run -O -a "$target" "$scratch" "corpus/$target" -- \
    -dict=pgtls.dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 2>&1 | { grep -E "^(Done|==|stat::number_of_executed_units|SUMMARY|ERROR)" || true; } | tail -5
  rm -rf "$scratch"
done
echo "==> fuzzing done: no crash in $(echo $targets | wc -w) targets"
