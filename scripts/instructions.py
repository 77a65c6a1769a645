#!/usr/bin/env python3
"""Instructions per message, server side, and the gate on them (issue 19).

    python3 scripts/instructions.py              # run the benchmark, print the table, gate
    python3 scripts/instructions.py --update     # the same, then commit-ready new baseline
    python3 scripts/instructions.py --margin 5   # a wider margin, in percent

Runs `cargo bench --bench instructions -- --output-format=json` (benches/instructions.rs:
callgrind through gungraun, the server on the counted thread, its client in another), and
prints each benchmark's instructions per message beside the figure committed in
benches/instructions.baseline, and eventmux's figures beside tokio's and mio's for the same
case. Exit status 1 when an eventmux benchmark is more than its margin above its committed
figure, with the before and after figures; 2 when the benchmark could not run. The peers'
figures are shown, never gated.

Two margins: 3% (--margin) for the one-connection rows (`.c1_`), whose counts repeat from
build to build, and 10% (--batched-margin) for the 50-connection rows: there, how many
requests one epoll_wait returns depends on how valgrind interleaves the client's and the
server's threads, and a change anywhere in the binary can tip it between two modes (the
same echo code measured 517 and 540 per message, 506 and 2,150 waits). The one-connection
rows run the same code paths (echo, a framing rule, mini_redis pipelined), so a real rise
shows there first.

The baseline is a text file of `NAME INSTRUCTIONS_PER_MESSAGE` lines (`#` starts a comment),
written by --update; commit it with the change that moved the figures, saying why.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "benches", "instructions.baseline")
# benches/instructions.rs: MESSAGES
MESSAGES = 20_000


def run_benchmark():
    """{name: instructions per message} from one run of the benchmark."""
    command = ["cargo", "bench", "-q", "--bench", "instructions", "--", "--output-format=json"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"instructions: `{' '.join(command)}` failed with status {done.returncode}")
    figures = {}
    for line in done.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        bench = json.loads(line)
        name = f"{bench['function_name']}.{bench['id']}"
        ir = bench["profiles"][0]["data"]["total"]["metrics"]["Ir"]["values"]["new"]
        figures[name] = ir / MESSAGES
    if not figures:
        sys.exit("instructions: the benchmark printed no figures")
    return figures


def read_baseline():
    baseline = {}
    if not os.path.exists(BASELINE):
        return baseline
    with open(BASELINE) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, figure = line.split()
                baseline[name] = float(figure)
    return baseline


def write_baseline(figures):
    with open(BASELINE, "w") as f:
        f.write("# Server-side instructions per message, benches/instructions.rs\n")
        f.write("# (python3 scripts/instructions.py --update); .ci/run fails on a rise past\n")
        f.write("# the margin. Only eventmux's are gated; the peers are for comparison.\n")
        for name in sorted(figures):
            f.write(f"{name} {figures[name]:.1f}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="write the new baseline")
    parser.add_argument("--margin", type=float, default=3.0,
                        help="percent, one-connection rows (3)")
    parser.add_argument("--batched-margin", type=float, default=10.0,
                        help="percent, 50-connection rows (10)")
    args = parser.parse_args()
    figures = run_benchmark()
    baseline = read_baseline()
    print(f"{'benchmark':<28} {'committed':>10} {'now':>10} {'change':>8}")
    regressed = []
    for name in sorted(figures):
        now = figures[name]
        before = baseline.get(name)
        change = f"{(now / before - 1) * 100:+.1f}%" if before else "new"
        print(f"{name:<28} {before if before else '-':>10} {now:>10.1f} {change:>8}")
        gated = name.startswith("eventmux_")
        margin = args.margin if ".c1_" in name else args.batched_margin
        if gated and before and now > before * (1 + margin / 100):
            regressed.append((name, before, now, margin))
    print()
    print("per case, instructions per message (eventmux / tokio / mio):")
    for case in sorted({name.split(".", 1)[1] for name in figures}):
        row = [figures.get(f"{server}.{case}") for server in ("eventmux_echo", "tokio_echo", "mio_echo")]
        if all(row):
            print(f"  echo {case}: {row[0]:.0f} / {row[1]:.0f} / {row[2]:.0f}")
    if args.update:
        write_baseline(figures)
        print(f"wrote {os.path.relpath(BASELINE, ROOT)}")
        return 0
    for name, before, now, margin in regressed:
        print(
            f"REGRESSED {name}: {before:.1f} -> {now:.1f} instructions per message "
            f"({(now / before - 1) * 100:+.1f}%, margin {margin:g}%)"
        )
    if regressed:
        print("If the rise is meant, say why and commit the new figures: "
              "python3 scripts/instructions.py --update")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
