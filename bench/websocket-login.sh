#!/usr/bin/env bash
# Logins per second over RFC 7395 WebSocket against TCP with STARTTLS, on one drupe server in one run: release
# build, $USERS accounts (cached like run-drupe.sh), drupe pinned to CPU $SERVER_CPU with its HTTPS listener on a
# free port, drupe-bench pinned to CPU $BENCH_CPU; each mechanism is measured over TCP, then WebSocket, then TCP
# again (so a drift during the run shows).
# Usage: bench/websocket-login.sh   (env: USERS=1000 CONCURRENCY=100 MECHANISMS="PLAIN SCRAM-SHA-256" NO_BUILD=1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
USERS="${USERS:-1000}"
CONCURRENCY="${CONCURRENCY:-100}"
MECHANISMS="${MECHANISMS:-PLAIN SCRAM-SHA-256}"

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release -p drupe-server -p drupe-bench
fi
DRUPE=target/release/drupe
BENCH=target/release/drupe-bench

migrations=$(sha256sum < crates/store/src/sqlite/migrations.rs | cut -c1-12)
cache="${DRUPE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drupe-bench}/accounts-$USERS-$migrations"
if [ ! -f "$cache/drupe.sqlite3" ]; then
    rm -rf "$cache.tmp"
    DRUPE_BIN="$DRUPE" bench/create-users.sh "$cache.tmp" "$USERS"
    rm -rf "$cache"
    mv "$cache.tmp" "$cache"
fi

data=$(mktemp -d -t drupe-ws-bench.XXXXXX)
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
cp -r "$cache/." "$data/"
env DRUPE_DATA_DIR="$data" DRUPE_C2S_LISTEN=127.0.0.1:0 DRUPE_C2S_LISTEN_TLS='' DRUPE_HTTP_LISTEN_TLS=127.0.0.1:0 \
    DRUPE_SERVER_CREATE_ADMIN=false DRUPE_LOG="${DRUPE_LOG:-warn}" \
    taskset -c "$SERVER_CPU" "$DRUPE" serve >"$data/server.out" 2>"$data/server.err" &
server_pid=$!
port="" https=""
for _ in $(seq 100); do
    port=$(sed -n 's/^drupe ready c2s=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$data/server.out")
    https=$(sed -n 's/^drupe ready .* https=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$data/server.out")
    [ -n "$port" ] && [ -n "$https" ] && break
    sleep 0.1
done
[ -n "$https" ] || { echo "drupe did not get ready:" >&2; cat "$data/server.err" >&2; exit 1; }

bench() {
    taskset -c "$BENCH_CPU" "$BENCH" --port "$port" --pid "$server_pid" --quiet "$@"
}
for mech in $MECHANISMS; do
    echo "## $mech: $USERS logins, $CONCURRENCY in flight: TCP (STARTTLS), WebSocket (wss), TCP again"
    bench --mechanism "$mech" login --users "$USERS" --concurrency "$CONCURRENCY"
    bench --mechanism "$mech" --websocket "wss://127.0.0.1:$https/xmpp-websocket" \
        login --users "$USERS" --concurrency "$CONCURRENCY"
    bench --mechanism "$mech" login --users "$USERS" --concurrency "$CONCURRENCY"
done
if grep -q -E 'WARN|ERROR' "$data/server.err"; then
    echo "## server warnings and errors (first 20)"
    grep -E 'WARN|ERROR' "$data/server.err" | head -20
fi
