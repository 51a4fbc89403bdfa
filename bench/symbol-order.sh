#!/usr/bin/env bash
# Regenerates crates/server/symbol-order.txt, the order in which the linker lays out the drupe binary's functions
# (crates/server/build.rs passes it to lld). Runs the release binary under callgrind (valgrind, from Debian): a
# start on an existing data directory and 5 s idle make the first profile; 20 PLAIN and 10 SCRAM logins, 20 users
# chatting for 5 s and a 10-occupant room with its archive on make the second. bench/symbol-order.py turns the two
# into the file. Everything listens on 127.0.0.1 with port 0 and stops by itself; about 2 minutes.
#
# Run it after changes that rename or add many functions (dependency upgrades, big refactors), then rebuild and
# compare idle RSS (`drupe-bench idle`, or /proc/PID/status of a fresh `drupe serve`). Symbol names that no longer
# exist are skipped by the linker, so an old file degrades idle memory, never correctness. The names carry hashes
# that change with the Rust toolchain's version and with a crate's dependencies: `bench/symbol-order.sh --check`
# reports how many of the listed functions the current release binary still has.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = --check ]; then
    cargo build --release -p drupe-server
    listed=$(grep -v '^#' crates/server/symbol-order.txt | sort -u)
    found=$(nm --defined-only target/release/drupe | awk '{print $3}' | sort -u | comm -12 - <(echo "$listed") | wc -l)
    echo "symbol-order.txt: $found of $(echo "$listed" | wc -l) listed functions are in target/release/drupe"
    exit 0
fi

command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
cargo build --release -p drupe-server -p drupe-bench
drupe=$PWD/target/release/drupe
bench=$PWD/target/release/drupe-bench
work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export DRUPE_DATA_DIR=$work/data DRUPE_C2S_LISTEN=127.0.0.1:0 DRUPE_C2S_LISTEN_TLS='' \
    DRUPE_HTTP_LISTEN_TLS=127.0.0.1:0 DRUPE_LOG=warn
# A first start makes the database, the certificate and the admin; the profiled start is the second, as every
# start after the first.
"$drupe" serve >"$work/first.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q 'drupe ready' "$work/first.out" && break; sleep 0.1; done
kill "$server"; wait "$server" 2>/dev/null || true
server=
DRUPE_BIN=$drupe bench/create-users.sh "$DRUPE_DATA_DIR" 20 >/dev/null

valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/profile" "$drupe" serve \
    >"$work/out" 2>"$work/valgrind" &
server=$!
port=
for _ in $(seq 600); do
    port=$(sed -n 's/^drupe ready c2s=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "drupe did not start under valgrind:" >&2; cat "$work/valgrind" >&2; exit 1; }
sleep 5
callgrind_control --dump=startup "$server" >/dev/null
sleep 1
common=(--port "$port" --quiet --timeout 120)
"$bench" login "${common[@]}" --users 20 --concurrency 5 >/dev/null
"$bench" login "${common[@]}" --users 10 --concurrency 5 --mechanism SCRAM-SHA-1 >/dev/null
"$bench" login "${common[@]}" --users 10 --concurrency 5 --mechanism SCRAM-SHA-256 >/dev/null
"$bench" chat "${common[@]}" --users 20 --rate 50 --duration 5 --drain 2 >/dev/null
"$bench" room "${common[@]}" --occupants 10 --rate 5 --duration 3 --drain 2 --concurrency 5 --archive >/dev/null
callgrind_control --dump=load "$server" >/dev/null
sleep 1
kill -9 "$server"; wait "$server" 2>/dev/null || true
server=

startup=$(ls "$work"/profile.* | sort -t. -k2 -n | head -1)
load=$(ls "$work"/profile.* | sort -t. -k2 -n | tail -1)
python3 bench/symbol-order.py "$drupe" "$startup" "$load" >crates/server/symbol-order.txt
echo "crates/server/symbol-order.txt: $(grep -vc '^#' crates/server/symbol-order.txt) functions"
