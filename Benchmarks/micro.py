#!/usr/bin/env python3
"""Turns package-benchmark's markdown output (Benchmarks/run saves it in
.build/microbenchmarks.md) into one dated table: median wall-clock time per
packet or operation, and mallocs per sample above the harness's own (the empty
baseline benchmark). Appends it to BENCHMARKS.md unless --no-append."""
import argparse, datetime, os, re, sys
from report import ROOT, publish

UNITS = {"ns": 1, "μs": 1e3, "us": 1e3, "ms": 1e6}


def per_op(name):
    """Packets or operations one benchmark iteration covers, from its name."""
    m = re.search(r"(\d+) bursts of (\d+)", name)
    if m:
        return int(m.group(1)) * int(m.group(2))
    m = re.search(r"(?:x|burst of )(\d+)", name)
    return int(m.group(1)) if m else 1


def parse(text):
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            name = line[4:].strip()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if name is None or len(cells) < 4:
            continue
        m = re.match(r"Time \(wall clock\) \((\w+)\)", cells[0])
        if m and m.group(1) in UNITS:
            out.setdefault(name, {})["ns"] = float(cells[3]) * UNITS[m.group(1)]  # p50
        if cells[0].startswith("Malloc (total)"):
            out.setdefault(name, {})["mallocs"] = int(cells[3])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file", nargs="?", default=os.path.join(ROOT, ".build/microbenchmarks.md"))
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    res = parse(open(a.file).read())
    base = res.get("baseline (empty)", {})
    if "ns" not in base or "mallocs" not in base:
        sys.exit(f"micro: no baseline benchmark in {a.file}")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: microbenchmarks (package-benchmark, `cd Benchmarks && swift package benchmark`)", "",
             f"Median wall-clock time per sample minus the empty baseline's ({base['ns']:.0f} ns), divided by the packets or "
             f"operations a sample covers; mallocs per sample above the baseline's {base['mallocs']}. "
             "The harness's instruction counter needs a PMU, which this VM does not expose: the lane loop's "
             "instructions per packet come from callgrind (table above).", "",
             "| benchmark | ns per packet or op | mallocs above baseline |", "|---|---:|---:|"]
    for name, m in sorted(res.items()):
        if name == "baseline (empty)" or "ns" not in m:
            continue
        ns = max(m["ns"] - base["ns"], 0) / per_op(name)
        lines.append(f"| {name} | {ns:.2f} | {m.get('mallocs', 0) - base['mallocs']} |")
    publish(lines, append=not a.no_append)

if __name__ == "__main__":
    main()
