#!/usr/bin/env python3
"""Checks the examples' contract for signals: every example server, with a client
connected, prints `shutting down` on SIGTERM (and on SIGINT), finishes its connections and
exits 0; and `pipe_child` exits with its command's status.

    cargo build --examples
    python3 scripts/example_signals.py [target/debug/examples]

`.ci/run` runs it after `cargo test` (which builds the examples). Exits 1 on any failure.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# name, how its client connects (tcp, udp or unix), extra arguments
SERVERS = [
    ("echo", "tcp", []),
    ("echo", "tcp", ["--threads", "2"]),
    ("echo", "tcp", ["--threads", "2", "--spread", "fewest"]),
    ("chat", "tcp", []),
    ("lenprefix_echo", "tcp", []),
    ("mini_redis", "tcp", []),
    ("memcached", "tcp", []),
    ("http_hello", "tcp", []),
    ("http_hello", "tcp", ["--threads", "2", "--pin"]),
    ("udp_echo", "udp", []),
    ("udp_echo", "udp", ["--threads", "2"]),
    ("udp_echo_plain", "udp", []),
    ("unix_echo", "unix", []),
]


def check_server(directory, name, family, extra, signum):
    label = " ".join([name] + extra)
    if family == "unix":
        addr = os.path.join(tempfile.mkdtemp(), f"{name}.sock")
    else:
        addr = "127.0.0.1:0"
    proc = subprocess.Popen([os.path.join(directory, name), addr] + extra,
                            stdout=subprocess.PIPE, text=True)
    bound = None
    for line in proc.stdout:
        if line.startswith("listening on "):
            bound = line.split("listening on ", 1)[1].strip()
            break
    if bound is None:
        return f"{label}: exited before `listening on`"
    if family == "tcp":
        host, port = bound.rsplit(":", 1)
        client = socket.create_connection((host, int(port)), timeout=5)
        if name == "echo":  # it answers, on whichever thread serves it
            client.sendall(b"ping")
            if client.recv(4) != b"ping":
                return f"{label}: no echo"
    elif family == "udp":
        host, port = bound.rsplit(":", 1)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)
        client.sendto(b"ping", (host, int(port)))
        if client.recvfrom(16)[0] != b"ping":
            return f"{label}: no echo"
    else:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(bound.removeprefix("unix://"))
    time.sleep(0.2)
    proc.send_signal(signum)
    time.sleep(0.3)
    client.close()  # a server that lets its clients finish sees this one go now
    try:
        status = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return f"{label}: still running 20 s after {signal.Signals(signum).name}"
    rest = proc.stdout.read()
    if "shutting down" not in rest:
        return f"{label}: no `shutting down` after {signal.Signals(signum).name} (printed {rest!r})"
    if status != 0:
        return f"{label}: exit status {status} after {signal.Signals(signum).name}"
    return None


def check_pipe_child(directory):
    binary = os.path.join(directory, "pipe_child")
    run = subprocess.run([binary, "sh", "-c", "echo out; echo err >&2; exit 3"],
                         capture_output=True, text=True, timeout=20)
    want = ["[stdout] out", "[stderr] err", "[exit] exit status: 3"]
    lines = run.stdout.splitlines()
    if run.returncode != 3 or sorted(lines[:2]) != sorted(want[:2]) or lines[2:] != want[2:]:
        return f"pipe_child: status {run.returncode}, printed {run.stdout!r}"
    return None


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "target/debug/examples"
    failures = []
    for name, family, extra in SERVERS:
        for signum in (signal.SIGTERM, signal.SIGINT):
            problem = check_server(directory, name, family, extra, signum)
            label = " ".join([name] + extra)
            print(f"{label} {signal.Signals(signum).name}: {problem or 'drained, exit 0'}")
            if problem:
                failures.append(problem)
    problem = check_pipe_child(directory)
    print(f"pipe_child: {problem or 'exit status 3 reported and returned'}")
    if problem:
        failures.append(problem)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
