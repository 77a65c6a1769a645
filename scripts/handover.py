#!/usr/bin/env python3
"""A hand-over between two echo server processes under load, checked from outside.

    cargo build --release --example echo
    python3 scripts/handover.py [target/release/examples/echo] [--port PORT]

Starts `echo 127.0.0.1:PORT --takeover SOCK`, opens long-lived connections that stream
through it, and keeps opening new connections (one round trip each) from two threads.
Then it starts a second `echo --takeover SOCK`, which takes the listener over, and checks:
no new connection was refused or failed, the long-lived connections kept echoing every
byte on the old process after the hand-over, the old process exited 0 once they were
closed, and the new one serves alone. Prints the counts and exits 1 on any failure.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def start(binary, port, sock):
    proc = subprocess.Popen(
        [binary, f"127.0.0.1:{port}", "--takeover", sock],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("listening on"):
            return proc
    raise SystemExit(f"{binary} exited before listening")


def round_trip(port, n):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        message = f"hello {n}\n".encode()
        s.sendall(message)
        got = b""
        while len(got) < len(message):
            chunk = s.recv(len(message) - len(got))
            if not chunk:
                raise RuntimeError(f"echo {n}: end of stream after {len(got)} bytes")
            got += chunk
        if got != message:
            raise RuntimeError(f"echo {n}: wrong bytes")


def echo_chunk(s, chunk):
    s.sendall(chunk)
    got = b""
    while len(got) < len(chunk):
        part = s.recv(len(chunk) - len(got))
        if not part:
            raise RuntimeError("a long-lived connection was closed")
        got += part
    if got != chunk:
        raise RuntimeError("a long-lived connection lost or changed bytes")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default="target/release/examples/echo")
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    parser.add_argument("--long-lived", type=int, default=50)
    args = parser.parse_args()
    if args.port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    sock = os.path.join(tempfile.mkdtemp(), "echo-handover.sock")

    old = start(args.binary, args.port, sock)
    long_lived = [socket.create_connection(("127.0.0.1", args.port), timeout=10)
                  for _ in range(args.long_lived)]
    chunk = os.urandom(16 * 1024)
    for s in long_lived:
        echo_chunk(s, chunk)

    stop = threading.Event()
    results = []

    def steady(c):
        n, failures = 0, []
        while not stop.is_set():
            try:
                round_trip(args.port, c * 1_000_000 + n)
            except Exception as e:  # refused, reset, timed out, wrong bytes
                failures.append(str(e))
            n += 1
        results.append((n, failures))

    threads = [threading.Thread(target=steady, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    new = start(args.binary, args.port, sock)
    time.sleep(1.0)
    # The old process still serves its own connections, every byte.
    for s in long_lived:
        echo_chunk(s, chunk)
    old_alive = old.poll() is None
    stop.set()
    for t in threads:
        t.join()
    for s in long_lived:
        s.close()
    try:
        old_status = old.wait(timeout=15)
    except subprocess.TimeoutExpired:
        old.kill()
        old_status = "did not exit"
    # The new one serves alone.
    alone_ok = True
    try:
        round_trip(args.port, 0)
    except Exception as e:
        alone_ok = False
        print(f"after the old server exited: {e}")
    new.terminate()
    new_status = new.wait(timeout=15)

    attempts = sum(n for n, _ in results)
    failures = [f for _, fs in results for f in fs]
    print(f"new connections during the hand-over: {attempts}, failed: {len(failures)}")
    for f in failures[:5]:
        print(f"  {f}")
    print(f"long-lived connections on the old process after the hand-over: "
          f"{args.long_lived}, all echoed: {old_alive}")
    print(f"old process exit status: {old_status}; new process after SIGTERM: {new_status}")
    ok = not failures and old_alive and old_status == 0 and alone_ok and new_status == 0
    print("hand-over OK" if ok else "hand-over FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
