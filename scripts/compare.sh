#!/usr/bin/env bash
# Side-by-side comparison of eventmux's example servers with the servers a user would
# otherwise pick (issue #7), each pair under the same load generator:
#
#   mini_redis  vs redis-server  redis-benchmark -t ping,set,get,incr,mset -c 50, -P 1 and -P 16
#   http_hello  vs nginx         wrk -t1 -c50 GET /
#   http_hello --tls vs nginx ssl  the same over TLS 1.3, one certificate for both
#   echo        vs tokio_echo    loadgen, 50 connections, 64 B messages, depth 1 and 16
#   echo        vs mio_echo      (the same runs)
#   memcached   vs memcached -t 1  memcaslap -c 50, its default get/set mix
#
# The eventmux servers are the examples; the peers tokio_echo and mio_echo, and the
# loadgen load generator, are binaries of the loadgen crate (loadgen/).
#
# Servers run on CPU 0 and load generators on CPU 1 (taskset), everything on loopback.
# Every measurement alternates between the servers of a row, round after round (the order
# rotates), and the median round is reported. Each run also notes the share of a CPU the
# server, the load generator and other programs used: a run disturbed by other programs is
# repeated (twice at most), and a server well below 100% means the load generator set the
# pace. Prints one table (eventmux req/s, peer req/s, eventmux/peer, and the same per
# second of server CPU time: what a server costs matters as much as its speed) and writes
# target/compare/results.md (with every run and its CPU shares) and
# target/compare/results.svg (a bar chart of the ratios).
#
#   scripts/compare.sh                             # about 14 minutes
#   COMPARE_SECS=3 COMPARE_ROUNDS=3 scripts/compare.sh
#
# The ratio of a row is the median, over the rounds, of eventmux's run divided by the
# peer's run of the same round. The runs of one round follow each other, so they share
# whatever the machine was doing then; on a shared virtual machine, whose speed drifts by
# 10-20% from minute to minute, pairing them is what keeps that drift out of the ratio.
#
# COMPARE_SECS (5): seconds per measured run; COMPARE_ROUNDS (5): runs per server and row;
# COMPARE_ONLY (redis,http,https,echo,memcached): sections to run; COMPARE_BUSY_POLL_US (unset): passed to
# mini_redis and http_hello as --busy-poll-us (they do not busy-poll by default, like the
# peers; `COMPARE_BUSY_POLL_US=200` shows what 200 us of it is worth). Missing tools (redis-server,
# redis-benchmark, nginx, wrk, taskset) are installed with apt-get; a section whose tools
# cannot be had is skipped with a note. Logs of every server and tool are in target/compare.
set -euo pipefail

SECS=${COMPARE_SECS:-5}
ROUNDS=${COMPARE_ROUNDS:-5}
ONLY=${COMPARE_ONLY:-redis,http,https,echo,memcached}
BUSY_POLL_US=${COMPARE_BUSY_POLL_US:-}
SERVER_CPU=0
CLIENT_CPU=1
CONNS=50

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/compare
EXAMPLES=$ROOT/target/release/examples
BINS=$ROOT/target/release # the loadgen crate's binaries
RUNS=$OUT/runs.tsv # case, server, req/s, CPU of server, client, others, round: one per run
ROWS=$OUT/rows.tsv # label, case, eventmux server, peer server: one line per table row

case $SECS in '' | *[!0-9]*) echo "COMPARE_SECS must be a whole number of seconds" >&2 && exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "COMPARE_ROUNDS must be a positive number" >&2 && exit 2 ;; esac
case $BUSY_POLL_US in *[!0-9]*) echo "COMPARE_BUSY_POLL_US must be a whole number of microseconds" >&2 && exit 2 ;; esac
# Extra arguments for the eventmux servers that busy-poll (mini_redis, http_hello).
BUSY_POLL_ARGS=()
BUSY_POLL_NOTE="no busy polling (the examples' default)"
if [ -n "$BUSY_POLL_US" ]; then
    BUSY_POLL_ARGS=(--busy-poll-us "$BUSY_POLL_US")
    BUSY_POLL_NOTE="mini_redis and http_hello busy-poll $BUSY_POLL_US us"
    [ "$BUSY_POLL_US" = 0 ] && BUSY_POLL_NOTE="no busy polling"
fi

mkdir -p "$OUT"
: >"$RUNS"
: >"$ROWS"

say() { echo "compare: $*" >&2; }
# The helpers compare.sh and scale.sh share (tools, ports, CPU accounting).
source "$ROOT/scripts/bench_lib.sh"

# ----- servers and clean-up --------------------------------------------------------------

PIDS=()

stop_servers() {
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

POLICY_RC=
cleanup() {
    stop_servers
    if [ -n "$POLICY_RC" ]; then rm -f "$POLICY_RC"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----- tools -----------------------------------------------------------------------------

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
APT_UPDATED=

# ----- pinning ---------------------------------------------------------------------------

PIN_SERVER=()
PIN_CLIENT=()
PINNING="unpinned"
if need taskset util-linux && taskset -c "$SERVER_CPU" true 2>/dev/null &&
    taskset -c "$CLIENT_CPU" true 2>/dev/null; then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_CLIENT=(taskset -c "$CLIENT_CPU")
    PINNING="servers on CPU $SERVER_CPU, load generators on CPU $CLIENT_CPU"
else
    say "note: cannot pin to CPUs $SERVER_CPU and $CLIENT_CPU; running unpinned"
fi
# A load generator facing a hung server gives up (and its row shows no number).
CLIENT=(timeout $((SECS * 20 + 60)) ${PIN_CLIENT[@]+"${PIN_CLIENT[@]}"})

# ----- helpers ---------------------------------------------------------------------------

# record CASE SERVER REQS: one measured run of round $ROUND, with the CPU shares of the
# last `measure`.
ROUND=0
record() {
    if ! [[ $3 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        say "note: no result for $2 in '$1' (see the logs in $OUT)"
        return 0
    fi
    local server client other
    read -r _ _ server client other <<<"$CPU"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$server" "$client" "$other" "$ROUND" >>"$RUNS"
}

# row LABEL CASE EVENTMUX_SERVER PEER_SERVER: a line of the final table.
row() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$ROWS"
}

# ----- redis -----------------------------------------------------------------------------

REDIS_TESTS=ping,set,get,incr,mset

# redis_bench PORT REQUESTS PIPELINE [TESTS]: "TEST<TAB>req/s" per test (TESTS: all of
# REDIS_TESTS).
redis_bench() {
    "${CLIENT[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -n "$2" -P "$3" -c "$CONNS" \
        -t "${4:-$REDIS_TESTS}" --csv 2>>"$OUT/redis-benchmark.log" |
        tr -d '"\r' | awk -F, '$1 != "test" && NF >= 2 && $2 + 0 > 0 { print $1 "\t" $2 }'
}

redis_section() {
    if ! { need redis-server redis-server && need redis-benchmark redis-tools; }; then
        say "skipping mini_redis vs redis-server"
        return 0
    fi
    start_server "$EXAMPLES/mini_redis" ${BUSY_POLL_ARGS[@]+"${BUSY_POLL_ARGS[@]}"}
    local mini_port=${ADDR##*:}
    local port
    port=$(free_port)
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly no --daemonize no --dir "$OUT" --logfile "$OUT/redis-server.log" \
        >/dev/null 2>&1 &
    PIDS+=($!)
    PID[redis-server]=$!
    wait_port "$port" $!
    local pipeline
    for pipeline in 1 16; do
        # redis-benchmark counts requests, not seconds: a pilot run on redis-server (which
        # also warms both up) sizes the runs to about COMPARE_SECS per test.
        local pilot=$((pipeline == 1 ? 20000 : 200000)) rate requests
        redis_bench "$mini_port" "$pilot" "$pipeline" >/dev/null || true
        rate=$(redis_bench "$port" "$pilot" "$pipeline" | cut -f2 | sort -g |
            awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }') || true
        requests=$(awk -v r="${rate:-0}" -v s="$SECS" 'BEGIN { n = int(r * s); print (n < 10000 ? 10000 : n) }')
        local round server server_port test reqs one
        for ((round = 0; round < ROUNDS; round++)); do
            ROUND=$round
            say "round $((round + 1))/$ROUNDS: redis-benchmark -P $pipeline -n $requests, each test on both servers"
            # One test at a time on both servers, so the two runs a ratio pairs are seconds
            # apart, not a whole series of tests. ("ping" makes two rows, inline and bulk.)
            for one in ${REDIS_TESTS//,/ }; do
                for server in $(rotate "$round" mini_redis redis-server); do
                    server_port=$([ "$server" = mini_redis ] && echo "$mini_port" || echo "$port")
                    measure "${PID[$server]}" redis_bench "$server_port" "$requests" "$pipeline" "$one"
                    while IFS=$'\t' read -r test reqs; do
                        record "redis $test -P $pipeline" "$server" "$reqs"
                    done <"$OUT/last.out"
                done
            done
        done
        local test
        for test in PING_INLINE PING_MBULK SET GET INCR "MSET (10 keys)"; do
            row "mini_redis / redis-server: $test -P $pipeline" "redis $test -P $pipeline" \
                mini_redis redis-server
        done
    done
    stop_servers
}

# ----- memcached -------------------------------------------------------------------------

# memcaslap_run PORT: memcaslap's operations per second against 127.0.0.1:PORT for
# COMPARE_SECS seconds, 50 connections on one thread, its default 9:1 get/set mix.
memcaslap_run() {
    "${CLIENT[@]}" memcaslap -s "127.0.0.1:$1" -t "${SECS}s" -c "$CONNS" -T 1 \
        2>>"$OUT/memcaslap.log" | sed -n 's/.*TPS: \([0-9]*\).*/\1/p' | tail -1
}

memcached_section() {
    if ! { need memcached memcached && need memcaslap libmemcached-tools; }; then
        say "skipping memcached vs memcached"
        return 0
    fi
    start_server "$EXAMPLES/memcached"
    local example_port=${ADDR##*:}
    local port
    port=$(free_port)
    local as_user=()
    [ "$(id -u)" = 0 ] && as_user=(-u nobody) # memcached will not run as root
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 \
        ${as_user[@]+"${as_user[@]}"} >"$OUT/memcached-real.log" 2>&1 &
    PIDS+=($!)
    PID[memcached-real]=$!
    wait_port "$port" $!
    local round server server_port
    for ((round = 0; round < ROUNDS; round++)); do
        ROUND=$round
        say "round $((round + 1))/$ROUNDS: memcaslap -c $CONNS, ${SECS} s on each server"
        for server in $(rotate "$round" memcached memcached-real); do
            server_port=$([ "$server" = memcached ] && echo "$example_port" || echo "$port")
            measure "${PID[$server]}" memcaslap_run "$server_port"
            record "memcached get/set" "$server" "$(cat "$OUT/last.out")"
        done
    done
    row "memcached example / memcached -t 1: get/set 9:1 (memcaslap -c$CONNS)" \
        "memcached get/set" memcached memcached-real
    stop_servers
}

# ----- http ------------------------------------------------------------------------------

# http_check PORT: the body of GET / must be "Hello, world!".
http_check() {
    local reply
    reply=$(exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && timeout 5 cat <&3) || true
    if [[ $reply != *$'\r\n\r\nHello, world!'* ]]; then
        say "note: GET / on port $1 did not answer \"Hello, world!\":"
        printf '%s\n' "$reply" >&2
    fi
}

# wrk_run PORT SECONDS: requests per second.
# wrk_run PORT SECS [SCHEME]: wrk's requests per second for GET / (SCHEME: http).
wrk_run() {
    local log=$OUT/wrk.log
    "${CLIENT[@]}" wrk -t1 -c"$CONNS" -d"$2"s "${3:-http}://127.0.0.1:$1/" >"$log.last" 2>&1 || true
    cat "$log.last" >>"$log"
    if grep -q -e 'Non-2xx' -e 'Socket errors' "$log.last"; then
        say "note: wrk saw errors on port $1: $(grep -e 'Non-2xx' -e 'Socket errors' "$log.last" | tr -s ' ')"
    fi
    awk '/^Requests\/sec:/ { print $2 }' "$log.last"
}

# start_nginx NAME PORT [SERVER_LINE...]: nginx answering GET / with "Hello, world!" on
# 127.0.0.1:PORT, one worker, pinned like the other servers, with extra lines in its
# server block (ssl: the listen parameter and certificate lines), under $OUT/NAME;
# sets PID[NAME]. keepalive_requests: nginx closes a keep-alive connection after 1000
# requests by default and wrk reconnects; http_hello never does, so the limit is lifted.
start_nginx() {
    local name=$1 port=$2 dir=$OUT/$1 listen_extra=
    shift 2
    mkdir -p "$dir"
    local lines=("$@")
    if [ ${#lines[@]} -gt 0 ]; then listen_extra=" ssl"; fi
    {
        cat <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events {
    worker_connections 1024;
}
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port$listen_extra;
EOF
        local line
        for line in ${lines[@]+"${lines[@]}"}; do printf '        %s\n' "$line"; done
        cat <<EOF
        location / {
            return 200 "Hello, world!\n";
        }
    }
}
EOF
    } >"$dir/nginx.conf"
    local early_log=()
    if nginx -h 2>&1 | grep -q -- '-e filename'; then early_log=(-e "$dir/error.log"); fi
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} nginx -p "$dir/" -c "$dir/nginx.conf" \
        ${early_log[@]+"${early_log[@]}"} >>"$dir/nginx.log" 2>&1 &
    PIDS+=($!)
    PID[$name]=$!
    wait_port "$port" $!
}

http_section() {
    if ! { need nginx nginx && need wrk wrk; }; then
        say "skipping http_hello vs nginx"
        return 0
    fi
    start_server "$EXAMPLES/http_hello" ${BUSY_POLL_ARGS[@]+"${BUSY_POLL_ARGS[@]}"}
    local hello_port=${ADDR##*:}
    local port
    port=$(free_port)
    start_nginx nginx "$port"
    http_check "$hello_port"
    http_check "$port"
    # Warm both up.
    wrk_run "$hello_port" 1 >/dev/null
    wrk_run "$port" 1 >/dev/null
    local round server
    for ((round = 0; round < ROUNDS; round++)); do
        ROUND=$round
        for server in $(rotate "$round" http_hello nginx); do
            say "round $((round + 1))/$ROUNDS: $server, wrk -t1 -c$CONNS -d${SECS}s"
            if [ "$server" = http_hello ]; then
                measure "${PID[$server]}" wrk_run "$hello_port" "$SECS"
            else
                measure "${PID[$server]}" wrk_run "$port" "$SECS"
            fi
            record "http GET /" "$server" "$(cat "$OUT/last.out")"
        done
    done
    row "http_hello / nginx: GET / (wrk -c$CONNS)" "http GET /" http_hello nginx
    stop_servers
}

# ----- https -----------------------------------------------------------------------------

# http_hello built with TLS (its own target directory, so the plain rows keep binaries
# without the feature) beside nginx with ssl: one self-signed certificate
# (scripts/make_cert.sh, P-256) for both, TLS 1.3 only, so both negotiate the same suite.
https_section() {
    if ! { need nginx nginx && need wrk wrk && need openssl openssl; }; then
        say "skipping http_hello --tls vs nginx ssl"
        return 0
    fi
    (cd "$ROOT" && cargo build --release -q --features tls --example http_hello \
        --target-dir "$ROOT/target/tls")
    local certs=$OUT/tls
    bash "$ROOT/scripts/make_cert.sh" "$certs" >/dev/null
    start_server "$ROOT/target/tls/release/examples/http_hello" \
        --tls "$certs/cert.pem" "$certs/key.pem" ${BUSY_POLL_ARGS[@]+"${BUSY_POLL_ARGS[@]}"}
    local hello_port=${ADDR##*:}
    local port
    port=$(free_port)
    start_nginx nginx-tls "$port" "ssl_certificate $certs/cert.pem;" \
        "ssl_certificate_key $certs/key.pem;" "ssl_protocols TLSv1.3;"
    local server suite
    for server in "$hello_port" "$port"; do
        suite=$(openssl s_client -connect "127.0.0.1:$server" -tls1_3 </dev/null 2>/dev/null |
            sed -n 's/^ *Cipher *: *//p;s/.*Cipher is //p' | head -1)
        say "TLS on port $server: ${suite:-unknown suite}"
    done
    wrk_run "$hello_port" 1 https >/dev/null
    wrk_run "$port" 1 https >/dev/null
    local round
    for ((round = 0; round < ROUNDS; round++)); do
        ROUND=$round
        for server in $(rotate "$round" http_hello nginx-tls); do
            say "round $((round + 1))/$ROUNDS: $server, wrk -t1 -c$CONNS -d${SECS}s https"
            if [ "$server" = http_hello ]; then
                measure "${PID[$server]}" wrk_run "$hello_port" "$SECS" https
            else
                measure "${PID[$server]}" wrk_run "$port" "$SECS" https
            fi
            record "https GET /" "$server" "$(cat "$OUT/last.out")"
        done
    done
    row "http_hello --tls / nginx ssl: GET / over TLS 1.3 (wrk -c$CONNS)" "https GET /" \
        http_hello nginx-tls
    stop_servers
}

# ----- echo ------------------------------------------------------------------------------

echo_section() {
    declare -A addr
    local server
    for server in "$EXAMPLES/echo" "$BINS/tokio_echo" "$BINS/mio_echo"; do
        start_server "$server"
        addr[${server##*/}]=$ADDR
    done
    local depth round
    for depth in 1 16; do
        for ((round = 0; round < ROUNDS; round++)); do
            ROUND=$round
            for server in $(rotate "$round" echo tokio_echo mio_echo); do
                say "round $((round + 1))/$ROUNDS: $server, loadgen depth $depth"
                measure "${PID[$server]}" "${CLIENT[@]}" "$BINS/loadgen" "${addr[$server]}" \
                    --conns "$CONNS" --secs "$SECS" --size 64 --depth "$depth"
                record "echo depth $depth" "$server" "$(tail -n 1 "$OUT/last.out")"
            done
        done
        row "echo / tokio_echo: 64 B, depth $depth" "echo depth $depth" echo tokio_echo
        row "echo / mio_echo: 64 B, depth $depth" "echo depth $depth" echo mio_echo
    done
    stop_servers
}

# ----- report ----------------------------------------------------------------------------

# median CASE SERVER [COLUMN [FORMAT]]: the median of the recorded runs' req/s (or of
# another column), empty if none.
median() {
    awk -F'\t' -v c="$1" -v s="$2" -v k="${3:-3}" '$1 == c && $2 == s && $k != "-" { print $k }' "$RUNS" |
        middle "${4:-%.0f}"
}

# middle FORMAT [NONE]: the median of the numbers on standard input, printed with FORMAT
# (NONE, empty by default, when there are none).
middle() {
    sort -g | awk -v f="$1" -v none="${2:-}" '{ v[NR] = $1 }
        END { if (NR % 2) printf f, v[(NR + 1) / 2]; else if (NR) printf f, (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "%s", none }'
}

# paired_ratio CASE A B: the median over rounds of A's req/s over B's in the same round
# (rounds where both have a result), "-" if there is none.
paired_ratio() {
    awk -F'\t' -v c="$1" -v a="$2" -v b="$3" '
        $1 == c && $2 == a { ra[$7] = $3 }
        $1 == c && $2 == b { rb[$7] = $3 }
        END { for (r in ra) if ((r in rb) && rb[r] > 0) print ra[r] / rb[r] }' "$RUNS" |
        middle %.2f -
}

# per_cpu CASE SERVER: the median of the recorded runs' requests per server CPU-second
# (req/s over the share of one CPU the server used), empty if none.
per_cpu() {
    awk -F'\t' -v c="$1" -v s="$2" '$1 == c && $2 == s && $3 != "-" && $4 + 0 > 0 { print $3 / $4 }' "$RUNS" |
        middle %.0f
}

# paired_cpu_ratio CASE A B: as paired_ratio, of requests per server CPU-second.
paired_cpu_ratio() {
    awk -F'\t' -v c="$1" -v a="$2" -v b="$3" '
        $1 == c && $2 == a && $4 + 0 > 0 { ra[$7] = $3 / $4 }
        $1 == c && $2 == b && $4 + 0 > 0 { rb[$7] = $3 / $4 }
        END { for (r in ra) if ((r in rb) && rb[r] > 0) print ra[r] / rb[r] }' "$RUNS" |
        middle %.2f -
}

# runs CASE SERVER: every run's req/s (CPU of server/client/others), in the order measured.
runs() {
    awk -F'\t' -v c="$1" -v s="$2" '$1 == c && $2 == s {
        printf "%s%.0f (%s/%s/%s)", sep, $3, $4, $5, $6; sep = ", " }' "$RUNS"
}

report() {
    local table=$OUT/table.tsv
    : >"$table"
    local label case emux peer a b ratio
    while IFS=$'\t' read -r label case emux peer; do
        a=$(median "$case" "$emux")
        b=$(median "$case" "$peer")
        ratio=$(paired_ratio "$case" "$emux" "$peer")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "${a:--}" "${b:--}" "$ratio" \
            "$(runs "$case" "$emux")" "$(runs "$case" "$peer")" \
            "$(median "$case" "$emux" 4 %.2f)" "$(median "$case" "$peer" 4 %.2f)" \
            "$(per_cpu "$case" "$emux")" "$(per_cpu "$case" "$peer")" \
            "$(paired_cpu_ratio "$case" "$emux" "$peer")" >>"$table"
    done <"$ROWS"

    echo
    echo "eventmux vs peers: median of $ROUNDS x ${SECS} s runs, $PINNING; $BUSY_POLL_NOTE"
    echo "(ratio: median over rounds of eventmux / peer within the round; per CPU-s: requests"
    echo " per second of server CPU time, the same ratio of those)"
    awk -F'\t' '
        BEGIN { printf "%-46s %14s %12s %6s %14s %12s %6s\n", "row", "eventmux req/s", "peer req/s", "ratio", "eventmux /CPU-s", "peer /CPU-s", "ratio"
                printf "%-46s %14s %12s %6s %14s %12s %6s\n", "---", "--------------", "----------", "-----", "---------------", "-----------", "-----" }
        { printf "%-46s %14s %12s %6s %14s %12s %6s\n", $1, $2, $3, $4, $9, $10, $11 }' "$table"

    {
        echo "# eventmux compared with its peers"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)),"
        echo "$PINNING; median of $ROUNDS runs of ${SECS} s per server and row, alternating;"
        echo "$BUSY_POLL_NOTE."
        echo "Ratio: the median over rounds of eventmux's req/s over the peer's in the same round"
        echo "(above 1: eventmux is faster). The req/s columns are each server's median run."
        echo
        echo "CPU columns: the share of one CPU the server used during the runs (median). Well"
        echo "below 1.00 means the load generator, not the server, set the pace; the load"
        echo "generator, alone on its core, is then the bottleneck."
        echo
        echo "Per CPU-s: requests per second of the server's CPU time (user + system), the"
        echo "median run, and the median over rounds of eventmux's over the peer's. The two"
        echo "PING rows come from one redis-benchmark call and share its CPU figure, so theirs"
        echo "are of the two tests together."
        echo
        echo "| row | eventmux req/s | peer req/s | eventmux/peer | eventmux req/CPU-s | peer req/CPU-s | eventmux/peer per CPU-s | eventmux CPU | peer CPU |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $9, $10, $11, $7, $8 }' "$table"
        echo
        echo "Every run, req/s (share of a CPU used by the server / the load generator / other"
        echo "programs), in the order measured; the two PING rows share one redis-benchmark"
        echo "call's CPU figures:"
        echo
        echo "| row | eventmux | peer |"
        echo "|---|---|---|"
        awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $5, $6 }' "$table"
        echo
        echo "Versions: $(rustc --version 2>/dev/null || true)"
        if command -v redis-server >/dev/null; then redis-server --version; fi
        if command -v nginx >/dev/null; then nginx -v 2>&1; fi
        if command -v wrk >/dev/null; then wrk -v 2>&1 | head -n 1 || true; fi
    } >"$OUT/results.md"

    svg "$table" >"$OUT/results.svg"
    local noisy
    noisy=$(awk -F'\t' '$6 > 0.10' "$RUNS" | wc -l)
    if [ "$noisy" -gt 0 ]; then
        echo "note: $noisy run(s) kept although other programs used over 10% of a CPU (see results.md)"
    fi
    echo
    echo "wrote $OUT/results.md and $OUT/results.svg"
}

# svg TABLE: a horizontal bar chart of the ratios, with a line at 1.0. Green: eventmux
# at least 5% faster; red: at least 5% slower; grey: within 5%.
svg() {
    awk -F'\t' '
        function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
        { label[NR] = $1; ratio[NR] = ($4 == "-" ? 0 : $4 + 0); if (ratio[NR] > top) top = ratio[NR] }
        END {
            top = (top < 1.25 ? 1.25 : top) * 1.1
            left = 360; width = 420; bar = 18; gap = 6; head = 60
            bottom = head + NR * (bar + gap)
            printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", left + width + 60, bottom + 30
            printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            printf "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">eventmux req/s over the peer%ss (above 1: eventmux is faster)</text>\n", "\047"
            printf "<rect x=\"10\" y=\"33\" width=\"12\" height=\"12\" fill=\"#3a8f3a\"/><text x=\"26\" y=\"43\">5%% or more faster</text>\n"
            printf "<rect x=\"150\" y=\"33\" width=\"12\" height=\"12\" fill=\"#999999\"/><text x=\"166\" y=\"43\">within 5%%</text>\n"
            printf "<rect x=\"250\" y=\"33\" width=\"12\" height=\"12\" fill=\"#c0392b\"/><text x=\"266\" y=\"43\">5%% or more slower</text>\n"
            x = left + 1 / top * width
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n", x, head - 6, x, bottom
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">1.0</text>\n", x, bottom + 16
            for (i = 1; i <= NR; i++) {
                y = head + (i - 1) * (bar + gap)
                w = ratio[i] / top * width
                color = (ratio[i] >= 1.05 ? "#3a8f3a" : ratio[i] > 0.95 ? "#999999" : "#c0392b")
                printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y + 13, esc(label[i])
                printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, w, bar, color
                tx = (left + w > x ? left + w : x) + 4
                printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", tx, y + 13, (ratio[i] > 0 ? sprintf("%.2f", ratio[i]) : "n/a")
            }
            printf "</svg>\n"
        }' "$1"
}

# ----- main ------------------------------------------------------------------------------

say "building the release examples and the loadgen crate's binaries"
(cd "$ROOT" && cargo build --release -q -p eventmux --example mini_redis --example http_hello \
    --example echo --example memcached && cargo build --release -q -p loadgen --bins)

say "$ROUNDS round(s) of ${SECS} s per server and row; $PINNING"
if [[ ,$ONLY, == *,redis,* ]]; then redis_section; fi
if [[ ,$ONLY, == *,http,* ]]; then http_section; fi
if [[ ,$ONLY, == *,https,* ]]; then https_section; fi
if [[ ,$ONLY, == *,echo,* ]]; then echo_section; fi
if [[ ,$ONLY, == *,memcached,* ]]; then memcached_section; fi
report
