#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one run, results in one table file.
#
#   scripts/bench.sh            # writes target/bench/results.md
#   scripts/bench.sh --update   # ... and replaces the results section of BENCHMARKS.md
#
# Needs valgrind (callgrind) and PostgreSQL 15 with pgbench (scripts/install-postgres.sh);
# pgbouncer (apt-get install pgbouncer) for the pgbouncer route of the resumption tables
# (skipped with a notice without it). The connections benchmark ends with those tables;
# `cargo bench --bench connections -- 300 resumption` runs them alone (after the handshake
# benchmark, whose callgrind files give the crypto floor).
# Environment: PGTLS_BENCH_CONNS (connections per client run, default 300),
# PGTLS_BENCH_MIB (throughput volume each way, default 256).
set -euo pipefail
cd "$(dirname "$0")/.."

conns=${PGTLS_BENCH_CONNS:-300}
mib=${PGTLS_BENCH_MIB:-256}
update=no
[[ ${1:-} == --update ]] && update=yes

command -v valgrind >/dev/null || { echo "bench.sh: valgrind is required (apt-get install valgrind)" >&2; exit 1; }

out=target/bench
mkdir -p "$out"
results="$out/results.md"

# One profile for everything (symbols for the profiles, same code as release).
cargo build --profile bench --examples --benches

{
  echo "Run of \`scripts/bench.sh\` at $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')."
  echo
  echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- $(rustc --version), rustls $(grep -A1 '^name = "rustls"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'), aws-lc-rs $(grep -A1 '^name = "aws-lc-rs"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'); $(openssl version | cut -d' ' -f1-2) for libpq; $(/usr/lib/postgresql/15/bin/postgres --version 2>/dev/null || echo 'PostgreSQL 15: not found')"
  echo
  cargo bench --profile bench --bench handshake
  cargo bench --profile bench --bench throughput -- "$mib"
  cargo bench --profile bench --bench memory
  cargo bench --profile bench --bench connections -- "$conns"
} | tee "$results"

if [[ $update == yes ]]; then
  python3 - "$results" <<'PY'
import sys, re
results = open(sys.argv[1]).read().strip()
path = "BENCHMARKS.md"
text = open(path).read()
begin, end = "<!-- results:begin -->", "<!-- results:end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + "\n" + results + "\n" + text[b:])
PY
  echo "bench.sh: BENCHMARKS.md updated from $results" >&2
fi
