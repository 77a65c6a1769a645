#!/usr/bin/env bash
# TLS echo, eventmux beside tokio-rustls (issue 17): the same rustls version and ring
# provider on both sides, a self-signed certificate (scripts/make_cert.sh, P-256), TLS 1.3.
#
#   echo --tls CERT KEY (built with --features tls)  vs  tokio_tls_echo ADDR CERT KEY
#
# under the project's TLS load generator (loadgen's tls_load: one blocking rustls client
# thread per connection, depth-1 ping-pong, every byte checked), for
#
#   1 connection x 64 B, 50 connections x 64 B, 4 connections x 16 KiB ("streaming")
#
# Servers run on CPU 0 and the load generator on CPU 1 (taskset, when there are 2 CPUs or
# more). Each case alternates the two servers round after round; reported are messages
# per second and messages per server CPU-second (utime + stime from /proc during the run),
# the median round, and the ratio eventmux/tokio of the same round, whose median is the
# row's ratio (above 1: eventmux is ahead).
#
#   scripts/tls_bench.sh                     # 3 rounds of 5 s per server and case
#   TLS_BENCH_SECS=3 TLS_BENCH_ROUNDS=1 scripts/tls_bench.sh
#
# Writes the table to standard output and target/tls_bench/results.md; logs are there too.
set -euo pipefail

SECS=${TLS_BENCH_SECS:-5}
ROUNDS=${TLS_BENCH_ROUNDS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/tls_bench
mkdir -p "$OUT"
say() { echo "tls_bench: $*" >&2; }

say "building echo with --features tls and loadgen's TLS binaries"
(cd "$ROOT" && cargo build --release -q --features tls --example echo --target-dir "$ROOT/target/tls" &&
    cargo build --release -q -p loadgen --bin tokio_tls_echo --bin tls_load)
ECHO=$ROOT/target/tls/release/examples/echo
TOKIO=$ROOT/target/release/tokio_tls_echo
LOAD=$ROOT/target/release/tls_load
bash "$ROOT/scripts/make_cert.sh" "$OUT" >/dev/null

PIN_SERVER=() PIN_CLIENT=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_SERVER=(taskset -c 0) PIN_CLIENT=(taskset -c 1)
fi

PIDS=()
cleanup() { for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME COMMAND...: sets PORT_<NAME> and PID_<NAME> once it prints "listening on".
start() {
    local name=$1 log=$OUT/$1.log
    shift
    : >"$log"
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} "$@" >"$log" 2>&1 &
    PIDS+=($!)
    printf -v "PID_$name" '%s' $!
    local addr=
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { say "$name did not start:"; cat "$log" >&2; exit 1; }
    printf -v "PORT_$name" '%s' "${addr##*:}"
}

start eventmux "$ECHO" 127.0.0.1:0 --tls "$OUT/cert.pem" "$OUT/key.pem" --idle-timeout 0
start tokio "$TOKIO" 127.0.0.1:0 "$OUT/cert.pem" "$OUT/key.pem"

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# run NAME CONNS SIZE: prints "msgs/s msgs-per-CPU-s".
run() {
    local pid_var=PID_$1 port_var=PORT_$1
    local pid=${!pid_var} port=${!port_var} t0 t1 rate
    t0=$(ticks "$pid")
    rate=$(${PIN_CLIENT[@]+"${PIN_CLIENT[@]}"} "$LOAD" "127.0.0.1:$port" "$OUT/cert.pem" \
        --conns "$2" --secs "$SECS" --size "$3" 2>>"$OUT/tls_load.log" | tail -1)
    t1=$(ticks "$pid")
    awk -v r="$rate" -v d="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v s="$SECS" \
        'BEGIN { cpu = d / hz; share = cpu / (s + 0.5); printf "%.0f %.0f\n", r, (share > 0 ? r / share : 0) }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }

{
    echo "# TLS echo: eventmux beside tokio-rustls"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs; median of $ROUNDS rounds of $SECS s;"
    echo "servers on CPU 0, tls_load on CPU 1 (one thread per connection); rustls with ring, TLS 1.3."
    echo
    echo "| case | eventmux msg/s | tokio-rustls msg/s | ratio | eventmux msg/CPU-s | tokio-rustls msg/CPU-s | ratio per CPU-s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
} >"$OUT/results.md"

for case in "1 64" "50 64" "4 16384"; do
    read -r conns size <<<"$case"
    : >"$OUT/case.tsv"
    for ((round = 0; round < ROUNDS; round++)); do
        order="eventmux tokio"
        [ $((round % 2)) = 1 ] && order="tokio eventmux"
        declare -A got=()
        for server in $order; do
            say "$conns x $size B, round $((round + 1))/$ROUNDS: $server"
            got[$server]=$(run "$server" "$conns" "$size")
        done
        read -r er ec <<<"${got[eventmux]}"
        read -r tr tc <<<"${got[tokio]}"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$er" "$tr" "$ec" "$tc" \
            "$(awk -v a="$er" -v b="$tr" 'BEGIN { print (b ? a / b : 0) }')" \
            "$(awk -v a="$ec" -v b="$tc" 'BEGIN { print (b ? a / b : 0) }')" >>"$OUT/case.tsv"
    done
    col() { cut -f"$1" "$OUT/case.tsv" | median; }
    printf '| %s conn x %s B | %s | %s | %.2f | %s | %s | %.2f |\n' "$conns" "$size" \
        "$(col 1)" "$(col 2)" "$(col 5)" "$(col 3)" "$(col 4)" "$(col 6)" >>"$OUT/results.md"
done
cat "$OUT/results.md"
