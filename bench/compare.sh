#!/usr/bin/env bash
# Side by side: the same drupe-bench scenarios against ejabberd, Prosody and drupe, one server after the other, on
# this machine. Installs ejabberd and Prosody from Debian if they are missing, configures each one in a temporary
# directory for the same service as drupe's defaults, and starts each as a plain process (no systemd):
#   domain localhost, accounts user0..user<ACCOUNTS-1> with one password, STARTTLS required with one self-signed
#   certificate (made here with openssl), SASL PLAIN over TLS checked against SCRAM-SHA-1 stored keys at 4,096
#   iterations, offline storage and message archive (XEP-0313) on, listening on 127.0.0.1 only. Storage: drupe its
#   own SQLite, Prosody SQLite (its flat files collapse under archive load), ejabberd after $EJABBERD_DB:
#     mnesia  (default) ejabberd's default storage (`default_db: mnesia`), the baseline ejabberd's own figures use;
#             accounts imported after the start with one `ejabberdctl import_piefxis` (XEP-0227 file with SCRAM keys)
#     sqlite  `sql_type: sqlite` with ejabberd's default `sql_pool_size: 1`: each archived or offline message is its
#             own transaction on one connection, which caps it far below its Mnesia figures
#   The metadata line of $JSON_OUT records it as "ejabberd_db"; after its runs a note records how many messages
#   ejabberd's archive holds ("archived": two per delivered message, the sender's and the recipient's copy).
# Each server runs pinned to CPU $SERVER_CPU and drupe-bench to CPU $BENCH_CPU. Scenarios, per server:
#   idle   $IDLE_STEPS sessions (ascending, one account each, held 5 s): RSS against sessions
#   login  $LOGIN_USERS logins, $LOGIN_CONCURRENCY in flight, for each of $LOGIN_MECHANISMS
#   chat   $CHAT_USERS users at each of $CHAT_RATES msgs/s for $CHAT_DURATION s
# Results go to $JSON_OUT (one JSON object per line, each tagged with "server"); then bench/charts.py draws
# docs/bench/*.svg and rewrites the "Side by side" section of docs/benchmarks.md (UPDATE_DOCS=0 to skip that).
# Runs as root (apt-get, and each peer runs as its Debian system user). About 6-10 minutes with the defaults.
#
# Quick check with tiny numbers:
#   ACCOUNTS=50 IDLE_STEPS="20 50" LOGIN_USERS=50 CHAT_USERS=20 CHAT_RATES=100 CHAT_DURATION=2 \
#     UPDATE_DOCS=0 JSON_OUT=/tmp/cmp.jsonl bash bench/compare.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVERS="${SERVERS:-ejabberd prosody drupe}"
SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
PASSWORD="${PASSWORD:-secret}"
IDLE_STEPS="${IDLE_STEPS:-500 1000 2000}"
LOGIN_USERS="${LOGIN_USERS:-2000}"
LOGIN_CONCURRENCY="${LOGIN_CONCURRENCY:-200}"
LOGIN_MECHANISMS="${LOGIN_MECHANISMS:-PLAIN SCRAM-SHA-1}"
CHAT_USERS="${CHAT_USERS:-200}"
CHAT_RATES="${CHAT_RATES:-1000 2000}"
# Per server, e.g. CHAT_RATES_drupe="5000 10000": rates far past a peer's capacity only queue up behind it.
CHAT_DURATION="${CHAT_DURATION:-10}"
JSON_OUT="${JSON_OUT:-docs/bench/side-by-side.jsonl}"
UPDATE_DOCS="${UPDATE_DOCS:-1}"
EJABBERD_DB="${EJABBERD_DB:-mnesia}"
# Upper bound of one drupe-bench run, seconds (a stuck server must not stall the whole comparison).
RUN_TIMEOUT="${RUN_TIMEOUT:-150}"
ITERATIONS=4096
max() { printf '%s\n' "$@" | sort -n | tail -1; }
ACCOUNTS="${ACCOUNTS:-$(max 2000 $IDLE_STEPS "$LOGIN_USERS" "$CHAT_USERS")}"

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

case $EJABBERD_DB in mnesia | sqlite) ;; *) die "EJABBERD_DB=$EJABBERD_DB: mnesia or sqlite" ;; esac
[ "$(id -u)" = 0 ] || die "run as root: it installs packages and runs each peer as its Debian system user"
for n in $IDLE_STEPS "$LOGIN_USERS" "$CHAT_USERS"; do
    [ "$n" -le "$ACCOUNTS" ] || die "ACCOUNTS=$ACCOUNTS is fewer than $n"
done
# 2 sockets per session on the loopback (both ends in this machine's limits); the peers inherit the limit.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $(($(max $IDLE_STEPS) + 500)) ] ||
    die "ulimit -n is $(ulimit -n): too low for $(max $IDLE_STEPS) sessions"

wants() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- packages --------------------------------------------------------------------------------------------------
packages=()
wants ejabberd && packages+=(ejabberd)
wants ejabberd && [ "$EJABBERD_DB" = sqlite ] && packages+=(erlang-p1-sqlite3)
wants prosody && packages+=(prosody lua-dbi-sqlite3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    for p in "${missing[@]}"; do
        cand=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
        [ -n "$cand" ] && [ "$cand" != "(none)" ] || { apt-get update -qq; break; }
    done
    for p in "${missing[@]}"; do
        cand=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
        [ -n "$cand" ] && [ "$cand" != "(none)" ] || die "package $p is not installable here"
    done
    # The packages' maintainer scripts would start their services (and take ports 5222, 5269, 5280, 4369):
    # forbid that for the install if nothing forbids it yet.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# A packaged service that did start anyway would compete for the CPU (and ports): refuse to measure beside it.
if ss -ltnpH | grep -E '"(beam\.smp|epmd|lua5\.[0-9]|prosody)"' >/dev/null; then
    ss -ltnp | grep -E 'beam\.smp|epmd|lua5|prosody' >&2
    die "an ejabberd, epmd or Prosody is already listening (the Debian service?): stop it first"
fi
ejabberd_version=$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || true)
prosody_version=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || true)

# ---- drupe -----------------------------------------------------------------------------------------------------
if [ "${NO_BUILD:-0}" != 1 ] && wants drupe; then
    cargo build --release -q -p drupe-server -p drupe-bench
fi
DRUPE=target/release/drupe
BENCH=target/release/drupe-bench
[ -x "$BENCH" ] || die "$BENCH not found: cargo build --release -p drupe-bench"

# ---- shared state: temp dir, certificate, output --------------------------------------------------------------
work=$(mktemp -d -t drupe-compare.XXXXXX)
chmod 755 "$work"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -n "${launcher_pid:-}" ]; then
        wait "$launcher_pid" 2>/dev/null || true
        launcher_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

mkdir "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
cat "$work/tls/cert.pem" "$work/tls/key.pem" >"$work/tls/both.pem"
chmod 755 "$work/tls"
chmod 644 "$work/tls/"*.pem # a throwaway key, readable by the peers' system users

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# fill TEMPLATE OUT NAME=value...: replaces each @NAME@.
fill() {
    local template=$1 out=$2
    shift 2
    local args=()
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$template" >"$out"
    ! grep -n '@[A-Z_]*@' "$out" || die "unfilled placeholder in $out"
}
# listener_pid PORT: the process listening on 127.0.0.1:PORT.
listener_pid() {
    ss -ltnpH "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}
# wait_listening PORT SECONDS: sets server_pid to the listener's pid.
wait_listening() {
    local pid=""
    for _ in $(seq $(($2 * 10))); do
        pid=$(listener_pid "$1")
        [ -n "$pid" ] && { server_pid=$pid; return 0; }
        kill -0 "$launcher_pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
# Counted before this run rewrites its own outputs (docs/bench/side-by-side.jsonl is tracked).
dirty=$(git status --porcelain 2>/dev/null | grep -c . || true)
mkdir -p "$(dirname "$JSON_OUT")"
: >"$JSON_OUT"
python3 - "$JSON_OUT" <<EOF
import json, sys
meta = {"scenario": "meta", "date": "$(date -u +%Y-%m-%dT%H:%MZ)", "drupe_commit": "$commit",
        "drupe_dirty_files": int("$dirty" or 0), "ejabberd": "$ejabberd_version", "ejabberd_db": "$EJABBERD_DB", "prosody": "$prosody_version",
        "cpus": $(nproc --all), "mem_gib": round($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576),
        "loadavg_start": "$(cut -d' ' -f1-3 /proc/loadavg)", "server_cpu": $SERVER_CPU, "bench_cpu": $BENCH_CPU,
        "accounts": $ACCOUNTS, "idle_steps": "$IDLE_STEPS", "login_users": $LOGIN_USERS,
        "login_concurrency": $LOGIN_CONCURRENCY, "chat_users": $CHAT_USERS, "chat_rates": "$CHAT_RATES",
        "chat_duration": $CHAT_DURATION, "kernel": "$(uname -r)"}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF

# note SERVER KEY VALUE: one extra fact about a server's run (account creation time, ...), as its own line.
note() {
    python3 -c 'import json, sys; v = sys.argv[3]
for number in (int, float):
    try:
        v = number(v)
        break
    except ValueError:
        pass
open(sys.argv[4], "a").write(json.dumps({"scenario": "note", "server": sys.argv[1], sys.argv[2]: v}) + "\n")' \
        "$1" "$2" "$3" "$JSON_OUT"
}

# bench SERVER ARGS...: one drupe-bench run against the running server; its JSON goes to $JSON_OUT with "server".
bench() {
    local name=$1
    shift
    local one="$work/one.json"
    rm -f "$one"
    if ! timeout -k 5 "$RUN_TIMEOUT" taskset -c "$BENCH_CPU" "$BENCH" --port "$port" --pid "$server_pid" \
        --password "$PASSWORD" --quiet --json-out "$one" "$@" >"$work/bench.out" 2>&1; then
        log "drupe-bench $* against $name failed:"
        tail -5 "$work/bench.out" >&2
    fi
    if [ -s "$one" ]; then
        sed "s/^{/{\"server\":\"$name\",\"args\":\"$*\",/" "$one" >>"$JSON_OUT"
        python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).read())
keys = ["logins_per_sec", "server_kb_per_session", "server_rss_held_kb", "login_p99_ms", "delivered_per_sec",
        "undelivered", "latency_p50_ms", "latency_p99_ms", "server_cpu_pct", "failed", "login_failures"]
print("  " + r["scenario"] + ": " + ", ".join(f"{k}={r[k]}" for k in keys if r.get(k) is not None)
      + "".join("\n  WARNING: " + w for w in r["warnings"]))' "$one" >&2
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "$name exited during the run"
        return 1
    fi
}

# run_scenarios SERVER: the same list for every server, on a freshly started one (idle first: RSS baseline).
run_scenarios() {
    local name=$1
    log "$name: pid $server_pid on 127.0.0.1:$port, $(grep -c . /proc/"$server_pid"/task/*/comm 2>/dev/null |
        wc -l) threads, CPUs $(sed -n 's/^Cpus_allowed_list:\s*//p' /proc/"$server_pid"/status)"
    # Warm-up, not recorded, the same for every server: a few logins and a little chat, so that code loaded or
    # compiled on first use (Erlang modules, Lua, SQL statements) and one-time table setup count in neither the
    # RSS baseline nor the first measured run; then wait until the RSS stops moving (a VM may still be settling).
    timeout -k 5 60 taskset -c "$BENCH_CPU" "$BENCH" --port "$port" --password "$PASSWORD" --quiet \
        login --users 20 --concurrency 5 >/dev/null 2>&1 || log "$name: warm-up login failed"
    timeout -k 5 60 taskset -c "$BENCH_CPU" "$BENCH" --port "$port" --password "$PASSWORD" --quiet \
        chat --users 20 --rate 50 --duration 2 --drain 2 >/dev/null 2>&1 || log "$name: warm-up chat failed"
    local rss prev=0
    for _ in $(seq 15); do
        sleep 1
        rss=$(sed -n 's/^VmRSS:\s*\([0-9]*\).*/\1/p' /proc/"$server_pid"/status)
        [ $((rss > prev ? rss - prev : prev - rss)) -lt $((rss / 200 + 64)) ] && break
        prev=$rss
    done
    for n in $IDLE_STEPS; do
        log "$name: idle $n sessions"
        bench "$name" idle --sessions "$n" --concurrency 200 --hold 5 || return 1
    done
    for mech in $LOGIN_MECHANISMS; do
        log "$name: login $LOGIN_USERS users, $LOGIN_CONCURRENCY in flight, $mech"
        bench "$name" --mechanism "$mech" login --users "$LOGIN_USERS" --concurrency "$LOGIN_CONCURRENCY" ||
            return 1
    done
    local rates_var="CHAT_RATES_$name"
    for rate in ${!rates_var:-$CHAT_RATES}; do
        log "$name: chat $CHAT_USERS users, $rate msgs/s for $CHAT_DURATION s"
        bench "$name" chat --users "$CHAT_USERS" --rate "$rate" --duration "$CHAT_DURATION" --drain 5 || return 1
    done
}

# as_user USER DIR CMD...: CMD as USER with HOME=DIR and this shell's limits. Not runuser/su: their PAM session
# resets the open files limit to 1024, and the peers then refuse connections ("too many open files").
as_user() {
    local user=$1 home=$2
    shift 2
    setpriv --reuid="$user" --regid="$user" --init-groups env HOME="$home" USER="$user" "$@"
}

elapsed_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# ---- ejabberd --------------------------------------------------------------------------------------------------
run_ejabberd() {
    local dir="$work/ejabberd" t t_accounts archived
    mkdir -p "$dir/spool"
    port=$(free_port)
    local dist_port
    dist_port=$(free_port)
    cat bench/peers/ejabberd.yml.in "bench/peers/ejabberd-$EJABBERD_DB.yml.in" >"$dir/ejabberd.yml.in"
    fill "$dir/ejabberd.yml.in" "$dir/ejabberd.yml" DIR="$dir/spool" PORT="$port" CERT="$work/tls/both.pem"
    # The Erlang distribution port (ejabberdctl talks to the node over it): fixed, on 127.0.0.1, no epmd.
    printf 'ERLANG_NODE=ejabberd-bench@localhost\nINET_DIST_INTERFACE=127.0.0.1\nERL_DIST_PORT=%s\n' \
        "$dist_port" >"$dir/ejabberdctl.cfg"
    cp /etc/ejabberd/inetrc "$dir/" 2>/dev/null || true
    # ejctl ARGS...: one ejabberdctl command against this node (each call boots a small Erlang node, ~1 s).
    ejctl() {
        (cd "$dir/spool" && as_user ejabberd "$dir" /usr/sbin/ejabberdctl --config-dir "$dir" \
            --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" --logs "$dir/spool" \
            --spool "$dir/spool" "$@")
    }
    t=$(date +%s.%N)
    if [ "$EJABBERD_DB" = sqlite ]; then
        python3 bench/peers/accounts.py ejabberd "$dir/spool/ejabberd.db" "$ACCOUNTS" --password "$PASSWORD" \
            --iterations "$ITERATIONS" --schema /usr/share/ejabberd/sql/lite.sql
    else
        # Mnesia lives in the running node: write the keys into a XEP-0227 file now, import it once it runs.
        python3 bench/peers/accounts.py ejabberd-piefxis "$dir/accounts.xml" "$ACCOUNTS" --password "$PASSWORD" \
            --iterations "$ITERATIONS"
    fi
    t_accounts=$(elapsed_since "$t")
    chown -R ejabberd: "$dir"
    t=$(date +%s.%N)
    (cd "$dir/spool" && as_user ejabberd "$dir" taskset -c "$SERVER_CPU" /usr/sbin/ejabberdctl \
        --config-dir "$dir" --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" \
        --logs "$dir/spool" --spool "$dir/spool" foreground >"$dir/server.out" 2>&1) &
    launcher_pid=$!
    if ! wait_listening "$port" 60; then
        tail -20 "$dir/server.out" "$dir/spool/ejabberd.log" >&2
        die "ejabberd did not start"
    fi
    note ejabberd start_s "$(elapsed_since "$t")"
    if [ "$EJABBERD_DB" = mnesia ]; then
        t=$(date +%s.%N)
        ejctl --no-timeout import_piefxis "$dir/accounts.xml" >&2 || die "ejabberd: import_piefxis failed"
        t_accounts=$(awk -v a="$t_accounts" -v b="$(elapsed_since "$t")" 'BEGIN { printf "%.1f", a + b }')
        local n
        n=$(ejctl registered_users localhost | grep -c .) || true
        [ "$n" = "$ACCOUNTS" ] || die "ejabberd: $n accounts after the import, not $ACCOUNTS"
    fi
    note ejabberd accounts_s "$t_accounts"
    log "ejabberd ($EJABBERD_DB): $ACCOUNTS accounts in $t_accounts s"
    run_scenarios ejabberd || true
    note ejabberd loadavg_end "$(cut -d" " -f1-3 /proc/loadavg)"
    if [ "$EJABBERD_DB" = mnesia ]; then
        archived=$(ejctl mnesia_table_info archive_msg 2>/dev/null | tr -d ' \n' |
            sed -n 's/.*{size,\([0-9]*\)}.*/\1/p') || true
    else
        archived=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM archive").fetchone()[0])' \
            "$dir/spool/ejabberd.db" 2>/dev/null) || true
    fi
    if [ -n "$archived" ]; then
        note ejabberd archived "$archived"
        log "ejabberd: $archived messages in its archive"
    fi
    grep -E '\[(error|critical)\]' "$dir/spool/ejabberd.log" 2>/dev/null | head -5 >&2 || true
    stop_server
    rm -rf "$dir"
}

# ---- Prosody ---------------------------------------------------------------------------------------------------
run_prosody() {
    local dir="$work/prosody" t
    mkdir -p "$dir/data"
    port=$(free_port)
    fill bench/peers/prosody.cfg.lua.in "$dir/prosody.cfg.lua" DIR="$dir" PORT="$port" \
        CERT_DIR="$work/tls" CERT_CRT="$work/tls/cert.pem" CERT_KEY="$work/tls/key.pem"
    # `prosodyctl register` costs ~0.1 s per account; writing the rows in its format takes ~1.5 ms each.
    t=$(date +%s.%N)
    python3 bench/peers/accounts.py prosody "$dir/prosody.sqlite" "$ACCOUNTS" --password "$PASSWORD" \
        --iterations "$ITERATIONS"
    note prosody accounts_s "$(elapsed_since "$t")"
    chown -R prosody: "$dir"
    t=$(date +%s.%N)
    (cd "$dir" && as_user prosody "$dir" taskset -c "$SERVER_CPU" prosody --config "$dir/prosody.cfg.lua" -F \
        >"$dir/server.out" 2>&1) &
    launcher_pid=$!
    if ! wait_listening "$port" 30; then
        tail -20 "$dir/server.out" "$dir/prosody.log" >&2
        die "Prosody did not start"
    fi
    note prosody start_s "$(elapsed_since "$t")"
    run_scenarios prosody || true
    note prosody loadavg_end "$(cut -d" " -f1-3 /proc/loadavg)"
    grep -E '\berror\b' "$dir/prosody.log" 2>/dev/null | head -5 >&2 || true
    stop_server
    rm -rf "$dir"
}

# ---- drupe -----------------------------------------------------------------------------------------------------
run_drupe() {
    local dir="$work/drupe" t cache migrations
    # Accounts: made once with bench/create-users.sh and cached, as bench/run-drupe.sh does.
    migrations=$(sha256sum <crates/store/src/sqlite/migrations.rs 2>/dev/null | cut -c1-12)
    cache="${DRUPE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drupe-bench}/accounts-$ACCOUNTS-$migrations"
    if [ "$PASSWORD" != secret ]; then cache="$cache-$(printf %s "$PASSWORD" | sha256sum | cut -c1-8)"; fi
    t=$(date +%s.%N)
    if [ ! -f "$cache/drupe.sqlite3" ]; then
        rm -rf "$cache.tmp"
        DRUPE_BIN="$DRUPE" BENCH_PASSWORD="$PASSWORD" bench/create-users.sh "$cache.tmp" "$ACCOUNTS"
        rm -rf "$cache"
        mv "$cache.tmp" "$cache"
        note drupe accounts_s "$(elapsed_since "$t")"
    fi
    mkdir -p "$dir"
    cp -r "$cache/." "$dir/"
    port=$(free_port)
    t=$(date +%s.%N)
    env DRUPE_DATA_DIR="$dir" DRUPE_C2S_LISTEN="127.0.0.1:$port" DRUPE_C2S_LISTEN_TLS='' DRUPE_HTTP_LISTEN_TLS='' \
        DRUPE_TLS_CERT="$work/tls/cert.pem" DRUPE_TLS_KEY="$work/tls/key.pem" DRUPE_SERVER_CREATE_ADMIN=false \
        DRUPE_C2S_MAX_CONNECTIONS=$(($(max $IDLE_STEPS) + 1000)) DRUPE_LOG="${DRUPE_LOG:-warn}" \
        taskset -c "$SERVER_CPU" "$DRUPE" serve >"$dir/server.out" 2>"$dir/server.err" &
    launcher_pid=$!
    if ! wait_listening "$port" 30; then
        tail -20 "$dir/server.err" >&2
        die "drupe did not start"
    fi
    note drupe start_s "$(elapsed_since "$t")"
    run_scenarios drupe || true
    note drupe loadavg_end "$(cut -d" " -f1-3 /proc/loadavg)"
    grep -E 'ERROR' "$dir/server.err" | head -5 >&2 || true
    stop_server
    rm -rf "$dir"
}

start=$(date +%s)
log "servers: $SERVERS; results in $JSON_OUT"
for s in $SERVERS; do
    case $s in
        ejabberd) run_ejabberd ;;
        prosody) run_prosody ;;
        drupe) run_drupe ;;
        *) die "unknown server $s (ejabberd, prosody, drupe)" ;;
    esac
done
log "all runs done in $(($(date +%s) - start)) s"

if [ "$UPDATE_DOCS" = 1 ]; then
    python3 bench/charts.py "$JSON_OUT" --svg-dir docs/bench --markdown docs/benchmarks.md
    log "wrote docs/bench/*.svg and the \"Side by side\" section of docs/benchmarks.md"
fi
