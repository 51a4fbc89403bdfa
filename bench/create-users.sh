#!/usr/bin/env bash
# Creates accounts user0..user<N-1> (pattern and password configurable) in a drupe data directory with the
# `drupe user add` CLI, several processes at a time. Accounts that already exist are left alone.
#
# Usage: bench/create-users.sh DATA_DIR COUNT
# Env:   DRUPE_BIN (default target/release/drupe), BENCH_USER_PATTERN (default 'user{}'),
#        BENCH_PASSWORD (default 'secret'), JOBS (parallel processes, default 2 per CPU).
# Each account costs two PBKDF2 derivations (SCRAM-SHA-1 and -256 at the configured 4096 iterations) and one
# SQLite commit in a fresh process: about 5 ms of CPU, so 2,000 accounts take ~15 s on two cores.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR COUNT" >&2
    exit 2
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DRUPE_DATA_DIR="$1"
count="$2"
export DRUPE_BIN="${DRUPE_BIN:-target/release/drupe}"
default_pattern='user{}'
export BENCH_USER_PATTERN="${BENCH_USER_PATTERN:-$default_pattern}"
export BENCH_PASSWORD="${BENCH_PASSWORD:-secret}"
export DRUPE_SERVER_CREATE_ADMIN=false
jobs="${JOBS:-$(($(nproc) * 2))}"
test -x "$DRUPE_BIN" || { echo "$DRUPE_BIN not found: build it first (cargo build --release -p drupe-server)" >&2; exit 1; }
mkdir -p "$DRUPE_DATA_DIR"

add_users() {
    for i in "$@"; do
        name="${BENCH_USER_PATTERN//\{\}/$i}"
        if ! out=$(printf '%s\n' "$BENCH_PASSWORD" | "$DRUPE_BIN" user add "$name" 2>&1); then
            case "$out" in
                *"already exists"*) ;;
                *) echo "drupe user add $name: $out" >&2; exit 1 ;;
            esac
        fi
    done
}
export -f add_users

start=$(date +%s.%N)
# The first account alone: the process that creates the file switches it to WAL and migrates it, which parallel
# first opens could find locked (SQLite does not wait on a busy journal-mode switch).
add_users 0
seq 1 $((count - 1)) | xargs -n 50 -P "$jobs" bash -c 'add_users "$@"' _
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$count" -v d="$DRUPE_DATA_DIR" 'BEGIN { printf "created %d accounts in %s in %.1f s\n", n, d, e - s }' >&2
