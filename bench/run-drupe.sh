#!/usr/bin/env bash
# Benchmarks drupe on this machine: builds release, starts target/release/drupe on 127.0.0.1 (a free port, a
# temporary data directory) pinned to CPU $SERVER_CPU, and runs drupe-bench pinned to CPU $BENCH_CPU:
#   idle   $IDLE_SESSIONS sessions spread over $ACCOUNTS accounts (distinct resources), held 5 s
#   login  $LOGIN_USERS logins, $LOGIN_CONCURRENCY in flight, PLAIN then SCRAM-SHA-256
#   chat   $CHAT_USERS users at each of $CHAT_RATES msgs/s for $CHAT_DURATION s
#   lanying (only with LANYING=1): 4000 users, ramp 60 s, a message every 10 s for 60 s
#   chat again at $NO_ARCHIVE_RATES msgs/s on a second server with the message archive disabled
# Prints each result table; with JSON_OUT=FILE also appends one JSON object per run to FILE.
# Accounts are made once with bench/create-users.sh and kept in $DRUPE_BENCH_CACHE (keyed by count and by the
# store's migrations), then copied into each run's data directory. About 3.5 minutes (plus ~15 s the first time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
LANYING="${LANYING:-0}"
if [ "$LANYING" = 1 ]; then ACCOUNTS="${ACCOUNTS:-4000}"; else ACCOUNTS="${ACCOUNTS:-2000}"; fi
IDLE_SESSIONS="${IDLE_SESSIONS:-10000}"
LOGIN_USERS="${LOGIN_USERS:-2000}"
LOGIN_CONCURRENCY="${LOGIN_CONCURRENCY:-200}"
CHAT_USERS="${CHAT_USERS:-200}"
CHAT_RATES="${CHAT_RATES:-1000 2000 5000}"
CHAT_DURATION="${CHAT_DURATION:-10}"
NO_ARCHIVE_RATES="${NO_ARCHIVE_RATES-5000 10000}"
JSON_OUT="${JSON_OUT:-}"

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release -p drupe-server -p drupe-bench
fi
DRUPE=target/release/drupe
BENCH=target/release/drupe-bench

# Each side holds one socket per session.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_SESSIONS + 500)) ]; then
    echo "ulimit -n is $(ulimit -n): lowering IDLE_SESSIONS to fit" >&2
    IDLE_SESSIONS=$(($(ulimit -n) - 500))
fi

migrations=$(cat crates/store/src/sqlite/migrations.rs 2>/dev/null | sha256sum | cut -c1-12)
cache="${DRUPE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drupe-bench}/accounts-$ACCOUNTS-$migrations"
if [ ! -f "$cache/drupe.sqlite3" ]; then
    rm -rf "$cache.tmp"
    DRUPE_BIN="$DRUPE" bench/create-users.sh "$cache.tmp" "$ACCOUNTS"
    rm -rf "$cache"
    mv "$cache.tmp" "$cache"
fi

data=$(mktemp -d -t drupe-bench.XXXXXX)
server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$data"' EXIT

# start_server NAME [VAR=value...]: a fresh copy of the accounts, drupe pinned to $SERVER_CPU; sets $port.
start_server() {
    local dir="$data/$1"
    shift
    mkdir -p "$dir"
    cp -r "$cache/." "$dir/"
    env DRUPE_DATA_DIR="$dir" DRUPE_C2S_LISTEN=127.0.0.1:0 DRUPE_C2S_LISTEN_TLS='' DRUPE_HTTP_LISTEN_TLS='' DRUPE_SERVER_CREATE_ADMIN=false \
        DRUPE_C2S_MAX_CONNECTIONS=$((IDLE_SESSIONS + 1000)) DRUPE_LOG="${DRUPE_LOG:-warn}" "$@" \
        taskset -c "$SERVER_CPU" "$DRUPE" serve >"$dir/server.out" 2>"$dir/server.err" &
    server_pid=$!
    server_err="$dir/server.err"
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^drupe ready c2s=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$dir/server.out")
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "drupe did not get ready:" >&2
    cat "$server_err" >&2
    server_pid=""
    return 1
}

show_server_warnings() {
    if grep -q -E 'WARN|ERROR' "$server_err"; then
        echo "## server warnings and errors (first 20)"
        grep -E 'WARN|ERROR' "$server_err" | head -20
    fi
}

start_server main
echo "# drupe $(git rev-parse --short HEAD 2>/dev/null || echo '?') on 127.0.0.1:$port (pid $server_pid, CPU $SERVER_CPU);" \
    "drupe-bench on CPU $BENCH_CPU; load average $(cut -d" " -f1-3 /proc/loadavg); $(nproc --all) CPUs," \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"

bench() {
    taskset -c "$BENCH_CPU" "$BENCH" --port "$port" --pid "$server_pid" ${JSON_OUT:+--json-out "$JSON_OUT"} "$@" ||
        echo "drupe-bench $* failed" >&2
    echo
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "drupe exited during the run:" >&2
        tail -20 "$server_err" >&2
        exit 1
    fi
}

echo "## idle: $IDLE_SESSIONS sessions over $ACCOUNTS accounts"
bench idle --sessions "$IDLE_SESSIONS" --accounts "$ACCOUNTS" --concurrency 200 --hold 5
echo "## login: $LOGIN_USERS users, $LOGIN_CONCURRENCY in flight"
bench login --users "$LOGIN_USERS" --concurrency "$LOGIN_CONCURRENCY"
bench --mechanism SCRAM-SHA-256 login --users "$LOGIN_USERS" --concurrency "$LOGIN_CONCURRENCY"
for rate in $CHAT_RATES; do
    echo "## chat: $CHAT_USERS users, $rate msgs/s for $CHAT_DURATION s"
    bench chat --users "$CHAT_USERS" --rate "$rate" --duration "$CHAT_DURATION" --drain 5
done
if [ "$LANYING" = 1 ]; then
    echo "## lanying: 4000 users, ramp 60 s, every 10 s for 60 s"
    bench lanying --users 4000 --ramp 60 --interval 10 --duration 60
fi
show_server_warnings
stop_server

# The same chat load with the message archive (XEP-0313) off: what archiving costs per message.
if [ -n "$NO_ARCHIVE_RATES" ]; then
    if start_server no-archive DRUPE_ARCHIVE_ENABLED=false; then
        for rate in $NO_ARCHIVE_RATES; do
            echo "## chat, archive disabled: $CHAT_USERS users, $rate msgs/s for $CHAT_DURATION s"
            bench chat --users "$CHAT_USERS" --rate "$rate" --duration "$CHAT_DURATION" --drain 5
        done
        show_server_warnings
        stop_server
    fi
fi
