#!/usr/bin/env bash
# Helpers the benchmark scripts share (scripts/compare.sh, scripts/scale.sh): installing
# missing tools, ports, and the CPU accounting of a run. Sourced, not run: the sourcing
# script defines `say` (the prefix of its messages), OUT (where logs go), PIN_SERVER, PIDS
# and the state apt_install keeps (SUDO, POLICY_RC, APT_UPDATED).

apt_install() {
    # Keep package scripts from starting the services they install (a stray redis on
    # 6379, an nginx on 80): the standard policy-rc.d "deny", for the install only.
    if [ -z "$SUDO" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod +x "$POLICY_RC"
    fi
    local status=0
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$OUT/apt.log" 2>&1 || status=$?
    if [ "$status" != 0 ] && [ -z "$APT_UPDATED" ]; then
        APT_UPDATED=1
        say "apt-get install $* failed; running apt-get update once"
        $SUDO apt-get update -q >>"$OUT/apt.log" 2>&1 || true
        status=0
        $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$OUT/apt.log" 2>&1 || status=$?
    fi
    if [ -n "$POLICY_RC" ]; then
        rm -f "$POLICY_RC"
        POLICY_RC=
    fi
    return "$status"
}

# need COMMAND PACKAGE: installs PACKAGE if COMMAND is missing; fails if it still is.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    if ! apt_install "$2" || ! command -v "$1" >/dev/null 2>&1; then
        say "note: $1 is not available (see $OUT/apt.log)"
        return 1
    fi
}

# A loopback port nobody listens on, below Linux's ephemeral range.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    say "no free port found"
    return 1
}

# wait_port PORT PID: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    say "the server expected on port $1 did not start"
    return 1
}

# CPU time (clock ticks) used so far by process PID and its children (nginx's worker).
cpu_ticks() {
    local total=0 p ticks
    for p in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        ticks=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat 2>/dev/null) || ticks=0
        total=$((total + ${ticks:-0}))
    done
    echo "$total"
}

# CPU time (clock ticks) all CPUs have been busy, for anyone (user, system, interrupts,
# steal).
machine_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# children_cpu FILE: CPU seconds used by this shell's finished children, from the output
# of bash's `times` (which must run in this shell, not in a $(...) subshell) saved in FILE.
children_cpu() {
    awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}

# The servers of one round in rotated order: round r starts with the r-th server.
rotate() {
    local round=$1
    shift
    local n=$# i
    for ((i = 0; i < n; i++)); do
        local k=$(((round + i) % n + 1))
        echo "${!k}"
    done
}

# start_server BINARY [ARG...]: runs BINARY on 127.0.0.1:0 (with PIN_SERVER, the servers'
# taskset), with ARGs after the address, and sets ADDR to the address it prints ("listening on
# ADDR") and PID[NAME] to its process id, NAME being the binary's file name.
ADDR=
declare -A PID
start_server() {
    local name=${1##*/}
    local log=$OUT/$name.log
    # Emptied here, not only by the redirection below: that happens in the background job,
    # maybe after the first look for "listening on", which would find the last run's address.
    : >"$log"
    ${PIN_SERVER[@]+"${PIN_SERVER[@]}"} "$1" 127.0.0.1:0 "${@:2}" >"$log" 2>&1 &
    PIDS+=($!)
    local pid=$!
    PID[$name]=$pid
    for _ in $(seq 100); do
        ADDR=$(sed -n 's/^listening on //p' "$log")
        if [ -n "$ADDR" ]; then return 0; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    say "$name did not start; its log:"
    cat "$log" >&2
    return 1
}

# measure SERVER_PID COMMAND...: runs a load generator (its output in $OUT/last.out) and
# sets CPU to "cpu_seconds wall_seconds server client other": the server's CPU seconds
# during the run, the run's length, and the share of one CPU the server, the load
# generator and everything else used. A run during which others kept more than 10% of a
# CPU busy is repeated, at most twice.
CPU=
measure() {
    local pid=$1 try s0 m0 c0 t0 s1 m1 c1 t1 other
    shift
    for try in 1 2 3; do
        s0=$(cpu_ticks "$pid") m0=$(machine_ticks) t0=$(date +%s.%N)
        times >"$OUT/times.0"
        "$@" >"$OUT/last.out" || true
        times >"$OUT/times.1"
        t1=$(date +%s.%N) m1=$(machine_ticks) s1=$(cpu_ticks "$pid")
        c0=$(children_cpu "$OUT/times.0") c1=$(children_cpu "$OUT/times.1")
        CPU=$(awk -v s="$((s1 - s0))" -v m="$((m1 - m0))" -v c0="$c0" -v c1="$c1" \
            -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { server = s / hz / t; client = (c1 - c0) / t; other = m / hz / t - server - client
                     printf "%.2f %.2f %.2f %.2f %.2f", s / hz, t, server, client, (other < 0 ? 0 : other) }')
        other=${CPU##* }
        if awk -v o="$other" 'BEGIN { exit !(o <= 0.10) }'; then return 0; fi
        say "note: other programs used $other of a CPU during that run$([ "$try" -lt 3 ] && echo '; repeating it')"
    done
}
