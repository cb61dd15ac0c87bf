#!/usr/bin/env python3
"""One-way latency through the forwarding appliance: lanes fwd --latency on both
paths (--path xsk, the lanes; --path xdp, forwarded in the XDP program) against
testpmd io forwarding (net_af_xdp on both ports), same generator, same receiver,
same run.

  gen:g0 -> dut:d0 -> forwarder (core 1, alone) -> dut:d1 -> sink:s0

The forwarder has core 1 to itself; the generator (lanes gen --tx xsk, signed
packets, 4 flows) and the receiver (lanes gen --rx-only --rx xdp on s0, which
timestamps in XDP) share core 0. Both forwarders do io forwarding (no header
edits: testpmd io does none). Each forwarder's maximum is its receiver rate with
the generator unpaced; the load points are 10%, 50% and 90% of it. Reported:
p50, p99, p99.9 of one-way latency (CLOCK_MONOTONIC at the generator's TX to the
receiver's XDP program), loss, and lanes/testpmd ratios, medians over --rounds
(order reversed every other round).

Usage: sudo python3 Benchmarks/latency.py [--rounds 3] [--seconds 3] [--no-append]
"""
import argparse, datetime, json, os, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
from peers import LANES, TB, GEN, DUT, SINK, bg, stop, sh, xdp_off, wait_xdp  # noqa: E402
from report import ROOT, host_stalls, machine, publish  # noqa: E402


def forwarder(kind):
    if kind == "lanes-xdp":
        # io forwarding in the XDP program (fwd --path xdp): it runs in d0's receive poll, not on core 1.
        return bg([LANES, "fwd", "d0", "d1", "--netns", DUT, "--mode", "io", "--path", "xdp", "--latency",
                   "--filter", "udp", "--interval", "0"])
    if kind == "lanes":
        return bg([LANES, "fwd", "d0", "d1", "--netns", DUT, "--mode", "io", "--latency", "--queues", "0", "--cores", "1",
                   "--filter", "udp", "--interval", "0"])
    return bg(["ip", "netns", "exec", DUT, "dpdk-testpmd", "-l", "0,1", "--main-lcore", "0", "--no-huge", "-m", "512", "--no-pci",
               "--file-prefix", "lat-io", "--log-level", "*:error",
               "--vdev", "net_af_xdp0,iface=d0,start_queue=0,queue_count=1",
               "--vdev", "net_af_xdp1,iface=d1,start_queue=0,queue_count=1", "--",
               "--total-num-mbufs", "16384", "--forward-mode=io", "--auto-start", "--stats-period", "1"])


def trial(kind, rate, seconds):
    """One run: forwarder up, receiver on s0, generator at `rate` (None: unpaced). Returns the receiver's report."""
    xdp_off(DUT, "d0"); xdp_off(DUT, "d1"); xdp_off(SINK, "s0")
    f = forwarder(kind)
    wait_xdp(DUT, "d0")
    time.sleep(1.0 if kind == "testpmd" else 0.3)
    rx = bg([LANES, "gen", "s0", "--netns", SINK, "--rx-only", "--rx", "xdp", "--flows", "4", "--queues", "0", "--cores", "0",
             "--interval", "0", "--json"])
    wait_xdp(SINK, "s0")
    gen = [LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--flows", "4",
           "--duration", str(seconds), "--interval", "0", "--json"]
    if rate:
        gen += ["--rate", str(int(rate))]
    g = subprocess.run(gen, capture_output=True, text=True)
    time.sleep(0.5)
    out, _ = stop(rx)
    stop(f)
    subprocess.run(["rm", "-rf", "/var/run/dpdk/lat-io"])
    rep = json.loads(out.strip().splitlines()[-1])
    sent = json.loads(g.stdout.strip().splitlines()[-1])["tx_packets"] if g.returncode == 0 else 0
    rep["sent"] = sent
    rep["span_s"] = json.loads(g.stdout.strip().splitlines()[-1]).get("sending_s", seconds) if g.returncode == 0 else seconds
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("latency: needs root")
    sh(["swift", "build", "-c", "release"], cwd=ROOT)
    stalls = host_stalls()
    print(stalls, file=sys.stderr)
    sh([LANES, "testbed", "up", "--name", TB, "--queues", "2"])
    kinds = ["lanes", "lanes-xdp", "testpmd"]
    fracs = [0.1, 0.5, 0.9]
    maxima, points = {}, {}
    try:
        for k in kinds:
            reps = [trial(k, None, a.seconds) for _ in range(2)]
            maxima[k] = statistics.median(r["rx_packets"] / max(r["span_s"], 1e-9) for r in reps)
            print(f"{k}: maximum {maxima[k] / 1e6:.3f} Mpps", file=sys.stderr)
        for r in range(a.rounds):
            for k in (kinds if r % 2 == 0 else list(reversed(kinds))):
                for f in fracs:
                    rep = trial(k, f * maxima[k], a.seconds)
                    lat = rep.get("latency") or {}
                    points.setdefault((k, f), []).append(rep)
                    print(f"round {r + 1} {k} at {f:.0%} ({f * maxima[k] / 1e3:.0f} kpps): p50 {lat.get('p50_ns', 0) / 1e3:.1f} us, "
                          f"p99 {lat.get('p99_ns', 0) / 1e3:.1f} us, p99.9 {lat.get('p999_ns', 0) / 1e3:.1f} us, "
                          f"lost {rep.get('lost')} of {rep.get('sent')}", file=sys.stderr)
    finally:
        subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
        subprocess.run(["rm", "-rf", "/var/run/dpdk/lat-io"])

    def med(k, f, key):
        return statistics.median((r.get("latency") or {}).get(key, 0) for r in points[(k, f)]) / 1e3

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: forwarding latency, lanes fwd --latency (--path xsk and --path xdp) vs testpmd io, {machine()}, veth copy mode", "",
             f"`Benchmarks/latency.py --rounds {a.rounds} --seconds {a.seconds:g}`: the lanes and testpmd forwarders alone on core 1 "
             "(the xdp path forwards in d0's receive poll, wherever that runs), generator and XDP receiver on core 0; one-way latency "
             "from the generator's TX timestamp to the receiver's XDP program; medians over rounds. Maxima (unpaced generator): "
             + ", ".join(f"{k} {maxima[k] / 1e6:.3f} Mpps" for k in kinds) + f". {stalls}", "",
             "| load | lanes xsk p50 / p99 / p99.9 us | lanes xdp p50 / p99 / p99.9 us | testpmd p50 / p99 / p99.9 us "
             "| xsk/testpmd p50, p99, p99.9 | xdp/testpmd p50, p99, p99.9 | xdp/xsk p50, p99, p99.9 | lost xsk / xdp / testpmd |",
             "|---|---|---|---|---|---|---|---|"]
    for f in fracs:
        v = {k: [med(k, f, q) for q in ("p50_ns", "p99_ns", "p999_ns")] for k in kinds}
        lost = lambda k: sum(r.get("lost", 0) for r in points[(k, f)])
        ratio = lambda x, y: ", ".join(f"{a / b:.2f}x" if b > 0 else "-" for a, b in zip(v[x], v[y]))
        cells = " | ".join(f"{v[k][0]:.1f} / {v[k][1]:.1f} / {v[k][2]:.1f}" for k in kinds)
        lines.append(f"| {f:.0%} of each one's maximum | {cells} | {ratio('lanes', 'testpmd')} | {ratio('lanes-xdp', 'testpmd')} | "
                     f"{ratio('lanes-xdp', 'lanes')} | {lost('lanes')} / {lost('lanes-xdp')} / {lost('testpmd')} |")
    lines.append("")
    publish(lines, append=not a.no_append)


if __name__ == "__main__":
    main()
