#!/usr/bin/env bash
# Helpers the benchmark scripts share (scripts/compare.sh, scripts/scale.sh): installing
# missing tools, ports, and the CPU accounting of a run. Sourced, not run: the sourcing
# script defines `say` (the prefix of its messages), OUT (where logs go) and the state
# apt_install keeps (SUDO, POLICY_RC, APT_UPDATED).

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
