#!/usr/bin/env python3
"""Same-run comparison of Lanes against its peers on the veth testbed.

A and B alternate, `--rounds` times each, on one testbed (queue 0, one core each):
  gen:     lanes gen --tx xsk  vs  dpdk-testpmd txonly (net_af_xdp)  vs  a C txonly loop over libxdp,
           all into the same XDP_DROP sink (lanes sink on dut:d0, counting in XDP);
           plus lanes gen --tx xsk with two lanes (queues 0-1, cores 0-1)
  genxdp:  lanes gen --tx xdp (live frames) on 1 and 2 cores  vs  testpmd txonly (1 and 2
           instances, one queue and core each)  vs  lanes gen --tx xsk, into the same sink
  drop:    lanes drop vs testpmd rxonly, fed by lanes gen at its highest rate
  macswap: lanes fwd --mode macswap vs testpmd macswap, returned packets counted
           in XDP on gen:g0
  fwd:     lanes fwd d0 d1 --mode io vs testpmd io forwarding (net_af_xdp on both ports),
           counted in XDP on sink:s0; then one-way latency through lanes fwd --mode l3
           at 10%, 50% and 90% of its maximum rate (signed packets, lanes gen --rx-only on s0)
With --baseline LANES (an earlier commit's release build), that build's tool under
test runs as one more side in gen, drop, macswap and fwd (the traffic source and
the counting sink stay this build's): before/after a change, with the peer
ratios of both from the same rounds.
Prints a table of medians and ratios, and the user/kernel CPU split of each
tool's busiest thread, and appends them, dated, with the machine's description,
to BENCHMARKS.md. Needs root and a release build (it makes one).
"""
import argparse, datetime, json, os, re, shutil, signal, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from report import ROOT, host_stalls, machine, publish  # noqa: E402

LANES = os.path.join(ROOT, ".build/release/lanes")
# The binary each Lanes side runs as the tool under test ("baseline": --baseline).
TOOLS = {"lanes": LANES}
TXONLY = os.path.join(ROOT, ".build/peers/xsk_txonly")
TB = "peers"
GEN, DUT, SINK = TB + "-gen", TB + "-dut", TB + "-sink"
G0_MAC, D0_MAC = "02:4c:00:00:00:01", "02:4c:00:00:00:02"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def bg(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def thread_ticks(pid):
    """{tid: (utime, stime)} in clock ticks for every thread of a live process."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]), int(fields[12]))
        except (OSError, IndexError, ValueError):
            pass
    return out


def measure(p, seconds, warmup=1.5):
    """Sleeps through the warm-up and the measured seconds; returns the (utime, stime)
    ticks of the process's busiest thread during the measured seconds: the lane
    thread of lanes, the forwarding lcore of testpmd, the loop of the C generator.
    Start-up, set-up and the monitor are left out, for every tool alike."""
    time.sleep(warmup)
    before = thread_ticks(p.pid)
    time.sleep(seconds)
    after = thread_ticks(p.pid)
    best = (0, 0)
    for tid, (u, s) in after.items():
        u0, s0 = before.get(tid, (u, s))
        if (u - u0) + (s - s0) > sum(best):
            best = (u - u0, s - s0)
    return best


def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return out, err


def xdp_off(ns, dev):
    subprocess.run(["ip", "-n", ns, "link", "set", "dev", dev, "xdp", "off"], capture_output=True)


def wait_xdp(ns, dev, timeout=20):
    t = time.time()
    while time.time() - t < timeout:
        if "prog/xdp" in sh(["ip", "-n", ns, "link", "show", dev]).stdout:
            time.sleep(0.3)
            return
        time.sleep(0.05)
    raise RuntimeError(f"no XDP program on {ns}:{dev}")


def sink(ns, dev, filt="udp"):
    p = bg([LANES, "sink", dev, "--netns", ns, "--filter", filt, "--interval", "1", "--json"])
    wait_xdp(ns, dev)
    return p


def sink_rate(out):
    """Median pps of the sink's full seconds while traffic flowed."""
    rates = [json.loads(l)["pps"] for l in out.splitlines() if l.startswith("{") and '"pps"' in l and '"queues"' not in l]
    active = [r for r in rates if r > 1000]
    mid = active[1:-1] if len(active) > 2 else active
    return statistics.median(mid) if mid else 0.0


def testpmd_cmd(ns, iface, mode, lcores, main, prefix, queue=0):
    cmd = ["ip", "netns", "exec", ns, "dpdk-testpmd", "-l", lcores, "--main-lcore", main, "--no-huge", "-m", "512", "--no-pci",
           "--file-prefix", prefix, "--log-level", "*:error",
           "--vdev", f"net_af_xdp0,iface={iface},start_queue={queue},queue_count=1", "--",
           "--total-num-mbufs", "8192", f"--forward-mode={mode}", "--auto-start", "--stats-period", "1"]
    if mode == "txonly":
        cmd += ["--eth-peer", f"0,{D0_MAC}"]
    return cmd


def testpmd(ns, iface, mode, lcores, main, prefix, seconds):
    p = bg(testpmd_cmd(ns, iface, mode, lcores, main, prefix))
    ticks = measure(p, seconds)
    out, err = stop(p)
    return out, err, ticks


def testpmd_rx_rate(out):
    rates = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", out)]
    active = [r for r in rates if r > 1000]
    mid = active[1:-1] if len(active) > 2 else active
    return statistics.median(mid) if mid else 0.0


def trial_gen(kind, seconds):
    xdp_off(DUT, "d0")
    s = sink(DUT, "d0")
    ticks = None
    if kind in ("lanes", "lanes-xdp", "baseline"):
        tx = "xdp" if kind == "lanes-xdp" else "xsk"
        p = bg([TOOLS.get(kind, LANES), "gen", "--testbed", TB, "--tx", tx, "--queues", "0", "--cores", "0", "--interval", "0", "--json"])
        ticks = measure(p, seconds, warmup=1.0)
        stop(p)
    elif kind in ("lanes-2", "lanes-xdp-2"):
        tx = "xsk" if kind == "lanes-2" else "xdp"
        p = bg([LANES, "gen", "--testbed", TB, "--tx", tx, "--flows", "2", "--rss", "--interval", "0", "--json"])
        time.sleep(seconds + 1.0)
        stop(p)
    elif kind == "testpmd":
        _, _, ticks = testpmd(GEN, "g0", "txonly", "0,1", "1", "peers-tx", seconds)
    elif kind == "testpmd-2":
        # Two instances, queue 0 on core 0 and queue 1 on core 1 (AF_XDP TX queue q lands on d0's RX queue q).
        a = bg(testpmd_cmd(GEN, "g0", "txonly", "0,1", "1", "peers-tx", queue=0))
        b = bg(testpmd_cmd(GEN, "g0", "txonly", "1,0", "0", "peers-tx2", queue=1))
        time.sleep(seconds + 1.5)
        stop(a); stop(b)
    elif kind == "c-loop":
        p = bg(["ip", "netns", "exec", GEN, "taskset", "-c", "0", TXONLY, "g0", "0", str(seconds + 1.5), D0_MAC, G0_MAC])
        ticks = measure(p, seconds, warmup=1.0)
        p.communicate(timeout=20)
    out, _ = stop(s)
    return sink_rate(out), ticks


def trial_drop(kind, seconds):
    xdp_off(DUT, "d0")
    gen = bg([LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--interval", "0"])
    time.sleep(0.5)
    if kind in TOOLS:
        p = bg([TOOLS[kind], "drop", "d0", "--netns", DUT, "--queues", "0", "--cores", "1", "--filter", "udp", "--interval", "1", "--json"])
        ticks = measure(p, seconds)
        out, _ = stop(p)
        rates = [json.loads(l)["rx_pps"] for l in out.splitlines() if l.startswith("{") and "elapsed_s" in l]
        active = [r for r in rates if r > 1000]
        mid = active[1:-1] if len(active) > 2 else active
        rate = statistics.median(mid) if mid else 0.0
    else:
        out, _, ticks = testpmd(DUT, "d0", "rxonly", "0,1", "0", "peers-rx", seconds)
        rate = testpmd_rx_rate(out)
    stop(gen)
    return rate, ticks


def trial_macswap(kind, seconds):
    xdp_off(DUT, "d0")
    s = sink(GEN, "g0")
    gen = bg([LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--interval", "0"])
    if kind in TOOLS:
        p = bg([TOOLS[kind], "fwd", "d0", "--netns", DUT, "--mode", "macswap", "--queues", "0", "--cores", "1", "--filter", "udp", "--interval", "0"])
        ticks = measure(p, seconds)
        stop(p)
    else:
        _, _, ticks = testpmd(DUT, "d0", "macswap", "0,1", "0", "peers-ms", seconds)
    stop(gen)
    out, _ = stop(s)
    return sink_rate(out), ticks


def testpmd_fwd(seconds):
    cmd = ["ip", "netns", "exec", DUT, "dpdk-testpmd", "-l", "0,1", "--main-lcore", "0", "--no-huge", "-m", "512", "--no-pci",
           "--file-prefix", "peers-io", "--log-level", "*:error",
           "--vdev", "net_af_xdp0,iface=d0,start_queue=0,queue_count=1",
           "--vdev", "net_af_xdp1,iface=d1,start_queue=0,queue_count=1", "--",
           "--total-num-mbufs", "16384", "--forward-mode=io", "--auto-start", "--stats-period", "1"]
    p = bg(cmd)
    ticks = measure(p, seconds)
    stop(p)
    return ticks


def trial_fwd(kind, seconds):
    """Two ports: gen:g0 -> dut:d0 -> forwarder -> dut:d1 -> sink:s0, counted in XDP on s0."""
    xdp_off(DUT, "d0"); xdp_off(DUT, "d1")
    s = sink(SINK, "s0")
    gen = bg([LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--interval", "0"])
    if kind in TOOLS:
        p = bg([TOOLS[kind], "fwd", "d0", "d1", "--netns", DUT, "--mode", "io", "--queues", "0", "--cores", "1", "--filter", "udp", "--interval", "0"])
        ticks = measure(p, seconds)
        stop(p)
    else:
        ticks = testpmd_fwd(seconds)
    stop(gen)
    out, _ = stop(s)
    return sink_rate(out), ticks


def latency_at(rate_pps, seconds):
    """One way through lanes fwd --mode l3: gen:g0 -> d0 -> d1 -> s0, signed packets received on s0."""
    xdp_off(DUT, "d0"); xdp_off(SINK, "s0")
    fwd = bg([LANES, "fwd", "--testbed", TB, "--mode", "l3", "--queues", "0", "--cores", "1", "--filter", "udp", "--interval", "0"])
    wait_xdp(DUT, "d0")
    rx = bg([LANES, "gen", "s0", "--netns", SINK, "--rx-only", "--flows", "4", "--queues", "0", "--cores", "1",
             "--dst-mac", "02:4c:00:00:01:02", "--interval", "0", "--json"])
    wait_xdp(SINK, "s0")
    sh([LANES, "gen", "--testbed", TB, "--tx", "xsk", "--queues", "0", "--cores", "0", "--flows", "4", "--rate", f"{int(rate_pps)}",
        "--duration", str(seconds), "--interval", "0"])
    time.sleep(0.5)
    out, _ = stop(rx)
    stop(fwd)
    rep = json.loads(out.strip().splitlines()[-1])
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    ap.add_argument("--tests", default="gen,genxdp,drop,macswap,fwd",
                    help="comma-separated subset of gen,genxdp,drop,macswap,fwd (latency runs with fwd)")
    ap.add_argument("--baseline", help="an earlier build's lanes binary: one more side in gen, drop, macswap and fwd")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency points after fwd")
    a = ap.parse_args()
    if a.baseline:
        TOOLS["baseline"] = os.path.abspath(a.baseline)
    tests = a.tests.split(",")
    unknown = set(tests) - {"gen", "genxdp", "drop", "macswap", "fwd"}
    if unknown or not tests:
        sys.exit(f"peers: unknown test(s) {','.join(sorted(unknown))}; choose from gen,genxdp,drop,macswap,fwd")
    if os.geteuid() != 0:
        sys.exit("peers: needs root (XDP, AF_XDP, namespaces)")
    for tool in ["dpdk-testpmd", "gcc"]:
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"peers: {tool} not found; run scripts/setup")
    print("building lanes (release) and the C txonly loop ...", file=sys.stderr)
    sh(["swift", "build", "-c", "release"], cwd=ROOT)
    os.makedirs(os.path.dirname(TXONLY), exist_ok=True)
    sh(["gcc", "-O2", "-Wall", "-o", TXONLY, os.path.join(ROOT, "Benchmarks/peers/xsk_txonly.c"), "-lxdp", "-lbpf"])
    stalls = host_stalls()
    print(stalls, file=sys.stderr)
    sh([LANES, "testbed", "up", "--name", TB, "--queues", "2"])
    results = {}
    try:
        plan = [("gen", ["lanes", "testpmd", "c-loop", "lanes-2"], trial_gen),
                ("genxdp", ["lanes-xdp", "testpmd", "lanes", "lanes-xdp-2", "testpmd-2"], trial_gen),
                ("drop", ["lanes", "testpmd"], trial_drop),
                ("macswap", ["lanes", "testpmd"], trial_macswap),
                ("fwd", ["lanes", "testpmd"], trial_fwd)]
        if a.baseline:
            for test, kinds, _ in plan:
                if test != "genxdp":
                    kinds.insert(1, "baseline")
        for test, kinds, fn in (p for p in plan if p[0] in tests):
            for r in range(a.rounds):
                # A B ... then ... B A: a drift within a round (the host's load) falls on both sides.
                for k in (kinds if r % 2 == 0 else list(reversed(kinds))):
                    rate, ticks = fn(k, a.seconds)
                    results.setdefault((test, k), []).append((rate, ticks))
                    print(f"{test:8} round {r + 1} {k:8} {rate / 1e6:.3f} Mpps"
                          + (f", busiest thread user/system ticks {ticks[0]}/{ticks[1]}" if ticks else ""), file=sys.stderr)
        fwd_max = statistics.median(r for r, _ in results[("fwd", "lanes")]) if "fwd" in tests else 0
        for frac in ([0.1, 0.5, 0.9] if "fwd" in tests and not a.no_latency else []):
            rep = latency_at(frac * fwd_max, a.seconds)
            results[("latency", frac)] = rep
            lat = rep.get("latency", {})
            print(f"latency at {frac:.0%} of {fwd_max / 1e6:.3f} Mpps: p50 {lat.get('p50_ns', 0) / 1e3:.1f} us, p99 {lat.get('p99_ns', 0) / 1e3:.1f} us, lost {rep.get('lost')}", file=sys.stderr)
    finally:
        subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
        for prefix in ["peers-tx", "peers-tx2", "peers-rx", "peers-ms", "peers-io"]:  # testpmd's runtime files (--file-prefix)
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

    def med(test, k):
        return statistics.median(r for r, _ in results[(test, k)])

    hz = os.sysconf("SC_CLK_TCK")

    def cpu(test, k):
        """User-space share of the busiest thread's CPU time and its user ns per
        packet, from the ticks summed over every round (not a median of ratios)."""
        rounds = [(r, t) for r, t in results[(test, k)] if t is not None]
        u = sum(t[0] for _, t in rounds)
        total = sum(t[0] + t[1] for _, t in rounds)
        packets = sum(r * a.seconds for r, _ in rounds)
        if not rounds or total == 0 or packets == 0:
            return None
        return u / total, u / hz * 1e9 / packets, total / hz / (len(rounds) * a.seconds)

    def ratios(ak, bk):
        """Per-round ratios A/B (the two ran next to each other), median and range."""
        rs = [ra / rb for (ra, _), (rb, _) in zip(results[ak], results[bk]) if rb > 0]
        return (statistics.median(rs), min(rs), max(rs)) if rs else (float("nan"),) * 3

    rows = [
        ("gen (txonly, 1 core, 64 B)", "lanes gen", ("gen", "lanes"), "testpmd txonly", ("gen", "testpmd")),
        ("gen (txonly, 1 core, 64 B)", "lanes gen", ("gen", "lanes"), "C loop over libxdp", ("gen", "c-loop")),
        ("gen, 2 lanes vs 1 lane", "lanes gen x2", ("gen", "lanes-2"), "lanes gen x1", ("gen", "lanes")),
        ("gen live frames (1 core, 64 B)", "lanes gen --tx xdp", ("genxdp", "lanes-xdp"), "testpmd txonly", ("genxdp", "testpmd")),
        ("gen live frames (2 cores, 64 B)", "lanes gen --tx xdp x2", ("genxdp", "lanes-xdp-2"), "testpmd txonly x2 instances", ("genxdp", "testpmd-2")),
        ("gen live frames vs AF_XDP (1 core)", "lanes gen --tx xdp", ("genxdp", "lanes-xdp"), "lanes gen --tx xsk", ("genxdp", "lanes")),
        ("drop (rx, 1 core)", "lanes drop", ("drop", "lanes"), "testpmd rxonly", ("drop", "testpmd")),
        ("macswap (1 core)", "lanes fwd macswap", ("macswap", "lanes"), "testpmd macswap", ("macswap", "testpmd")),
        ("fwd d0 -> d1 (io, 1 core)", "lanes fwd io", ("fwd", "lanes"), "testpmd io (2 ports)", ("fwd", "testpmd")),
    ]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: {machine()}, veth copy mode", "",
             f"{a.rounds} rounds of {a.seconds:g} s, A and B next to each other in every round (order reversed every other round); "
             "rates in Mpps measured at the receiver, medians over the rounds; ratio = median of the per-round ratios A/B, with their range; "
             "best = ratio of each side's best round (the host's noise only takes rate away). " + stalls, "",
             "| test | Lanes | Mpps | peer | Mpps | ratio | range | best |", "|---|---|---:|---|---:|---:|---|---:|"]
    if a.baseline:
        rows += [(f"{t} (baseline build)", an + " (baseline)", (ak[0], "baseline"), bn, bk) for t, an, ak, bn, bk in rows
                 if ak[1] == "lanes" and ak[0] != "genxdp" and bk[1] == "testpmd"]
        rows += [(f"{t}: this build vs baseline", an, ak, an + " (baseline)", (ak[0], "baseline")) for t, an, ak, bn, bk in rows
                 if ak[1] == "lanes" and ak[0] != "genxdp" and bk[1] == "testpmd"]
    for t, an, ak, bn, bk in (r for r in rows if r[2][0] in tests):
        m, lo, hi = ratios(ak, bk)
        best_b = max(r for r, _ in results[bk])
        best = max(r for r, _ in results[ak]) / best_b if best_b > 0 else float("nan")
        lines.append(f"| {t} | {an} | {med(*ak) / 1e6:.3f} | {bn} | {med(*bk) / 1e6:.3f} | {m:.2f}x | {lo:.2f}-{hi:.2f} | {best:.2f}x |")
    lines += ["", "CPU time of each tool's busiest thread (Lanes' lane thread, testpmd's forwarding lcore, the C loop), "
                  f"over the measured {a.seconds:g} s of every round, from /proc/PID/task/TID/stat ticks ({hz} Hz) summed over the rounds. "
                  "User share = utime / (utime + stime); user ns per packet = utime / packets at the receiver.", "",
              "| test | tool | CPU busy | user share | user ns per packet |", "|---|---|---:|---:|---:|"]
    for test, kinds in [("gen", [("lanes", "lanes gen"), ("testpmd", "testpmd txonly"), ("c-loop", "C loop over libxdp")]),
                        ("genxdp", [("lanes-xdp", "lanes gen --tx xdp"), ("testpmd", "testpmd txonly")]),
                        ("drop", [("lanes", "lanes drop"), ("testpmd", "testpmd rxonly")]),
                        ("macswap", [("lanes", "lanes fwd macswap"), ("testpmd", "testpmd macswap")]),
                        ("fwd", [("lanes", "lanes fwd io"), ("testpmd", "testpmd io")])]:
        if test not in tests:
            continue
        for k, name in kinds:
            c = cpu(test, k)
            if c:
                lines.append(f"| {test} | {name} | {c[2]:.0%} | {c[0]:.1%} | {c[1]:.0f} |")
    if "fwd" not in tests or a.no_latency:
        publish(lines, append=not a.no_append)
        return
    fwd_max = med("fwd", "lanes")
    lines += ["", f"One-way latency through `lanes fwd --mode l3` (gen:g0 -> d0 -> d1 -> s0, signed packets timed on s0), "
                  f"at fractions of lanes fwd's maximum {fwd_max / 1e6:.3f} Mpps:", "",
              "| load | offered Mpps | received | lost | min us | p50 us | p90 us | p99 us | p99.9 us | max us |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for frac in [0.1, 0.5, 0.9]:
        rep = results.get(("latency", frac), {})
        lat = rep.get("latency", {})
        us = lambda k: f"{lat.get(k, 0) / 1e3:.1f}"
        lines.append(f"| {frac:.0%} | {frac * fwd_max / 1e6:.3f} | {rep.get('rx_packets', 0)} | {rep.get('lost', 0)} | {us('min_ns')} | {us('p50_ns')} | "
                     f"{us('p90_ns')} | {us('p99_ns')} | {us('p999_ns')} | {us('max_ns')} |")
    publish(lines, append=not a.no_append)

if __name__ == "__main__":
    main()
