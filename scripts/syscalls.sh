#!/usr/bin/env bash
# System calls per message of the echo example under load (issue 19's "no syscall added"):
# the server runs under `strace -c -f` on CPU 0, loadgen drives it from CPU 1, and the
# server's calls are divided by the messages loadgen counted (no warm-up, so that every
# message the server handled is counted).
#
#   scripts/syscalls.sh                  # 50 connections, depth 1, 3 s
#   scripts/syscalls.sh 1 1 3            # CONNS DEPTH SECS
#
# strace slows the server, so the loop waits less often empty-handed than it would: the
# `epoll_pwait` share is an upper bound; read and send are exact. Needs strace and taskset
# (skipped, saying so, when missing).
set -euo pipefail
CONNS=${1:-50}
DEPTH=${2:-1}
SECS=${3:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for tool in strace taskset; do
  if ! command -v "$tool" >/dev/null; then
    echo "syscalls: SKIPPED, $tool is not installed (apt-get install strace util-linux)"
    exit 0
  fi
done
cd "$ROOT"
cargo build -q --release --example echo
cargo build -q --release -p loadgen
OUT=$ROOT/target/syscalls
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c 0 strace -c -f -o "$OUT/strace.txt" target/release/examples/echo "127.0.0.1:$PORT" \
  >"$OUT/echo.out" 2>"$OUT/echo.err" &
STRACE=$!
for _ in $(seq 100); do
  grep -q "listening on" "$OUT/echo.out" 2>/dev/null && break
  kill -0 "$STRACE" 2>/dev/null || { echo "syscalls: the echo server exited:" >&2; cat "$OUT/echo.err" >&2; exit 1; }
  sleep 0.1
done
taskset -c 1 target/release/loadgen "127.0.0.1:$PORT" --conns "$CONNS" --depth "$DEPTH" \
  --secs "$SECS" --warmup 0 >"$OUT/loadgen.out"
# The echo server (strace's child; strace itself must not be signalled) drains on
# SIGTERM; its last client is gone, so it exits and strace writes its table.
pkill -TERM -P "$STRACE" || true
wait "$STRACE" || true
MESSAGES=$(grep -oE 'echoed [0-9]+ messages' "$OUT/loadgen.out" | grep -oE '[0-9]+')
python3 - "$OUT/strace.txt" "$MESSAGES" "$CONNS" "$DEPTH" <<'PY'
import sys
path, messages, conns, depth = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = {}
for line in open(path):
    parts = line.split()
    # % time, seconds, usecs/call, calls, [errors], syscall
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
        calls[parts[-1]] = int(parts[3])
total = sum(calls.values())
print(f"echo, {conns} connections x depth {depth}: {messages} messages")
for name, n in sorted(calls.items(), key=lambda kv: -kv[1])[:8]:
    print(f"  {name:<14} {n:>9}  {n / messages:.3f} per message")
print(f"  {'all':<14} {total:>9}  {total / messages:.3f} per message")
PY
