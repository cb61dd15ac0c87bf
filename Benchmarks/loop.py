#!/usr/bin/env python3
"""The in-memory lane loop, Swift (lanes bench-loop) against its C reference over
libxdp's inline ring helpers (Benchmarks/cloop/lane_loop.c), alternating in the
same run; then instructions per packet of each under callgrind (deterministic:
the difference between a 3M- and a 1M-packet run over 2M packets, so start-up
and warm-up cancel). Prints medians and ratios; appends them, dated, to BENCHMARKS.md.
With --baseline LANES (the `lanes` of an earlier commit, built with `swift build -c
release` in a worktree), that build runs in every round too: before/after a change,
in the same run."""
import argparse, datetime, json, os, re, shutil, statistics, subprocess, sys
from report import ROOT, host_stalls, machine, publish

LANES = os.path.join(ROOT, ".build/release/lanes")
CLOOP = os.path.join(ROOT, ".build/cloop/lane_loop")


def run(cmd):
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def instructions(cmd):
    """Instructions per packet of `cmd(packets)` under callgrind, or None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    counts = []
    for n in (1_000_000, 3_000_000):
        r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + cmd(n),
                           capture_output=True, text=True, check=True)
        counts.append(int(re.search(r"Collected : (\d+)", r.stderr).group(1)))
    return (counts[1] - counts[0]) / 2_000_000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--packets", type=int, default=200_000_000)
    ap.add_argument("--cpu", type=int, default=os.cpu_count() - 1, help="the core both loops are pinned to")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--baseline", help="an earlier build's lanes binary, run alongside in every round")
    a = ap.parse_args()
    res = {}
    stalls = host_stalls()
    pin = ["taskset", "-c", str(a.cpu)]
    for r in range(a.rounds):
        for app in ["drop", "macswap"]:
            pair = [("swift", [LANES, "bench-loop", "--app", app, "--packets", str(a.packets)]),
                    ("c", [CLOOP, app, str(a.packets)])]
            if a.baseline:
                pair.insert(1, ("baseline", [a.baseline, "bench-loop", "--app", app, "--packets", str(a.packets)]))
            # Swift then C, then C then Swift: drift within a round falls on both.
            for impl, cmd in (pair if r % 2 == 0 else pair[::-1]):
                ns = float(run(pin + cmd)["ns_per_packet"])
                res.setdefault((app, impl), []).append(ns)
                print(f"round {r + 1} {app:8} {impl:5} {ns:.2f} ns/packet", file=sys.stderr)
    instr = {}
    for app in ["drop", "macswap"]:
        instr[(app, "swift")] = instructions(lambda n: [LANES, "bench-loop", "--app", app, "--packets", str(n)])
        instr[(app, "c")] = instructions(lambda n: [CLOOP, app, str(n)])
        if a.baseline:
            instr[(app, "baseline")] = instructions(lambda n: [a.baseline, "bench-loop", "--app", app, "--packets", str(n)])
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: in-memory lane loop, Swift vs C ({machine()})", "",
             f"One core (both pinned to CPU {a.cpu}), bursts of 64, 64-byte packets, fake kernel side in the same thread; "
             f"{a.rounds} rounds of {a.packets // 1_000_000}M packets, Swift and C next to each other in every round. "
             "Time ratios: the median of the per-round ratios (with their range), and the ratio of each side's best round "
             "(a loop that only computes can only be slowed by noise, so its best round is closest to its cost). "
             "Instructions: callgrind, (3M-packet run - 1M-packet run) / 2M: deterministic. " + stalls, "",
             "| app | Swift ns/packet (median, best) | C ns/packet (median, best) | Swift/C time, median of rounds | range | Swift/C, best rounds | Swift instr/packet | C instr/packet |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"

    def row(app, other):
        """The cells both tables share: this build's and `other`'s ns/packet, the per-round ratios."""
        sw, o = res[(app, "swift")], res[(app, other)]
        rs = [x / y for x, y in zip(sw, o)]
        return (f"| {app} | {statistics.median(sw):.2f}, {min(sw):.2f} | {statistics.median(o):.2f}, {min(o):.2f} | "
                f"{statistics.median(rs):.2f}x | {min(rs):.2f}-{max(rs):.2f} | ")

    for app in ["drop", "macswap"]:
        lines.append(row(app, "c") + f"{min(res[(app, 'swift')]) / min(res[(app, 'c')]):.2f}x | "
                     f"{fmt(instr[(app, 'swift')])} | {fmt(instr[(app, 'c')])} |")
    if a.baseline:
        lines += ["", f"Against the baseline build ({a.baseline}), same rounds:", "",
                  "| app | this build ns/packet (median, best) | baseline ns/packet (median, best) | this/baseline, median of rounds | range | instr/packet, this vs baseline |",
                  "|---|---:|---:|---:|---|---:|"]
        for app in ["drop", "macswap"]:
            lines.append(row(app, "baseline") + f"{fmt(instr[(app, 'swift')])} vs {fmt(instr[(app, 'baseline')])} |")
    publish(lines, append=not a.no_append)

if __name__ == "__main__":
    main()
