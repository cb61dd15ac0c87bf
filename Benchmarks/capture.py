#!/usr/bin/env python3
"""Lossless capture rate: `lanes capture` against tcpdump, same traffic, same run.

On a testbed of its own (one queue), `lanes gen` sends --count packets at each rate
of a ladder to dut:d0, where either `lanes capture -w` (one AF_XDP lane, XDP
redirect) or `tcpdump -w` (AF_PACKET) writes them to a file in the same directory.
The generator's lane is on core 0, the capture's lane (and tcpdump) on core 1; the
capture's writer thread is not pinned. A rate passes when the file holds every
packet sent. On veth the receiver's path pushes back on the sender (AF_XDP copy
mode: the sender's CPU delivers the frame), so the table gives the rate the
generator achieved beside the rate asked for. The two tools alternate at
each rate, --rounds times; the lossless rate of a tool is the highest rate at
which it passed every round. Prints a table and appends it, dated, with the
machine's description, to BENCHMARKS.md (unless --no-append). Needs root and a
release build.
"""
import argparse, json, os, signal, struct, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import ROOT, machine, publish  # noqa: E402

LANES = os.path.join(ROOT, ".build/release/lanes")
TB = "capbench"
DUT = TB + "-dut"


def records(path):
    """Packets in a classic pcap file (either timestamp resolution)."""
    n = 0
    with open(path, "rb") as f:
        data = f.read()
    o = 24
    while o + 16 <= len(data):
        incl = struct.unpack_from("<I", data, o + 8)[0]
        if o + 16 + incl > len(data):
            break
        n += 1
        o += 16 + incl
    return n


def wait_ready(tool, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        out = subprocess.run(["ip", "-n", DUT, "link", "show", "d0"], capture_output=True, text=True).stdout
        if tool == "tcpdump" or "prog/xdp" in out:
            time.sleep(1.0 if tool == "tcpdump" else 0.3)
            return
        time.sleep(0.05)
    raise SystemExit(f"{tool} did not start")


def trial(tool, pps, count, path, tx):
    if tool == "lanes":
        cmd = [LANES, "capture", "--netns", DUT, "d0", "-w", path, "--filter", "udp", "--cores", "1", "--interval", "0", "--json"]
    else:
        cmd = ["ip", "netns", "exec", DUT, "taskset", "-c", "1", "tcpdump", "-i", "d0", "-Q", "in", "-s", "0", "-w", path, "udp"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_ready(tool)
    g = subprocess.run([LANES, "gen", "--testbed", TB, "--queues", "0", "--cores", "0", "--count", str(count), "--rate", f"{pps}",
                        "--tx", tx, "--json"], capture_output=True, text=True)
    gj = json.loads(g.stdout.strip().splitlines()[-1])
    sent = gj["tx_packets"]
    time.sleep(1.0)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=30)
    got = records(path)
    os.unlink(path)
    why = ""
    if tool == "lanes":
        c = json.loads(out.strip().splitlines()[-1])
        why = f"rx {c['rx_packets']}, capture_dropped {c['capture_dropped']}"
    else:
        why = " ".join(l for l in err.splitlines() if "dropped" in l)
    print(f"  achieved {gj['tx_pps']:.0f} pps; {why}", flush=True)
    return sent, got, gj["tx_pps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="100000,200000,300000,400000,600000,800000,1000000")
    ap.add_argument("--count", type=int, default=500000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tx", default="xsk", choices=["xsk", "xdp"], help="the generator's transmit path (xdp: live frames, which the receiver does not slow down)")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    rates = [int(r) for r in a.rates.split(",")]
    subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
    subprocess.run([LANES, "testbed", "up", "--name", TB, "--queues", "1"], check=True, capture_output=True)
    results = {"lanes": {}, "tcpdump": {}}
    d = tempfile.mkdtemp(prefix="lanes-capbench-")
    try:
        for pps in rates:
            for r in range(a.rounds):
                for tool in ("lanes", "tcpdump"):
                    sent, got, achieved = trial(tool, pps, a.count, os.path.join(d, f"{tool}.pcap"), a.tx)
                    results[tool].setdefault(pps, []).append((sent, got, achieved))
                    print(f"{tool:8} {pps:>8} pps round {r + 1}: {got}/{sent} captured", flush=True)
    finally:
        subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
        os.rmdir(d)

    def lossless(tool):
        ok = [min(x for _, _, x in results[tool][p]) for p in rates if all(g == s for s, g, _ in results[tool][p])]
        return max(ok) if ok else 0

    lines = ["| asked pps | lanes capture: captured of sent at achieved pps (rounds) | tcpdump: captured of sent at achieved pps (rounds) |", "|---:|---|---|"]
    for p in rates:
        lines.append(f"| {p} | " + " | ".join(", ".join(f"{g / s * 100:.2f}% at {x / 1e3:.0f}k" for s, g, x in results[t][p]) for t in ("lanes", "tcpdump")) + " |")
    ll, lt = lossless("lanes"), lossless("tcpdump")
    lines.append("")
    lines.append(f"Lossless (every round whole, {a.count} packets of 64 B, one queue, gen --tx {a.tx}; the lowest achieved rate of those rounds): lanes capture {ll:.0f} pps, tcpdump {lt:.0f} pps"
                 + (f" ({ll / lt:.2f}x)" if lt else ""))
    import datetime
    head = [f"## capture: lanes capture vs tcpdump ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "", machine(), ""]
    publish(head + lines, append=not a.no_append)


if __name__ == "__main__":
    main()
