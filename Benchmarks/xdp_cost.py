#!/usr/bin/env python3
"""What one packet costs in the XDP program: `lanes fwd --mode l3 --path xdp`'s
lanes_xdp_fwd against xdp-forward's xdp_fwd_fib_full, the kernel timing each.

Both programs are attached in turn to dut:d0 of one testbed and run by
BPF_PROG_TEST_RUN on the same 60-byte UDP frame (gen -> sink through the dut, so
the kernel's FIB forwards it and bpf_fib_lookup succeeds), one run a call
(--repeat 1: the frame is fresh each time, as every forwarded packet is), --runs
calls a round; the kernel's own per-run duration (which includes its timer's
overhead, the same for both) is collected and the median and 10th percentile
given, with the mean of the fastest 90% (finer than the clock's steps), per
round, alternating the two, and their medians over --rounds. It is the
program alone: the devmap transmit after XDP_REDIRECT is the kernel's and the
same for both. Every run must end in XDP_REDIRECT, or the script stops.
Then, in the same round, the cost in place: 3 s of `lanes gen` (16 flows, 500
kpps) through the dut with kernel.bpf_stats_enabled, the program's run_time_ns
over run_cnt (switched off again at the end).

xdp-forward is built as in fwd_paths.py unless --xdp-forward names a binary.

--lanes names another build of lanes (an earlier commit's, to compare).

--repeat N (N up to 250) runs the frame N times a call, in place, and the kernel
gives the mean: its timer's overhead and steps shrink N-fold. The frame then
starts at TTL 255 (each run decrements it), and for the test runs the dut's
neighbour 198.18.1.1 has d0's own MAC, so that the rewritten frame is still
addressed to d0 (lanes xdp checks; xdp-forward does not) and every run forwards.
Use few calls (--runs 200): each call with repeat waits for an RCU grace period.

Usage: sudo python3 Benchmarks/xdp_cost.py [--rounds 5] [--runs 100000] [--repeat 1] [--lanes PATH] [--no-append]
"""
import argparse, ctypes, datetime, json, os, signal, statistics, struct, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
from peers import LANES, sh  # noqa: E402
from report import host_stalls, machine, publish  # noqa: E402
from fwd_paths import build_xdp_forward  # noqa: E402

TB = "xdpcost"
DUT = TB + "-dut"
XDP_REDIRECT = 4


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts (libbpf)."""
    _fields_ = [("sz", ctypes.c_size_t), ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p),
                ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
                ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int), ("duration", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32)]


def frame(ttl=64):
    """Ethernet g0 -> d0, IPv4 198.18.0.1 -> 198.18.1.1 at ttl, UDP 1234 -> 9000, 18 bytes of payload."""
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s & 0xffff) + (s >> 16)
        return ~((s & 0xffff) + (s >> 16)) & 0xffff
    eth = bytes.fromhex("024c00000002" "024c00000001" "0800")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, 1, 0, ttl, 17, 0, bytes([198, 18, 0, 1]), bytes([198, 18, 1, 1])))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    udp = struct.pack("!HHHH", 1234, 9000, 26, 0) + b"x" * 18
    return eth + bytes(ip) + udp


def measure(xf_object, runs, repeat):
    """The kernel's per-run durations of `runs` test runs (of `repeat` runs each) of xdp-forward's program and of
    lanes xdp's (attached to d0 by lanes fwd), call by call in turn, so that both see the same moments of the host:
    {side: durations}. xdp-forward's object is loaded for them (not attached) with its devmap holding d1."""
    progs = json.loads(sh(["bpftool", "prog", "show", "-j"]).stdout)
    ids = [p["id"] for p in progs if p.get("name") == "lanes_xdp_fwd"]
    if not ids:
        sys.exit("xdp_cost: no program lanes_xdp_fwd loaded")
    pins = f"/sys/fs/bpf/{TB}-{os.getpid()}"
    subprocess.run(["rm", "-rf", pins, pins + "-maps"])
    sh(["bpftool", "prog", "loadall", xf_object, pins, "type", "xdp", "pinmaps", pins + "-maps"])
    d1 = int(sh(["ip", "netns", "exec", DUT, "cat", "/sys/class/net/d1/ifindex"]).stdout)
    word = [str(b) for b in struct.pack("<I", d1)]
    sh(["bpftool", "map", "update", "pinned", pins + "-maps/xdp_tx_ports", "key"] + word + ["value"] + word)
    # By id: ip netns exec mounts a /sys of its own, without this bpffs.
    xf_id = json.loads(sh(["bpftool", "prog", "show", "pinned", pins + "/xdp_fwd_fib_full", "-j"]).stdout)["id"]
    # The dut namespace's FIB and devices: the test runs must be made from inside it.
    hop = ["ip", "-n", DUT, "neigh", "replace", "198.18.1.1", "dev", "d1", "nud", "permanent", "lladdr"]
    if repeat > 1:
        sh(hop + [json.loads(sh(["ip", "-n", DUT, "-j", "link", "show", "d0"]).stdout)[0]["address"]])
    try:
        out = sh(["ip", "netns", "exec", DUT, sys.executable, os.path.abspath(__file__), "--child", str(xf_id),
                  str(ids[-1]), str(runs), str(repeat)]).stdout
    finally:
        subprocess.run(["rm", "-rf", pins, pins + "-maps"])
        if repeat > 1:
            sh(hop + [json.loads(sh(["ip", "-n", TB + "-sink", "-j", "link", "show", "s0"]).stdout)[0]["address"]])
    xf, lanes = out.splitlines()
    return {"xdp-forward": [int(x) for x in xf.split()], "lanes xdp": [int(x) for x in lanes.split()]}


def live_ns(prog_name, lanes):
    """ns a run of the program named prog_name under 3 s of generated traffic (bpf_stats)."""
    sh([lanes, "gen", "--testbed", TB, "--flows", "16", "--duration", "3", "--rate", "500kpps", "--interval", "0"])
    progs = json.loads(sh(["bpftool", "prog", "show", "-j"]).stdout)
    p = [p for p in progs if p.get("name") == prog_name and p.get("run_cnt", 0) > 0]
    if not p:
        sys.exit(f"xdp_cost: {prog_name} never ran under traffic")
    return p[-1]["run_time_ns"] / p[-1]["run_cnt"]


def child(xf_id, prog_id, runs, repeat):
    bpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
    fds = [bpf.bpf_prog_get_fd_by_id(xf_id), bpf.bpf_prog_get_fd_by_id(prog_id)]
    if min(fds) < 0:
        sys.exit(f"xdp_cost: programs {xf_id} and {prog_id}: errno {ctypes.get_errno()}")
    data = frame(255 if repeat > 1 else 64)
    ifindex = int(open("/sys/class/net/d0/ifindex").read())
    ctx = struct.pack("6I", 0, len(data), 0, ifindex, 0, 0)  # struct xdp_md: data_end, ingress_ifindex, queue 0
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(4096)
    cin = ctypes.create_string_buffer(ctx, len(ctx))
    durations = [[], []]
    for i in range(2 * runs):
        # In turn, and the pair's order swapped every other pair.
        k = (i + i // 2) % 2
        o = TestRunOpts(sz=ctypes.sizeof(TestRunOpts), data_in=ctypes.addressof(din), data_out=ctypes.addressof(dout),
                        data_size_in=len(data), data_size_out=4096, ctx_in=ctypes.addressof(cin), ctx_size_in=len(ctx), repeat=repeat)
        if bpf.bpf_prog_test_run_opts(fds[k], ctypes.byref(o)) != 0:
            sys.exit(f"xdp_cost: BPF_PROG_TEST_RUN: errno {ctypes.get_errno()}")
        if o.retval != XDP_REDIRECT:
            sys.exit(f"xdp_cost: the program returned {o.retval}, not XDP_REDIRECT: it did not forward the frame")
        durations[k].append(o.duration)
    for d in durations:
        print(" ".join(map(str, d)))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        return child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of the frame a call, 1-250 (the kernel gives their mean)")
    ap.add_argument("--xdp-forward", help="an xdp-forward binary (default: built from ../shared/peers)")
    ap.add_argument("--lanes", default=LANES, help="the lanes binary to measure (default: this tree's release build)")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.repeat <= 250:
        sys.exit("xdp_cost: --repeat takes 1 to 250 (the frame's TTL starts at 255)")
    xf = a.xdp_forward or build_xdp_forward()
    stalls = host_stalls()
    sh([a.lanes, "testbed", "up", "--name", TB, "--queues", "1"])
    xf_object = os.path.join(os.path.dirname(os.path.abspath(xf)), "xdp_forward.bpf.o")
    if not os.path.exists(xf_object):
        sys.exit(f"xdp_cost: no {xf_object} beside {xf} (the test runs load it)")
    rows = {"xdp-forward": [], "lanes xdp": []}
    pairs = []  # lanes xdp - xdp-forward, call by call
    sh(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"])
    try:
        for r in range(a.rounds):
            live = {}
            for side in (["xdp-forward", "lanes xdp"] if r % 2 == 0 else ["lanes xdp", "xdp-forward"]):
                if side == "xdp-forward":
                    sh(["ip", "netns", "exec", DUT, xf, "load", "d0", "d1"])
                    try:
                        live[side] = live_ns("xdp_fwd_fib_full", a.lanes)
                    finally:
                        subprocess.run(["ip", "netns", "exec", DUT, xf, "unload", "d0", "d1"], capture_output=True)
                    continue
                fwd = subprocess.Popen([a.lanes, "fwd", "--testbed", TB, "--mode", "l3", "--path", "xdp", "--interval", "0"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    for _ in range(100):
                        if "prog/xdp" in sh(["ip", "-n", DUT, "link", "show", "d0"]).stdout:
                            break
                        time.sleep(0.1)
                    runs = measure(xf_object, a.runs, a.repeat)
                    live[side] = live_ns("lanes_xdp_fwd", a.lanes)
                finally:
                    fwd.send_signal(signal.SIGINT)
                    fwd.wait(timeout=30)
            pairs += [x - y for x, y in zip(runs["lanes xdp"], runs["xdp-forward"])]
            for side in rows:
                d = sorted(runs[side])
                med, p10, fast = d[len(d) // 2], d[len(d) // 10], statistics.mean(d[:len(d) * 9 // 10])
                rows[side].append((med, p10, live[side], fast))
                print(f"round {r + 1} {side}: median {med} ns, p10 {p10} ns, fastest 90% {fast:.1f} ns; in place {live[side]:.1f} ns",
                      file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], capture_output=True)
        subprocess.run([a.lanes, "testbed", "down", "--name", TB], capture_output=True)
    lines = [f"## XDP program cost, {datetime.date.today()} ({machine()})", "",
             f"`Benchmarks/xdp_cost.py --rounds {a.rounds} --runs {a.runs} --repeat {a.repeat}`: BPF_PROG_TEST_RUN of each program on the same "
             "60-byte UDP frame, forwarded by the dut's FIB (every run XDP_REDIRECT), the two programs' calls in turn (the pair's order swapped every other pair), "
             + ("one run a call" if a.repeat == 1 else f"{a.repeat} runs a call in place (TTL from 255; the next hop's MAC d0's own for them)")
             + "; the kernel's per-run duration (its timer's overhead included, the same for both), medians over rounds of each round's median, "
             "10th percentile and mean of the fastest 90%; in place: run_time_ns / run_cnt (kernel.bpf_stats_enabled) under 3 s of lanes gen, 16 flows at "
             f"500 kpps, through the dut. {stalls}", "",
             "| program | test run, median ns | test run, p10 ns | test run, fastest 90% mean ns | in place, ns |",
             "|---|---:|---:|---:|---:|"]
    med = lambda side, i: statistics.median(x[i] for x in rows[side])
    for side in rows:
        lines.append(f"| {side} | {med(side, 0):.0f} | {med(side, 1):.0f} | {med(side, 3):.1f} | {med(side, 2):.1f} |")
    lines += ["", f"lanes xdp - xdp-forward: {med('lanes xdp', 0) - med('xdp-forward', 0):+.0f} ns a packet by test run "
              f"({med('lanes xdp', 3) - med('xdp-forward', 3):+.1f} ns by the fastest 90%), "
              f"{med('lanes xdp', 2) - med('xdp-forward', 2):+.1f} ns in place (medians). Call by call "
              f"({len(pairs)} pairs, each pair's calls back to back): lanes xdp - xdp-forward has a median of "
              f"{statistics.median(pairs):+.1f} ns (quartiles {sorted(pairs)[len(pairs) // 4]:+.1f} to {sorted(pairs)[3 * len(pairs) // 4]:+.1f}); "
              f"lanes xdp the faster in {sum(1 for x in pairs if x < 0)} of them, as fast in {sum(1 for x in pairs if x == 0)}."]
    publish(lines, append=not a.no_append)


if __name__ == "__main__":
    main()
