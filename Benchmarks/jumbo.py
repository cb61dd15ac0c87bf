#!/usr/bin/env python3
"""Jumbo frames against 64-byte frames on the testbed at MTU 9000, in one run.

  gen: lanes gen --tx xsk (1 lane, core 0) into the XDP sink on dut:d0
  fwd: gen:g0 -> dut:d0 -> lanes fwd io (core 1) -> dut:d1 -> the XDP sink on sink:s0

Each at 64 bytes with MTU 1500 (lanes and testpmd's net_af_xdp, DPDK 22.11),
at 64 bytes with MTU 9000 (lanes: the sockets then bind multi-buffer) and at 9000
bytes with MTU 9000 (a 9000-byte frame is 5 AF_XDP buffers of 2048-byte frames,
XDP_USE_SG). testpmd is not run at MTU 9000: its AF_XDP port refuses an MTU over
3542, and its default XDP program is not frags-aware (veth would run it generic);
its refusal of 9000-byte frames is tried once and reported. Rates are the sink's median full seconds; medians over --rounds, the
order reversed every other round. Gbps = pps x frame bytes x 8 (no FCS,
preamble or gap: a veth has none).

Usage: sudo python3 Benchmarks/jumbo.py [--rounds 3] [--seconds 3] [--no-append]
"""
import argparse, datetime, os, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
import peers  # noqa: E402
from peers import LANES, TB, GEN, DUT, SINK, bg, stop, measure, sink, sink_rate, xdp_off, testpmd, testpmd_fwd, sh  # noqa: E402
from report import ROOT, host_stalls, machine, publish  # noqa: E402


def trial(test, kind, size, mtu, seconds):
    sh([LANES, "testbed", "up", "--name", TB, "--queues", "2", "--mtu", str(mtu)])
    xdp_off(DUT, "d0"); xdp_off(DUT, "d1")
    gen_cmd = [LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--size", str(size), "--interval", "0"]
    if test == "gen":
        s = sink(DUT, "d0")
        if kind == "lanes":
            p = bg(gen_cmd)
            measure(p, seconds, warmup=1.0)
            stop(p)
        else:
            testpmd(GEN, "g0", "txonly", "0,1", "1", "jumbo-tx", seconds)
    else:
        s = sink(SINK, "s0")
        g = bg(gen_cmd)
        if kind == "lanes":
            p = bg([LANES, "fwd", "d0", "d1", "--netns", DUT, "--mode", "io", "--queues", "0", "--cores", "1", "--filter", "udp", "--interval", "0"])
            measure(p, seconds)
            stop(p)
        else:
            testpmd_fwd(seconds)
        stop(g)
    out, _ = stop(s)
    return sink_rate(out)


def testpmd_at_9000():
    """What testpmd's net_af_xdp does with 9000-byte frames: txonly asked for them."""
    cmd = ["ip", "netns", "exec", GEN, "timeout", "8", "dpdk-testpmd", "-l", "0,1", "--main-lcore", "1", "--no-huge", "-m", "512", "--no-pci",
           "--file-prefix", "jumbo-9k", "--log-level", "*:error", "--vdev", "net_af_xdp0,iface=g0,start_queue=0,queue_count=1", "--",
           "--total-num-mbufs", "8192", "--forward-mode=txonly", "--txpkts=9000", "--max-pkt-len=9000", "--auto-start", "--stats-period", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l.strip() for l in (r.stdout + r.stderr).splitlines() if any(w in l.lower() for w in ("error", "invalid", "fail", "exceed", "mtu", "too"))]
    return lines[:3] or [f"exit {r.returncode}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("jumbo: needs root")
    sh(["swift", "build", "-c", "release"], cwd=ROOT)
    print(host_stalls(), file=sys.stderr)
    results = {}
    try:
        plan = [(t, k, size, mtu) for t in ("gen", "fwd")
                for k, size, mtu in (("lanes", 64, 1500), ("testpmd", 64, 1500), ("lanes", 64, 9000), ("lanes", 9000, 9000))]
        for r in range(a.rounds):
            for test, kind, size, mtu in (plan if r % 2 == 0 else list(reversed(plan))):
                rate = trial(test, kind, size, mtu, a.seconds)
                results.setdefault((test, kind, size, mtu), []).append(rate)
                print(f"{test} round {r + 1} {kind} {size} B at MTU {mtu}: {rate / 1e6:.3f} Mpps, {rate * size * 8 / 1e9:.2f} Gbps", file=sys.stderr)
        sh([LANES, "testbed", "up", "--name", TB, "--queues", "2", "--mtu", "9000"])
        refusal = testpmd_at_9000()
    finally:
        subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
        for prefix in ["jumbo-tx", "jumbo-9k", "peers-io"]:
            subprocess.run(["rm", "-rf", f"/var/run/dpdk/{prefix}"])

    def med(k):
        return statistics.median(results[k])

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: jumbo frames, {machine()}, veth copy mode", "",
             f"`Benchmarks/jumbo.py --rounds {a.rounds} --seconds {a.seconds:g}`: medians of the sink's full seconds; "
             "9000-byte frames are 5 AF_XDP buffers (2048-byte frames, XDP_USE_SG).", "",
             "| path | frame | MTU | lanes Mpps | lanes Gbps | testpmd Mpps | lanes / testpmd |", "|---|---:|---:|---:|---:|---:|---:|"]
    for test, label in [("gen", "gen (txonly, 1 core)"), ("fwd", "fwd io d0 -> d1 (1 core)")]:
        for size, mtu in ((64, 1500), (64, 9000), (9000, 9000)):
            l = med((test, "lanes", size, mtu))
            t = med((test, "testpmd", size, mtu)) if (test, "testpmd", size, mtu) in results else None
            lines.append(f"| {label} | {size} | {mtu} | {l / 1e6:.3f} | {l * size * 8 / 1e9:.2f} | "
                         + (f"{t / 1e6:.3f} | {l / t:.2f}x |" if t else "not run | - |"))
    lines += ["", f"testpmd (DPDK 22.11 net_af_xdp) asked for 9000-byte frames: {'; '.join(refusal)}", ""]
    publish(lines, append=not a.no_append)


if __name__ == "__main__":
    main()
