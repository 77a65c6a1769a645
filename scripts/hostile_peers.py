#!/usr/bin/env python3
"""Hostile peers against an HTTP server on loopback, and what they cost it.

    scripts/hostile_peers.py slowloris ADDR PID [--conns N] [--trickle SECS] [--secs SECS]
    scripts/hostile_peers.py oversized ADDR PID [--conns N] [--secs SECS]

slowloris: N connections each send the start of a request head, then one more header byte
every --trickle seconds, never finishing it. Meanwhile an ordinary client sends one GET at
a time on fresh connections and times each answer. Reports, for the slow connections, how
long after its first byte each one was closed by the server; for the ordinary client, its
latency percentiles and failures; and the server's descriptor count (/proc/PID/fd) over
time, so that its return to the baseline shows.

oversized: N connections each send a request whose head announces a body far over any
limit and then keep sending body bytes as fast as the server takes them, ignoring its
answer and its FIN, until a send fails (the server closed). Reports how many bytes the
server took from each after it answered (what the lingering close discarded, plus what the
kernel buffers held), and the server's CPU time and peak RSS over the run.

Only 127.0.0.1/::1 addresses are accepted. Every loop is bounded by --secs. Exit status 0
when the run completed, 1 on a failure to connect or a bad argument.
"""

import argparse
import os
import selectors
import socket
import statistics
import sys
import time


def loopback(addr):
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit(f"{addr}: only loopback addresses are allowed")
    return host, int(port)


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kb(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def ordinary_request(host, port, timeout=5.0):
    """One GET on a fresh connection; returns the seconds to the whole answer, or None."""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            return None
        return time.monotonic() - start
    except OSError:
        return None


def slowloris(args):
    host, port = loopback(args.addr)
    baseline = fd_count(args.pid)
    sel = selectors.DefaultSelector()
    opened = {}
    for _ in range(args.conns):
        s = socket.create_connection((host, port))
        s.setblocking(False)
        s.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        opened[s.fileno()] = (s, time.monotonic())
        sel.register(s, selectors.EVENT_READ)
    print(f"slowloris: {args.conns} slow connections open; server fds {baseline} -> "
          f"{fd_count(args.pid)}")
    closed_after = []
    latencies, failures = [], 0
    fds = []
    start = time.monotonic()
    next_trickle = start + args.trickle
    next_request = start
    next_sample = start
    while time.monotonic() - start < args.secs:
        now = time.monotonic()
        if now >= next_trickle:
            for s, _ in list(opened.values()):
                try:
                    s.send(b"a")
                except OSError:
                    pass
            next_trickle += args.trickle
        if now >= next_request:
            latency = ordinary_request(host, port)
            if latency is None:
                failures += 1
            else:
                latencies.append(latency)
            next_request = time.monotonic() + 0.05
        if now >= next_sample:
            fds.append((round(now - start, 1), fd_count(args.pid)))
            next_sample += 1.0
        for key, _ in sel.select(timeout=0.01):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                _, began = opened.pop(s.fileno())
                closed_after.append(time.monotonic() - began)
                sel.unregister(s)
                s.close()
        if not opened and time.monotonic() - start > 3 and len(fds) > 2 \
                and fds[-1][1] <= baseline:
            break
    still_open = len(opened)
    for s, _ in opened.values():
        s.close()
    print(f"slow connections closed by the server: {len(closed_after)} of {args.conns}; "
          f"still open after {args.secs:.0f} s: {still_open}")
    if closed_after:
        print(f"  closed after their first byte: min {min(closed_after):.2f} s, median "
              f"{statistics.median(closed_after):.2f} s, max {max(closed_after):.2f} s")
    print(f"ordinary client: {len(latencies)} answers, {failures} failures; latency p50 "
          f"{percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} "
          f"ms, max {max(latencies, default=float('nan')) * 1000:.1f} ms")
    print(f"server fds (baseline {baseline}) over time [s, fds]: {fds}")
    print(f"RESULT slowloris conns={args.conns} closed={len(closed_after)} "
          f"max_close_s={max(closed_after, default=-1):.2f} answers={len(latencies)} "
          f"failures={failures} p99_ms={percentile(latencies, 99) * 1000:.1f} "
          f"fds_end={fd_count(args.pid)} fds_baseline={baseline}")


def oversized(args):
    host, port = loopback(args.addr)
    cpu_before = cpu_seconds(args.pid)
    sel = selectors.DefaultSelector()
    sent = {}
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(args.conns):
        s = socket.create_connection((host, port))
        s.setblocking(False)
        s.send(head)
        sent[s.fileno()] = [s, 0, False]
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    peak_rss = rss_kb(args.pid)
    finished = []
    start = time.monotonic()
    while sent and time.monotonic() - start < args.secs:
        for key, events in sel.select(timeout=0.05):
            s = key.fileobj
            state = sent.get(s.fileno())
            if state is None:
                continue
            try:
                if events & selectors.EVENT_READ:
                    if not s.recv(65536):
                        # The server's FIN: a hostile peer ignores it and keeps sending.
                        sel.modify(s, selectors.EVENT_WRITE)
                    state[2] = True  # answered: count what it takes from now on
                if events & selectors.EVENT_WRITE:
                    n = s.send(chunk)
                    if state[2]:
                        state[1] += n
            except OSError:
                sel.unregister(s)
                finished.append(sent.pop(s.fileno())[1])
                s.close()
        peak_rss = max(peak_rss, rss_kb(args.pid))
    elapsed = time.monotonic() - start
    closed = len(finished)
    after = finished + [v[1] for v in sent.values()]
    for v in sent.values():
        v[0].close()
    cpu = cpu_seconds(args.pid) - cpu_before
    print(f"oversized: {args.conns} peers, {closed} closed by the server within "
          f"{elapsed:.1f} s")
    print(f"  bytes taken after the answer, per peer: max {max(after)}, median "
          f"{int(statistics.median(after))} (discard budget + kernel buffers)")
    print(f"  server CPU over the run: {cpu:.2f} s; peak RSS {peak_rss} kB")
    print(f"RESULT oversized peers={args.conns} closed={closed} max_after_answer={max(after)} "
          f"cpu_s={cpu:.2f} peak_rss_kb={peak_rss}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["slowloris", "oversized"])
    parser.add_argument("addr")
    parser.add_argument("pid", type=int)
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--trickle", type=float, default=1.0)
    parser.add_argument("--secs", type=float, default=30.0)
    args = parser.parse_args()
    if args.mode == "slowloris":
        slowloris(args)
    else:
        oversized(args)


if __name__ == "__main__":
    main()
