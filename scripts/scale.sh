#!/usr/bin/env bash
# How eventmux's example servers scale over reactors (issue #16), beside the servers a user
# would otherwise pick, each with the same number of threads or processes:
#
#   http_hello --threads k --busy-poll-us 0   vs  nginx, worker_processes k    under wrk
#   echo --threads k                          vs  tokio_echo --threads k       under loadgen
#
# for k = 1..N reactors. tokio_echo --threads k is a tokio multi_thread runtime with k
# workers (k = 1: the current_thread runtime); echo and http_hello give each reactor its
# own SO_REUSEPORT listener, and nginx listens with `reuseport`. The load generators are
# `wrk -t L -c C -d SECS` (HTTP/1.1 keep-alive GET /) and `loadgen --threads L --conns C
# --depth 1 --size 64 --secs SECS` (TCP echo ping-pong, every byte checked); C grows with
# k (SCALE_CONNS per reactor), so each reactor sees the same number of connections.
#
# Cores: L = max(1, cores / 4) load-generator threads and N = cores - L reactors at most.
# With enough cores the servers of a run with k reactors are confined to the first k CPUs
# and the load generator to the last L (taskset); each server still places its threads
# itself. When N would be below 2 (a 2-core machine), N = 2 and L = 1 anyway: then nothing
# is pinned, the load generator shares the cores with the servers, and the table says so
# (a server with 2 reactors then cannot have 2 CPUs to itself).
#
# For every run the server's CPU time (utime + stime of the process and its children,
# nginx's workers, from /proc) is measured, and its requests per CPU-second: its requests
# per second over the share of a CPU it used during the run. Runs alternate between the
# two servers of a pair, round after round (the order rotates); each figure is the median
# round, and each ratio the median over rounds of eventmux's run over the peer's run of
# the same round (runs of one round are seconds apart, which keeps a shared machine's
# drift out of the ratio). A run during which other programs kept more than 10% of a CPU
# busy is repeated, twice at most.
#
#   scripts/scale.sh                                   # 1..N reactors, 3 rounds of 5 s
#   SCALE_SECS=3 SCALE_ROUNDS=1 scripts/scale.sh       # a quick look
#
# SCALE_SECS (5): seconds per measured run; SCALE_ROUNDS (3): runs per server and k;
# SCALE_MAX (N above): the most reactors to try (above cores - L, nothing is pinned);
# SCALE_CONNS (50): connections per reactor (C = SCALE_CONNS * k, at least L);
# SCALE_ONLY (http,echo): sections to run;
# SCALE_PIN_THREADS (0): 1 also pins each server thread to a CPU (eventmux's --pin,
# nginx's worker_cpu_affinity auto; tokio has no such setting). Missing tools (nginx, wrk,
# taskset) are installed with apt-get; without wrk the HTTP section is skipped, without
# nginx its columns stay empty, each with a note.
#
# Outputs: the tables (markdown) on standard output and in target/scale/results.md, with
# every run in it too, and target/scale/results.svg: requests per second against k for the
# four servers (top) and requests per server CPU-second (bottom). Logs of every server
# and tool, and the raw runs (runs.tsv), are in target/scale.
set -euo pipefail

SECS=${SCALE_SECS:-5}
ROUNDS=${SCALE_ROUNDS:-3}
MAX=${SCALE_MAX:-}
CONNS_PER=${SCALE_CONNS:-50}
ONLY=${SCALE_ONLY:-http,echo}
PIN_THREADS=${SCALE_PIN_THREADS:-0}

case $SECS in '' | *[!0-9]* | 0) echo "SCALE_SECS must be a positive whole number of seconds" >&2 && exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "SCALE_ROUNDS must be a positive number" >&2 && exit 2 ;; esac
case $MAX in *[!0-9]* | 0) echo "SCALE_MAX must be a positive number" >&2 && exit 2 ;; esac
case $CONNS_PER in '' | *[!0-9]* | 0) echo "SCALE_CONNS must be a positive number" >&2 && exit 2 ;; esac
case $PIN_THREADS in 0 | 1) ;; *) echo "SCALE_PIN_THREADS must be 0 or 1" >&2 && exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/scale
EXAMPLES=$ROOT/target/release/examples
BINS=$ROOT/target/release # the loadgen crate's binaries
# section, k, server, req/s, server CPU s, wall s, server/client/other CPU share, round,
# req per server CPU-second: one line per run.
RUNS=$OUT/runs.tsv

mkdir -p "$OUT"
: >"$RUNS"

say() { echo "scale: $*" >&2; }
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

# ----- tools (as scripts/compare.sh) -----------------------------------------------------

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
APT_UPDATED=

# ----- cores and pinning -----------------------------------------------------------------

# The CPUs this script may run on, one per line (from Cpus_allowed_list, e.g. "0-3,8").
allowed_cpus() {
    awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status | tr ',' '\n' |
        awk -F- 'NF == 2 { for (i = $1; i <= $2; i++) print i; next } NF == 1 { print $1 }'
}
mapfile -t CPUS < <(allowed_cpus)
if [ "${#CPUS[@]}" = 0 ]; then mapfile -t CPUS < <(seq 0 $(($(nproc) - 1))); fi
CORES=${#CPUS[@]}

LOADGEN_THREADS=$((CORES / 4 > 1 ? CORES / 4 : 1))
MAX_REACTORS=$((CORES - LOADGEN_THREADS))
SHARED=
if [ "$MAX_REACTORS" -lt 2 ]; then
    MAX_REACTORS=2
    LOADGEN_THREADS=1
fi
if [ -n "$MAX" ]; then MAX_REACTORS=$MAX; fi
if [ $((MAX_REACTORS + LOADGEN_THREADS)) -gt "$CORES" ]; then SHARED=1; fi

# cpu_range FIRST COUNT: CPUS[FIRST..FIRST+COUNT-1] as a taskset list ("0,1,2").
cpu_range() {
    local IFS=,
    echo "${CPUS[*]:$1:$2}"
}

PIN=
if [ -z "$SHARED" ] && need taskset util-linux && taskset -c "$(cpu_range 0 "$CORES")" true 2>/dev/null; then
    PIN=1
    CLIENT_CPUS=$(cpu_range $((CORES - LOADGEN_THREADS)) "$LOADGEN_THREADS")
    PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
    PINNING="servers with k reactors on CPUs $(cpu_range 0 1)..$(cpu_range $((MAX_REACTORS - 1)) 1) (the first k), load generators on CPU(s) $CLIENT_CPUS"
elif [ -n "$SHARED" ]; then
    PIN_CLIENT=()
    PINNING="unpinned: $CORES CPUs are too few for $MAX_REACTORS reactors and $LOADGEN_THREADS load-generator thread(s) on cores of their own, so the load generator shares the cores with the servers (a server with $MAX_REACTORS reactors cannot have $MAX_REACTORS CPUs to itself)"
else
    PIN_CLIENT=()
    PINNING="unpinned: taskset cannot pin here"
fi
THREAD_PIN_NOTE="server threads placed by the servers themselves (no per-thread pinning)"
EMUX_PIN_ARGS=()
NGINX_AFFINITY=
if [ "$PIN_THREADS" = 1 ]; then
    EMUX_PIN_ARGS=(--pin)
    NGINX_AFFINITY="worker_cpu_affinity auto;"
    THREAD_PIN_NOTE="eventmux's reactors pinned one per CPU (--pin), nginx's workers too (worker_cpu_affinity auto); tokio's workers are not"
fi
# A load generator facing a hung server gives up (and its run shows no number).
CLIENT=(timeout $((SECS * 20 + 60)) ${PIN_CLIENT[@]+"${PIN_CLIENT[@]}"})

# The servers' taskset for k reactors (empty when unpinned), set by pin_servers.
PIN_SERVER=()
pin_servers() {
    PIN_SERVER=()
    if [ -n "$PIN" ]; then PIN_SERVER=(taskset -c "$(cpu_range 0 "$1")"); fi
}

# Connections for k reactors.
conns_for() {
    local c=$((CONNS_PER * $1))
    echo $((c < LOADGEN_THREADS ? LOADGEN_THREADS : c))
}

# ----- runs --------------------------------------------------------------------------------

# record SECTION K SERVER RATE: one measured run of round $ROUND, with the CPU figures of
# the last `measure`.
ROUND=0
record() {
    if ! [[ $4 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        say "note: no result for $3 with $2 reactor(s) (see the logs in $OUT)"
        return 0
    fi
    local cpu wall server client other
    read -r cpu wall server client other <<<"$CPU"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$cpu" "$wall" \
        "$server" "$client" "$other" "$ROUND" \
        "$(awk -v r="$4" -v s="$server" 'BEGIN { if (s > 0) printf "%.0f", r / s; else print "-" }')" >>"$RUNS"
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

# wrk_run PORT SECONDS CONNS: requests per second.
wrk_run() {
    local log=$OUT/wrk.log
    "${CLIENT[@]}" wrk -t"$LOADGEN_THREADS" -c"$3" -d"$2"s "http://127.0.0.1:$1/" >"$log.last" 2>&1 || true
    cat "$log.last" >>"$log"
    if grep -q -e 'Non-2xx' -e 'Socket errors' "$log.last"; then
        say "note: wrk saw errors on port $1: $(grep -e 'Non-2xx' -e 'Socket errors' "$log.last" | tr -s ' ')"
    fi
    awk '/^Requests\/sec:/ { print $2 }' "$log.last"
}

# start_nginx K: nginx with K workers on a free port; sets NGINX_PORT.
NGINX_PORT=
start_nginx() {
    NGINX_PORT=$(free_port)
    local dir=$OUT/nginx
    mkdir -p "$dir"
    # keepalive_requests: nginx closes a keep-alive connection after 1000 requests by
    # default and wrk reconnects; http_hello never does, so lift the limit for both.
    cat >"$OUT/nginx.conf" <<EOF
worker_processes $1;
$NGINX_AFFINITY
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events {
    worker_connections 4096;
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
        listen 127.0.0.1:$NGINX_PORT reuseport;
        location / {
            return 200 "Hello, world!\n";
        }
    }
}
EOF
    local early_log=()
    if nginx -h 2>&1 | grep -q -- '-e filename'; then early_log=(-e "$OUT/nginx-error.log"); fi
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} nginx -p "$dir/" -c "$OUT/nginx.conf" \
        ${early_log[@]+"${early_log[@]}"} >>"$OUT/nginx.log" 2>&1 &
    PIDS+=($!)
    PID[nginx]=$!
    wait_port "$NGINX_PORT" $!
    # The workers start after the master listens: wait until all K are there.
    for _ in $(seq 50); do
        [ "$(cat /proc/"${PID[nginx]}"/task/*/children 2>/dev/null | wc -w)" -ge "$1" ] && break
        sleep 0.1
    done
}

HAVE_WRK=
HAVE_NGINX=
http_section() {
    local k=$1 conns
    conns=$(conns_for "$k")
    pin_servers "$k"
    start_server "$EXAMPLES/http_hello" --threads "$k" --busy-poll-us 0 \
        ${EMUX_PIN_ARGS[@]+"${EMUX_PIN_ARGS[@]}"}
    local -A port=([http_hello]=${ADDR##*:})
    local servers=(http_hello)
    if [ -n "$HAVE_NGINX" ]; then
        start_nginx "$k"
        port[nginx]=$NGINX_PORT
        servers+=(nginx)
    fi
    local server
    for server in "${servers[@]}"; do
        http_check "${port[$server]}"
        wrk_run "${port[$server]}" 1 "$conns" >/dev/null # warm-up
    done
    local round
    for ((round = 0; round < ROUNDS; round++)); do
        ROUND=$round
        for server in $(rotate "$round" "${servers[@]}"); do
            say "k=$k round $((round + 1))/$ROUNDS: $server, wrk -t$LOADGEN_THREADS -c$conns -d${SECS}s"
            measure "${PID[$server]}" wrk_run "${port[$server]}" "$SECS" "$conns"
            record http "$k" "$server" "$(cat "$OUT/last.out")"
        done
    done
    stop_servers
}

# ----- echo ------------------------------------------------------------------------------

echo_section() {
    local k=$1 conns
    conns=$(conns_for "$k")
    pin_servers "$k"
    local -A addr
    start_server "$EXAMPLES/echo" --threads "$k" ${EMUX_PIN_ARGS[@]+"${EMUX_PIN_ARGS[@]}"}
    addr[echo]=$ADDR
    start_server "$BINS/tokio_echo" --threads "$k"
    addr[tokio_echo]=$ADDR
    local round server
    for ((round = 0; round < ROUNDS; round++)); do
        ROUND=$round
        for server in $(rotate "$round" echo tokio_echo); do
            say "k=$k round $((round + 1))/$ROUNDS: $server, loadgen --threads $LOADGEN_THREADS --conns $conns"
            measure "${PID[$server]}" "${CLIENT[@]}" "$BINS/loadgen" "${addr[$server]}" \
                --threads "$LOADGEN_THREADS" --conns "$conns" --secs "$SECS" --size 64 --depth 1
            record echo "$k" "$server" "$(tail -n 1 "$OUT/last.out")"
        done
    done
    stop_servers
}

# ----- report ----------------------------------------------------------------------------

# middle FORMAT [NONE]: the median of the numbers on standard input, printed with FORMAT
# (NONE, "-" by default, when there are none).
middle() {
    sort -g | awk -v f="$1" -v none="${2:--}" '{ v[NR] = $1 }
        END { if (NR % 2) printf f, v[(NR + 1) / 2]; else if (NR) printf f, (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "%s", none }'
}

# median SECTION K SERVER COLUMN FORMAT: the median of a column over the recorded runs.
median() {
    awk -F'\t' -v c="$1" -v k="$2" -v s="$3" -v col="$4" \
        '$1 == c && $2 == k && $3 == s && $col != "-" { print $col }' "$RUNS" | middle "$5"
}

# paired_ratio SECTION K A B COLUMN: the median over rounds of A's COLUMN over B's in the
# same round, "-" if no round has both.
paired_ratio() {
    awk -F'\t' -v c="$1" -v k="$2" -v a="$3" -v b="$4" -v col="$5" '
        $1 == c && $2 == k && $3 == a && $col != "-" { ra[$10] = $col }
        $1 == c && $2 == k && $3 == b && $col != "-" { rb[$10] = $col }
        END { for (r in ra) if ((r in rb) && rb[r] > 0) print ra[r] / rb[r] }' "$RUNS" |
        middle %.2f
}

# with_commas: 1234567 -> 1,234,567 (other words unchanged).
with_commas() {
    awk '{ if ($0 ~ /^[0-9]+$/) { s = $0; out = ""
             while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
             print s out } else print }'
}

# The table of one section: SECTION EVENTMUX PEER UNIT. Also appends the medians to
# $OUT/chart.tsv (section, k, server, req/s, req per CPU-s) for the chart.
section_table() {
    local section=$1 a=$2 b=$3 unit=$4 k
    echo "| reactors (k) | $a $unit/s | $b $unit/s | $a/$b | $a CPU s | $b CPU s | $a $unit/CPU-s | $b $unit/CPU-s | $a/$b per CPU-s |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for ((k = 1; k <= MAX_REACTORS; k++)); do
        local ra rb ca cb pa pb
        ra=$(median "$section" "$k" "$a" 4 %.0f) rb=$(median "$section" "$k" "$b" 4 %.0f)
        ca=$(median "$section" "$k" "$a" 5 %.2f) cb=$(median "$section" "$k" "$b" 5 %.2f)
        pa=$(median "$section" "$k" "$a" 11 %.0f) pb=$(median "$section" "$k" "$b" 11 %.0f)
        printf '%s\t%s\t%s\t%s\t%s\n' "$section" "$k" "$a" "$ra" "$pa" >>"$OUT/chart.tsv"
        printf '%s\t%s\t%s\t%s\t%s\n' "$section" "$k" "$b" "$rb" "$pb" >>"$OUT/chart.tsv"
        echo "| $k | $(with_commas <<<"$ra") | $(with_commas <<<"$rb") | $(paired_ratio "$section" "$k" "$a" "$b" 4) | $ca | $cb | $(with_commas <<<"$pa") | $(with_commas <<<"$pb") | $(paired_ratio "$section" "$k" "$a" "$b" 11) |"
    done
}

# runs_table SECTION: every run of a section.
runs_table() {
    echo "| k | server | round | $([ "$1" = http ] && echo req/s || echo msg/s) | server CPU s | run s | CPU share: server / load generator / others | per CPU-s |"
    echo "|---:|---|---:|---:|---:|---:|---|---:|"
    awk -F'\t' -v c="$1" '$1 == c { printf "| %s | %s | %d | %.0f | %s | %s | %s / %s / %s | %s |\n", $2, $3, $10 + 1, $4, $5, $6, $7, $8, $9, $11 }' "$RUNS"
}

report() {
    : >"$OUT/chart.tsv"
    local tables=$OUT/tables.md
    {
        echo "# eventmux over 1..$MAX_REACTORS reactors, beside nginx and tokio"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $CORES CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo));"
        echo "median of $ROUNDS run(s) of ${SECS} s per server and k, alternating; $CONNS_PER connections per"
        echo "reactor (C = $CONNS_PER k); load generators on $LOADGEN_THREADS thread(s) (wrk -t$LOADGEN_THREADS, loadgen --threads $LOADGEN_THREADS)."
        echo
        echo "Pinning: $PINNING; $THREAD_PIN_NOTE."
        if [ -n "$SHARED" ]; then
            echo
            echo "**Note: the load generator shares the cores with the servers** ($CORES CPUs for up to"
            echo "$MAX_REACTORS reactors and $LOADGEN_THREADS load-generator thread(s)): with k = $MAX_REACTORS the server and the load"
            echo "generator compete for the same CPUs, so these figures show the trend, not what"
            echo "$MAX_REACTORS cores of their own would give."
        fi
        echo
        echo "Ratios (eventmux/peer): the median over rounds of eventmux's run over the peer's run"
        echo "of the same round; above 1, eventmux is ahead. CPU s: the server's CPU time (user +"
        echo "system, all threads and child processes) during a run of about ${SECS} s (plus"
        echo "loadgen's 0.5 s warm-up). Per CPU-s: requests per second over the share of a CPU"
        echo "the server used meanwhile."
        if [[ ,$ONLY, == *,http,* ]] && [ -n "$HAVE_WRK" ]; then
            echo
            echo "## HTTP: http_hello --threads k --busy-poll-us 0 vs nginx with worker_processes k"
            echo
            echo "wrk -t$LOADGEN_THREADS -c$CONNS_PER·k -d${SECS}s, HTTP/1.1 keep-alive GET / (\"Hello, world!\")."
            if [ -z "$HAVE_NGINX" ]; then echo "nginx could not be installed: its columns are empty."; fi
            echo
            section_table http http_hello nginx req
        fi
        if [[ ,$ONLY, == *,echo,* ]]; then
            echo
            echo "## TCP echo: echo --threads k vs tokio_echo --threads k (multi_thread runtime, k workers; k = 1: current_thread)"
            echo
            echo "loadgen --threads $LOADGEN_THREADS --conns $CONNS_PER·k --depth 1 --size 64 --secs $SECS, every byte checked; messages per second."
            echo
            section_table echo echo tokio_echo msg
        fi
    } >"$tables"
    cat "$tables"
    {
        cat "$tables"
        echo
        echo "## Every run"
        local section
        for section in http echo; do
            if grep -q "^$section"$'\t' "$RUNS"; then
                echo
                echo "### $section"
                echo
                runs_table "$section"
            fi
        done
        echo
        echo "Versions: $(rustc --version 2>/dev/null || true)"
        if command -v nginx >/dev/null; then nginx -v 2>&1; fi
        if command -v wrk >/dev/null; then wrk -v 2>&1 | head -n 1 || true; fi
    } >"$OUT/results.md"
    svg "$OUT/chart.tsv" >"$OUT/results.svg"
    local noisy
    noisy=$(awk -F'\t' '$9 > 0.10' "$RUNS" | wc -l)
    if [ "$noisy" -gt 0 ]; then
        echo
        echo "note: $noisy run(s) kept although other programs used over 10% of a CPU (see results.md)"
    fi
    if [ -n "$SHARED" ]; then
        echo
        echo "note: the load generator shared the $CORES CPUs with the servers (nothing pinned)"
    fi
    echo
    echo "wrote $OUT/results.md and $OUT/results.svg"
}

# svg CHART_TSV: a 2 x 2 grid of line charts against k: requests per second (top) and per
# server CPU-second (bottom), HTTP (left) and echo (right); eventmux solid blue, the peer
# dashed red.
svg() {
    awk -F'\t' -v kmax="$MAX_REACTORS" -v note="$([ -n "$SHARED" ] && echo "load generator shares the $CORES CPUs with the servers" || echo "$PINNING")" '
        function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
        function nice(v,   p, m) { if (v <= 0) return 1; p = 10 ^ int(log(v) / log(10)); m = v / p
            return (m <= 1 ? 1 : m <= 1.2 ? 1.2 : m <= 1.6 ? 1.6 : m <= 2 ? 2 : m <= 2.4 ? 2.4 : m <= 3 ? 3 : m <= 4 ? 4 : m <= 5 ? 5 : m <= 6 ? 6 : m <= 8 ? 8 : 10) * p }
        function short(v) { return v >= 1e6 ? sprintf("%.1fM", v / 1e6) : v >= 1e3 ? sprintf("%.0fk", v / 1e3) : sprintf("%.0f", v) }
        function panel(px, py, sec, col, title,   i, k, s, top, x, y, path, n, srv, dash, color) {
            top = 0
            for (i = 1; i <= rows; i++) if (S[i] == sec && V[i, col] != "-" && V[i, col] + 0 > top) top = V[i, col] + 0
            top = nice(top * 1.1)
            printf "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", px, py - 12, esc(title)
            printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", px, py, W, H
            for (i = 0; i <= 4; i++) {
                y = py + H - i / 4 * H
                printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", px, y, px + W, y
                printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", px - 4, y + 4, short(top * i / 4)
            }
            for (k = 1; k <= kmax; k++) {
                x = px + (kmax == 1 ? W / 2 : (k - 1) / (kmax - 1) * (W - 40) + 20)
                printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x, py + H + 16, k
            }
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">reactors / workers (k)</text>\n", px + W / 2, py + H + 32
            n = 0
            for (s in seen) if (seen[s] == sec) {
                n++
                color = (s == "http_hello" || s == "echo") ? "#1f5fa8" : "#c0392b"
                dash = (color == "#1f5fa8") ? "" : " stroke-dasharray=\"6 4\""
                path = ""
                for (i = 1; i <= rows; i++) if (S[i] == sec && R[i] == s && V[i, col] != "-") {
                    k = K[i]; x = px + (kmax == 1 ? W / 2 : (k - 1) / (kmax - 1) * (W - 40) + 20)
                    y = py + H - V[i, col] / top * H
                    path = path (path == "" ? "M" : " L") sprintf("%.1f %.1f", x, y)
                    printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, color
                }
                if (path != "") printf "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", path, color, dash
                # The legend, under the axis: eventmux on the left, the peer on the right.
                x = px + (color == "#1f5fa8" ? 0 : W / 2)
                y = py + H + 48
                printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", x, y - 4, x + 24, y - 4, color, dash
                printf "<text x=\"%d\" y=\"%d\">%s</text>\n", x + 30, y, esc(s)
            }
            if (!n) printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">not measured</text>\n", px + W / 2, py + H / 2
        }
        { rows++; S[rows] = $1; K[rows] = $2; R[rows] = $3; V[rows, 4] = $4; V[rows, 5] = $5; if (!($3 in seen)) seen[$3] = $1 }
        END {
            W = 360; H = 220; L = 70; G = 90; T = 70
            printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", 2 * L + 2 * W + G - 40, T + 2 * H + G + 70
            printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            printf "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">eventmux over 1..%d reactors: blue eventmux, red dashed its peer</text>\n", kmax
            printf "<text x=\"10\" y=\"40\">%s</text>\n", esc(note)
            panel(L, T, "http", 4, "HTTP requests/s: http_hello vs nginx")
            panel(L + W + G, T, "echo", 4, "echo messages/s: echo vs tokio_echo")
            panel(L, T + H + G, "http", 5, "HTTP requests per server CPU-second")
            panel(L + W + G, T + H + G, "echo", 5, "echo messages per server CPU-second")
            printf "</svg>\n"
        }' "$1"
}

# ----- main ------------------------------------------------------------------------------

say "building the release examples and the loadgen crate's binaries"
(cd "$ROOT" && cargo build --release -q --examples && cargo build --release -q -p loadgen)

if [[ ,$ONLY, == *,http,* ]]; then
    if need wrk wrk; then HAVE_WRK=1; else say "note: skipping the HTTP section (no wrk)"; fi
    if [ -n "$HAVE_WRK" ]; then
        if need nginx nginx; then HAVE_NGINX=1; else say "note: no nginx: http_hello runs alone"; fi
    fi
fi

say "$CORES CPUs: 1..$MAX_REACTORS reactors, load generators on $LOADGEN_THREADS thread(s); $ROUNDS round(s) of ${SECS} s"
say "pinning: $PINNING"
if [ -n "$SHARED" ]; then say "note: the load generator shares the cores with the servers"; fi
for ((k = 1; k <= MAX_REACTORS; k++)); do
    if [[ ,$ONLY, == *,http,* ]] && [ -n "$HAVE_WRK" ]; then http_section "$k"; fi
    if [[ ,$ONLY, == *,echo,* ]]; then echo_section "$k"; fi
done
report
