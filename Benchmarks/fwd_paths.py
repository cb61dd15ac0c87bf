#!/usr/bin/env python3
"""The forwarding appliance's two paths against xdp-forward and Linux, one
`lanes rfc2544` harness, one session:

  xdp-forward   upstream xdp-tools' forwarder (bpf_fib_lookup + bpf_redirect_map),
                loaded on dut:d0 and dut:d1, measured with --dut external
  lanes xdp     lanes fwd --mode l3 --path xdp (the kernel's FIB in XDP, out by a devmap)
  lanes xsk     lanes fwd --mode l3 --path xsk (the AF_XDP lanes)
  linux         the dut namespace's own IP forwarding

Each: RFC 2544 throughput (NDR, 0 loss, and PDR) at 64 and 1518 B, 1 and 64
flows, `--trial-duration 1 --verify-duration 2 --precision 2%`; --rounds N runs
every device N times (order reversed every other round) and the table gives
medians. A device that loses nothing at the generator's maximum is "at least M,
generator-bound": two devices generator-bound at the same M are a tie. Ctrl-C
ends it early with the table of the rounds every device finished.

xdp-forward is built from ../shared/peers/xdp-tools-*.tar.gz (see its README)
unless --xdp-forward names a binary.

Usage: sudo python3 Benchmarks/fwd_paths.py [--rounds 1] [--sizes 64,1518] [--flows 1,64] [--no-append]
"""
import argparse, datetime, glob, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
from peers import LANES, sh  # noqa: E402
from report import ROOT, host_stalls, machine, publish  # noqa: E402

TB = "fwdpaths"
COMMON = ["--tests", "throughput", "--trial-duration", "1", "--verify-duration", "2", "--precision", "2%", "--json"]


def build_xdp_forward():
    """The upstream xdp-forward, built once under .build/peers (its README's steps)."""
    out = os.path.join(ROOT, ".build/peers/xdp-tools/xdp-forward/xdp-forward")
    if os.path.exists(out):
        return out
    tars = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "peers", "xdp-tools-*.tar.gz")))
    if not tars:
        sys.exit("fwd_paths: no xdp-tools tarball in ../shared/peers; pass --xdp-forward PATH")
    sh(["apt-get", "install", "-y", "-qq", "libelf-dev", "zlib1g-dev", "libpcap-dev", "m4", "gcc-multilib"])
    dest = os.path.join(ROOT, ".build/peers")
    os.makedirs(dest, exist_ok=True)
    sh(["tar", "-xzf", tars[-1], "-C", dest])
    src = os.path.join(dest, "xdp-tools")
    sh(["./configure"], cwd=src, env=dict(os.environ, FORCE_SYSTEM_LIBBPF="1"))
    sh(["sed", "-i", "s/^CFLAGS += $/CFLAGS += -include stdbool.h/", "config.mk"], cwd=src)
    sh(["make", "-C", "lib"], cwd=src)
    sh(["make", "-C", "xdp-forward"], cwd=src)
    return out


def rfc2544(args):
    p = subprocess.run([LANES, "rfc2544"] + args + COMMON, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"fwd_paths: lanes rfc2544 {' '.join(args)}: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout)


def run_xdp_forward(binary, sizes, flows):
    tb = ["--name", TB]
    # rfc2544's own testbeds take the MTU the largest frame needs (a frame size counts the FCS).
    mtu = max(1500, max(int(x) for x in sizes.split(",")) - 14)
    sh([LANES, "testbed", "up", "--queues", str(os.cpu_count()), "--mtu", str(mtu)] + tb)
    try:
        sh(["ip", "netns", "exec", f"{TB}-dut", binary, "load", "d0", "d1"])
        link = subprocess.run(["ip", "-n", f"{TB}-dut", "-j", "link", "show", "d0"], capture_output=True, text=True, check=True).stdout
        mac = json.loads(link)[0]["address"]
        return rfc2544(["--dut", "external", "--tx-port", "g0", "--tx-netns", f"{TB}-gen", "--rx-port", "s0", "--rx-netns", f"{TB}-sink",
                        "--dst-mac", mac, "--sizes", sizes, "--flows", flows])
    finally:
        subprocess.run(["ip", "netns", "exec", f"{TB}-dut", binary, "unload", "d0", "d1"], capture_output=True)
        subprocess.run([LANES, "testbed", "down"] + tb, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--sizes", default="64,1518")
    ap.add_argument("--flows", default="1,64")
    ap.add_argument("--xdp-forward", help="an xdp-forward binary (default: built from ../shared/peers)")
    ap.add_argument("--devices", default="xdp-forward,lanes xdp,lanes xsk,linux", help="which of them, comma-separated")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("fwd_paths: needs root")
    sh(["swift", "build", "-c", "release"], cwd=ROOT)
    binary = a.xdp_forward or build_xdp_forward()
    stalls = host_stalls()
    print(stalls, file=sys.stderr)
    devices = {
        "xdp-forward": lambda: run_xdp_forward(binary, a.sizes, a.flows),
        "lanes xdp": lambda: rfc2544(["--dut", "lanes", "--dut-path", "xdp", "--testbed", TB, "--sizes", a.sizes, "--flows", a.flows]),
        "lanes xsk": lambda: rfc2544(["--dut", "lanes", "--dut-path", "xsk", "--testbed", TB, "--sizes", a.sizes, "--flows", a.flows]),
        "linux": lambda: rfc2544(["--dut", "kernel", "--testbed", TB, "--sizes", a.sizes, "--flows", a.flows]),
    }
    names = [n.strip() for n in a.devices.split(",")]
    if not names or any(n not in devices for n in names):
        sys.exit(f"fwd_paths: --devices takes {', '.join(devices)}")
    results = {n: [] for n in names}
    rounds = 0
    try:
        for r in range(a.rounds):
            for n in (names if r % 2 == 0 else list(reversed(names))):
                res = devices[n]()
                results[n].append(res)
                for p in res["points"]:
                    ndr = p.get("ndr") or {}
                    print(f"round {r + 1} {n}: {p['size']} B, {p['flows']} flows: NDR {ndr.get('pps', 0) / 1e6:.3f} Mpps"
                          + (" (generator-bound)" if ndr.get("generator_bound") else "") + f", generator max {p['generator_max_pps'] / 1e6:.3f}",
                          file=sys.stderr)
            rounds = r + 1
    except KeyboardInterrupt:
        # Ctrl-C: the table of the rounds that every device finished.
        print(f"fwd_paths: interrupted; the table holds the {rounds} whole round(s)", file=sys.stderr)
        subprocess.run([LANES, "testbed", "down", "--name", TB], capture_output=True)
        if rounds == 0:
            sys.exit(1)
        results = {n: v[:rounds] for n, v in results.items()}

    def points(n, size, flows):
        """n's points at size and flows, one per round, in round order."""
        return [p for res in results[n] for p in res["points"] if str(p["size"]) == str(size) and p["flows"] == flows]

    def cell(n, size, flows):
        pts = points(n, size, flows)
        ndrs = [(p.get("ndr") or {}).get("pps", 0) for p in pts]
        bound = all((p.get("ndr") or {}).get("generator_bound") for p in pts)
        med = statistics.median(ndrs) if ndrs else 0
        return med, bound

    def paired(x, y, size, flows):
        """x's NDR over y's, round by round (the two ran back to back, so a round's
        pair shares whatever the host was doing then): the median and the range."""
        if x not in results or y not in results:
            return "-"
        def ndr(n):
            return [(p.get("ndr") or {}).get("pps", 0) for p in points(n, size, flows)]
        rs = [a / b for a, b in zip(ndr(x), ndr(y)) if b]
        return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})" if rs else "-"

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {date}: fwd --path xdp and --path xsk against xdp-forward and Linux, {machine()}, veth copy mode", "",
             f"`Benchmarks/fwd_paths.py --rounds {rounds} --sizes {a.sizes} --flows {a.flows} --devices '{a.devices}'`: `lanes rfc2544 --tests throughput "
             "--trial-duration 1 --verify-duration 2 --precision 2%`, the same generator (lanes gen, AF_XDP) and XDP receiver for "
             "every device; NDR in Mpps, medians over rounds; '>=' is generator-bound (no loss at the generator's maximum). "
             f"{stalls}", "",
             "The paired column divides each round's lanes xdp NDR by the same round's xdp-forward NDR (run back to back) "
             "and gives the median and range of those ratios: steadier than a ratio of medians on a host whose speed drifts "
             "between rounds.", "",
             "| frame B | flows | " + " | ".join(names) + " | lanes xdp / xdp-forward | the same, paired by round | lanes xdp / lanes xsk |",
             "|---|---:|" + "---:|" * len(names) + "---:|---:|---:|"]
    for size in a.sizes.split(","):
        for flows in (int(f) for f in a.flows.split(",")):
            cells = {n: cell(n, size, flows) for n in names}
            fmt = lambda c: ("&ge; " if c[1] else "") + f"{c[0] / 1e6:.3f}"
            ratio = lambda x, y: "-" if x not in cells or y not in cells or not cells[y][0] else \
                f"{cells[x][0] / cells[y][0]:.2f}x" + (" (both generator-bound)" if cells[x][1] and cells[y][1] else "")
            lines.append(f"| {size} | {flows} | " + " | ".join(fmt(cells[n]) for n in names) + f" | {ratio('lanes xdp', 'xdp-forward')} | "
                         f"{paired('lanes xdp', 'xdp-forward', size, flows)} | {ratio('lanes xdp', 'lanes xsk')} |")
    lines.append("")
    publish(lines, append=not a.no_append)


if __name__ == "__main__":
    main()
