#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), failing on any crash.
# Installs cargo-fuzz when missing. Needs the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
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
  cargo +nightly fuzz run -O "$target" "$scratch" "corpus/$target" -- \
    -dict=pgtls.dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 2>&1 | { grep -E "^(Done|==|stat::number_of_executed_units|SUMMARY|ERROR)" || true; } | tail -5
  rm -rf "$scratch"
done
echo "==> fuzzing done: no crash in $(echo $targets | wc -w) targets"
