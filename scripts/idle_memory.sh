#!/usr/bin/env bash
# Server memory per connection: how much resident memory an echo server holds for each
# open connection, idle from the start or idle again after one 64 KiB echo.
#
#   scripts/idle_memory.sh [SERVER_BINARY] [N] [MODE]
#
#   SERVER_BINARY  target/release/examples/echo (relative to the repo root) by default. Any
#                  server that takes its listen address as first argument and prints
#                  `listening on ADDR` on stdout once ready will do (echo, or the peers
#                  target/release/mio_echo and tokio_echo of the loadgen crate). Build it
#                  first: cargo build --release --examples (cargo build --release -p loadgen)
#   N              connections, 19000 by default. Server and client each need N + a few
#                  descriptors: the script raises `ulimit -n` to the hard limit (20000 here).
#   MODE           idle     connect and never send (the default);
#                  echo64k  each connection sends 64 KiB, reads the 64 KiB echo back in full
#                           (checked byte for byte), then stays idle.
#
# Steps: start the server on 127.0.0.1:0 (the kernel picks the port; loopback only), wait
# for `listening on`, wait IDLE_MEMORY_SETTLE seconds and read VmRSS and RssAnon from
# /proc/PID/status (the baseline); open the N connections from a separate python3 client
# (non-blocking sockets and selectors, at most IDLE_MEMORY_WINDOW connects or echoes under
# way at once); wait until the server holds N more descriptors than at the baseline (it has
# accepted them all) and, for echo64k, until every echo is read back; wait
# IDLE_MEMORY_SETTLE seconds and read the figures again. Prints the raw figures and
# (RSS - baseline) / N in bytes per connection for VmRSS and RssAnon, then a last line
# `RESULT ...` for other scripts to read. Both processes are stopped (server first) and the
# temporary files removed on every exit, including errors and Ctrl-C.
#
# Environment (optional):
#   IDLE_MEMORY_WINDOW   512  connects (and, in echo64k, echo exchanges) in progress at once
#   IDLE_MEMORY_SETTLE   1    seconds to wait before each RSS reading
#   IDLE_MEMORY_TIMEOUT  300  seconds allowed for connecting, accepting and echoing
#
# Exit status: 0 on success, 1 if the server or client fails or something times out, 2 on
# bad arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER=${1:-$ROOT/target/release/examples/echo}
N=${2:-19000}
MODE=${3:-idle}
WINDOW=${IDLE_MEMORY_WINDOW:-512}
SETTLE=${IDLE_MEMORY_SETTLE:-1}
TIMEOUT=${IDLE_MEMORY_TIMEOUT:-300}

say() { echo "idle_memory: $*" >&2; }
die() {
    say "$*"
    exit 1
}
usage() {
    say "$1"
    say "usage: scripts/idle_memory.sh [SERVER_BINARY] [N] [MODE]   (MODE: idle or echo64k)"
    exit 2
}

case $N in '' | *[!0-9]* | 0) usage "N must be a positive whole number, not '$N'" ;; esac
case $MODE in idle | echo64k) ;; *) usage "MODE must be idle or echo64k, not '$MODE'" ;; esac
case $WINDOW in '' | *[!0-9]* | 0) usage "IDLE_MEMORY_WINDOW must be a positive whole number" ;; esac
case $TIMEOUT in '' | *[!0-9]* | 0) usage "IDLE_MEMORY_TIMEOUT must be a positive whole number" ;; esac
case $SETTLE in '' | *[!0-9.]*) usage "IDLE_MEMORY_SETTLE must be a number of seconds" ;; esac
[ -x "$SERVER" ] && [ -f "$SERVER" ] ||
    usage "no executable server at $SERVER (cargo build --release --examples)"
command -v python3 >/dev/null || die "python3 is needed for the client"

# Descriptors: raised to the hard limit here, so that the server and the client (both
# children of this shell) inherit it.
HARD=$(ulimit -Hn)
if [ "$HARD" = unlimited ]; then HARD=$((N + 1024)); fi
ulimit -n "$HARD" || die "cannot raise ulimit -n to $HARD"
if [ "$HARD" -lt $((N + 32)) ]; then
    die "ulimit -n is at most $HARD: too few descriptors for $N connections (N + 32 needed)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/idle_memory.XXXXXX")
SERVER_PID=
CLIENT_PID=

cleanup() {
    local status=$?
    # The server first: its sockets then take the TIME_WAIT, which leaves the client's
    # ephemeral ports free for the next run.
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$CLIENT_PID" ]; then
        kill "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    if [ "$status" != 0 ]; then
        local log
        for log in server.err client.err; do
            if [ -s "$TMP/$log" ]; then
                say "$log:"
                tail -n 20 "$TMP/$log" >&2
            fi
        done
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# status_kb PID FIELD: FIELD of /proc/PID/status in kB (0 if the kernel lacks it).
status_kb() {
    awk -v field="$2:" '$1 == field { print $2; found = 1 } END { if (!found) print 0 }' \
        "/proc/$1/status"
}

# fd_count PID: descriptors open in process PID.
fd_count() {
    local fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}

alive() { kill -0 "$1" 2>/dev/null; }

# ----- the client ------------------------------------------------------------------------

cat >"$TMP/client.py" <<'PYTHON'
"""Opens N connections to ADDR, at most WINDOW connects under way at once; in echo64k mode
then sends 64 KiB on each and reads the echo back (WINDOW exchanges at once), checking every
byte. Prints `connected N`, then (echo64k) `echoed N`, then `ready`, and keeps every
connection open, idle, until it is killed."""
import errno
import os
import selectors
import signal
import socket
import sys

addr, n, mode, window = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
host, port = addr.rsplit(":", 1)
target = (host.strip("[]"), int(port))
PAYLOAD = os.urandom(64 * 1024)


def fail(message):
    print(f"client: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def report(line):
    print(line, flush=True)


sel = selectors.DefaultSelector()
socks = []

# Connect: keep up to `window` non-blocking connects in progress.
started = 0
pending = 0
done = 0
while done < n:
    while started < n and pending < window:
        s = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET)
        s.setblocking(False)
        err = s.connect_ex(target)
        started += 1
        if err == 0:
            socks.append(s)
            done += 1
        elif err == errno.EINPROGRESS:
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
        else:
            fail(f"connect {started}: {os.strerror(err)}")
    if pending == 0:
        continue
    for key, _ in sel.select(timeout=30):
        s = key.fileobj
        sel.unregister(s)
        pending -= 1
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            fail(f"connect: {os.strerror(err)}")
        socks.append(s)
        done += 1
report(f"connected {len(socks)}")

if mode == "echo64k":
    size = len(PAYLOAD)
    payload = memoryview(PAYLOAD)
    state = {}  # socket -> [bytes sent, bytearray received, bytes received]
    queue = iter(socks)
    active = 0
    echoed = 0

    def start_one():
        s = next(queue, None)
        if s is None:
            return False
        state[s] = [0, bytearray(size), 0]
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        return True

    while active < window and start_one():
        active += 1
    while echoed < n:
        events = sel.select(timeout=30)
        if not events:
            fail(f"no progress for 30 s: {echoed} of {n} echoes complete")
        for key, mask in events:
            s = key.fileobj
            st = state[s]
            if mask & selectors.EVENT_WRITE and st[0] < size:
                try:
                    st[0] += s.send(payload[st[0]:])
                except BlockingIOError:
                    pass
                if st[0] == size:
                    sel.modify(s, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                view = memoryview(st[1])
                while st[2] < size:
                    try:
                        got = s.recv_into(view[st[2]:])
                    except BlockingIOError:
                        break
                    if got == 0:
                        fail(f"the server closed a connection after {st[2]} echoed bytes")
                    st[2] += got
                if st[2] == size:
                    if st[1] != PAYLOAD:
                        fail("an echo differs from what was sent")
                    sel.unregister(s)
                    del state[s]
                    echoed += 1
                    if not start_one():
                        active -= 1
    report(f"echoed {echoed}")

report("ready")
while True:
    signal.pause()
PYTHON

# ----- the run ---------------------------------------------------------------------------

# wait_until DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds; fails if
# the server or client dies or IDLE_MEMORY_TIMEOUT passes.
wait_until() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        alive "$SERVER_PID" || die "the server exited while waiting for $what"
        if [ -n "$CLIENT_PID" ] && ! alive "$CLIENT_PID"; then
            die "the client exited while waiting for $what"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${TIMEOUT} s waiting for $what"
        sleep 0.1
    done
}

"$SERVER" 127.0.0.1:0 >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
server_listening() { grep -q '^listening on ' "$TMP/server.out"; }
wait_until "the server to listen" server_listening
ADDR=$(sed -n 's/^listening on //p' "$TMP/server.out" | head -n 1)
case $ADDR in 127.0.0.1:* | "[::1]:"*) ;; *) die "the server listens on '$ADDR', not loopback" ;; esac

sleep "$SETTLE"
BASE_RSS=$(status_kb "$SERVER_PID" VmRSS)
BASE_ANON=$(status_kb "$SERVER_PID" RssAnon)
BASE_FDS=$(fd_count "$SERVER_PID")

python3 "$TMP/client.py" "$ADDR" "$N" "$MODE" "$WINDOW" >"$TMP/client.out" 2>"$TMP/client.err" &
CLIENT_PID=$!
client_ready() { grep -q '^ready$' "$TMP/client.out"; }
all_accepted() { [ "$(fd_count "$SERVER_PID")" -ge $((BASE_FDS + N)) ]; }
wait_until "the client's $N connections (and echoes)" client_ready
wait_until "the server to accept $N connections" all_accepted

sleep "$SETTLE"
alive "$CLIENT_PID" || die "the client exited before the measurement"
RSS=$(status_kb "$SERVER_PID" VmRSS)
ANON=$(status_kb "$SERVER_PID" RssAnon)
HWM=$(status_kb "$SERVER_PID" VmHWM)
FDS=$(fd_count "$SERVER_PID")
[ "$FDS" -ge $((BASE_FDS + N)) ] ||
    die "the server holds $FDS descriptors, fewer than $BASE_FDS + $N: it closed connections"

per_conn() { awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'; }
RSS_PER=$(per_conn "$RSS" "$BASE_RSS")
ANON_PER=$(per_conn "$ANON" "$BASE_ANON")

echo "server:   $SERVER on $ADDR (pid $SERVER_PID)"
echo "load:     $N connections, mode $MODE, window $WINDOW, settle ${SETTLE} s"
echo "baseline: VmRSS $BASE_RSS kB, RssAnon $BASE_ANON kB, $BASE_FDS fds"
echo "loaded:   VmRSS $RSS kB, RssAnon $ANON kB, $FDS fds (peak VmHWM $HWM kB)"
echo "per connection: VmRSS $RSS_PER B, RssAnon $ANON_PER B"
echo "RESULT mode=$MODE n=$N vmrss_per_conn=$RSS_PER rssanon_per_conn=$ANON_PER" \
    "base_vmrss_kb=$BASE_RSS base_rssanon_kb=$BASE_ANON vmrss_kb=$RSS rssanon_kb=$ANON" \
    "vmhwm_kb=$HWM"
