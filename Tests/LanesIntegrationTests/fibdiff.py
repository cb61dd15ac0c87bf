#!/usr/bin/python3
"""The differential test of `lanes fwd --mode l3 --routes kernel` against Linux
forwarding (ForwardTests.swift, `l3ForwardsExactlyAsLinux`): one seed gives a
random route set and a random packet set; the same packets go through the dut
namespace twice, once forwarded by Linux and once by Lanes, and each packet's
fate is read from what came back to g0 and what reached s0.

  fibdiff.py plan SEED DIR      writes DIR/routes (ip commands for the dut, one a
                                line), DIR/sysctls and DIR/packets.pcap
  fibdiff.py send PCAP IFACE    sends the packets (run inside the gen namespace)
  fibdiff.py fates SENT G0 S0   prints each packet's fate as JSON: {id: [...]}

Addresses: sources from 198.18.128.0/17 and fd00:198:18:8000::/49 (the dut
routes them back to g0), destinations in 198.18.64.0/18 and
fd00:198:18:4000::/50; routes may be wider (down to a default route), but no
packet goes anywhere but the testbed's namespaces.
"""
import ipaddress
import json
import random
import struct
import sys

MARK = b"LNFD"
D0_MAC, G0_MAC, S0_MAC = "02:4c:00:00:00:02", "02:4c:00:00:00:01", "02:4c:00:00:01:01"
V4_SRC, V4_DST = ipaddress.ip_network("198.18.128.0/17"), ipaddress.ip_network("198.18.64.0/18")
V6_SRC, V6_DST = ipaddress.ip_network("fd00:198:18:8000::/49"), ipaddress.ip_network("fd00:198:18:4000::/50")
V4_RULE_SRC, V6_RULE_SRC = ipaddress.ip_network("198.18.192.0/18"), ipaddress.ip_network("fd00:198:18:c000::/50")
D1_MTU = 1400
# Next hops with static neighbours: four behind d1 (ECMP), two behind d0 (back out of the port it came in on).
D1_HOPS4 = [(f"198.18.1.{10 + i}", f"02:4c:00:00:0a:{10 + i:02x}") for i in range(4)]
D1_HOPS6 = [(f"fd00:198:18:1::{10 + i:x}", f"02:4c:00:00:0a:{10 + i:02x}") for i in range(4)]
D0_HOPS4 = [(f"198.18.0.{10 + i}", f"02:4c:00:00:0b:{10 + i:02x}") for i in range(2)]
D0_HOPS6 = [(f"fd00:198:18::{10 + i:x}", f"02:4c:00:00:0b:{10 + i:02x}") for i in range(2)]


def rand_addr(rng, net):
    return net.network_address + rng.randrange(net.num_addresses)


def rand_prefix(rng, v6):
    """A prefix that holds destinations: of any length from the widest that
    contains the destination range's supernet down to a host route."""
    dst = V6_DST if v6 else V4_DST
    a = rand_addr(rng, dst)
    lo, hi = (48, 128) if v6 else (15, 32)
    length = 0 if rng.random() < 0.03 else rng.randint(lo, hi)
    return ipaddress.ip_network(f"{a}/{length}", strict=False)


def plan(seed, out):
    rng = random.Random(seed)
    lines, prefixes = [], {4: [], 6: []}
    for ns_hops, dev in ((D1_HOPS4 + D1_HOPS6, "d1"), (D0_HOPS4 + D0_HOPS6, "d0")):
        for ip, mac in ns_hops:
            lines.append(f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent")
    # The sources' way back (ICMP errors), and the MTU that makes packets too big.
    lines.append(f"route add {V4_SRC} via 198.18.0.1 dev d0")
    lines.append(f"-6 route add {V6_SRC} via fd00:198:18::1 dev d0")
    lines.append(f"link set dev d1 mtu {D1_MTU}")
    kinds = ["unicast"] * 4 + ["ecmp"] * 4 + ["back", "blackhole", "unreachable", "prohibit", "throw", "local"]
    seen = set()
    for table in ("main", "100"):
        for v6 in (False, True):
            fam = "-6 " if v6 else ""
            for _ in range(24 if table == "main" else 8):
                p = rand_prefix(rng, v6)
                kind = rng.choice(kinds)
                if (p, table) in seen or (kind == "local" and (table != "main" or p.prefixlen < (120 if v6 else 24))):
                    continue
                seen.add((p, table))
                prefixes[6 if v6 else 4].append(p)
                t = "" if table == "main" else f" table {table}"
                hops6, hops4 = D1_HOPS6, D1_HOPS4
                hops = hops6 if v6 else hops4
                if kind == "unicast":
                    lines.append(f"{fam}route add {p} via {rng.choice(hops)[0]} dev d1{t}")
                elif kind == "ecmp":
                    n = rng.randint(2, 4)
                    nh = " ".join(f"nexthop via {h[0]} dev d1 weight {rng.randint(1, 3)}" for h in rng.sample(hops, n))
                    lines.append(f"{fam}route add {p}{t} {nh}")
                elif kind == "back":
                    lines.append(f"{fam}route add {p} via {rng.choice(D0_HOPS6 if v6 else D0_HOPS4)[0]} dev d0{t}")
                elif kind == "local":
                    lines.append(f"{fam}route add local {p} dev lo table local")
                else:
                    lines.append(f"{fam}route add {kind} {p}{t}")
    lines.append(f"rule add from {V4_RULE_SRC} table 100 pref 100")
    lines.append(f"-6 rule add from {V6_RULE_SRC} table 100 pref 100")
    policy = 0  # see the note in l3ForwardsExactlyAsLinux: policy 1 follows the skb hash, which XDP cannot see
    sysctls = [f"net.ipv4.fib_multipath_hash_policy={policy}", f"net.ipv6.fib_multipath_hash_policy={policy}",
               # No ICMP rate limit: every answer the kernel would give, in both runs.
               "net.ipv4.icmp_ratemask=0", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
               "net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000"]
    with open(f"{out}/routes", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(f"{out}/sysctls", "w") as f:
        f.write("\n".join(sysctls) + "\n")

    from scapy.all import Ether, IP, IPv6, UDP, TCP, Raw, wrpcap
    pkts = []
    for i in range(400):
        v6 = rng.random() < 0.35
        fam = 6 if v6 else 4
        if prefixes[fam] and rng.random() < 0.85:
            p = rng.choice(prefixes[fam])
            dnet = p if p.subnet_of(V6_DST if v6 else V4_DST) else (V6_DST if v6 else V4_DST)
            dst = rand_addr(rng, dnet)
        else:
            dst = rand_addr(rng, V6_DST if v6 else V4_DST)
        src = rand_addr(rng, (V6_RULE_SRC if v6 else V4_RULE_SRC) if rng.random() < 0.3 else (V6_SRC if v6 else V4_SRC))
        ttl = rng.choice([1, 2, 2, 3, 3])
        big = rng.random() < 0.15
        total = rng.randint(D1_MTU + 1, 1500) if big else rng.randint(64, D1_MTU)
        hdr = 40 if v6 else 20
        tcp = rng.random() < 0.2
        l4 = TCP(sport=rng.randint(1024, 65535), dport=rng.randint(1, 65535), flags="S") if tcp else \
            UDP(sport=rng.randint(1024, 65535), dport=rng.randint(1, 65535))
        pay = total - hdr - (20 if tcp else 8)
        body = MARK + struct.pack("!I", i) + bytes(rng.getrandbits(8) for _ in range(max(0, pay - 8)))
        dmac = D0_MAC if rng.random() > 0.02 else "02:4c:00:00:00:77"  # another host's MAC: the kernel drops it
        if v6:
            ip = IPv6(src=str(src), dst=str(dst), hlim=ttl, fl=rng.getrandbits(20), tc=rng.choice([0, 0, 0x20]))
        else:
            ip = IP(src=str(src), dst=str(dst), ttl=ttl, id=i, flags="DF" if rng.random() < 0.7 else 0, tos=rng.choice([0, 0, 0x20]))
        pkt = Ether(src=G0_MAC, dst=dmac) / ip / l4 / Raw(body)
        if not v6 and rng.random() < 0.02:
            pkt[IP].chksum = 0x1234  # a bad header checksum: the kernel drops it
        pkts.append(pkt)
    wrpcap(f"{out}/packets.pcap", pkts)
    print(f"seed {seed}: {len(lines)} ip commands, {len(pkts)} packets, multipath hash policy {policy}")


def send(pcap, iface):
    from scapy.all import rdpcap, sendp
    import time
    for p in rdpcap(pcap):
        sendp(p, iface=iface, verbose=False)
        time.sleep(0.0005)


def ident(raw):
    """(id, what) of a frame that carries one of our packets or an ICMP error about
    one; None for anything else (ARP, NDP, redirects, other replies)."""
    if len(raw) < 34:
        return None
    etype = struct.unpack("!H", raw[12:14])[0]
    if etype == 0x0800:
        ihl = (raw[14] & 15) * 4
        proto, src, dst = raw[23], ipaddress.ip_address(raw[26:30]), ipaddress.ip_address(raw[30:34])
        if src in V4_SRC and dst in V4_DST:
            return struct.unpack("!H", raw[18:20])[0], "fwd"
        if proto == 1 and raw[14 + ihl] in (3, 11, 12) and len(raw) >= 14 + ihl + 8 + 20:
            q = 14 + ihl + 8
            if ipaddress.ip_address(raw[q + 12:q + 16]) in V4_SRC:
                return struct.unpack("!H", raw[q + 4:q + 6])[0], "icmp"
        return None
    if etype == 0x86DD and len(raw) >= 54:
        nh, src = raw[20], ipaddress.ip_address(raw[22:38])
        k = raw.find(MARK, 54)
        if k < 0 or k + 8 > len(raw):
            return None
        i = struct.unpack("!I", raw[k + 4:k + 8])[0]
        if src in V6_SRC:
            return i, "fwd"
        if nh == 58 and raw[54] in (1, 2, 3, 4):
            return i, "icmp"
    return None


def fate(port, raw, what):
    eth = f"{port} dst {raw[0:6].hex(':')} src {raw[6:12].hex(':')} len {len(raw)}"
    etype = struct.unpack("!H", raw[12:14])[0]
    if etype == 0x0800:
        ihl = (raw[14] & 15) * 4
        if what == "fwd":
            frag = struct.unpack("!H", raw[20:22])[0]
            return f"{eth} ttl {raw[22]} csum {raw[24:26].hex()} frag {frag:04x} l4 {raw[14 + ihl:].hex()[:64]}"
        t, c = raw[14 + ihl], raw[15 + ihl]
        mtu = struct.unpack("!H", raw[14 + ihl + 6:14 + ihl + 8])[0] if (t, c) == (3, 4) else 0
        return f"{port} icmp type {t} code {c} mtu {mtu} from {ipaddress.ip_address(raw[26:30])}"
    if what == "fwd":
        return f"{eth} hlim {raw[21]} payload {raw[54:].hex()[:64]}"
    t, c = raw[54], raw[55]
    mtu = struct.unpack("!I", raw[58:62])[0] if t == 2 else 0
    return f"{port} icmp6 type {t} code {c} mtu {mtu} from {ipaddress.ip_address(raw[22:38])}"


def fates(sent, g0, s0):
    from scapy.all import rdpcap
    n = len(rdpcap(sent))
    out = {str(i): [] for i in range(n)}
    for port, path in (("d0", g0), ("d1", s0)):
        for p in rdpcap(path):
            raw = bytes(p)
            got = ident(raw)
            if got and str(got[0]) in out:
                out[str(got[0])].append(fate(port, raw, got[1]))
    print(json.dumps({k: sorted(v) if v else ["dropped"] for k, v in out.items()}, sort_keys=True))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "plan":
        plan(int(sys.argv[2]), sys.argv[3])
    elif cmd == "send":
        send(sys.argv[2], sys.argv[3])
    elif cmd == "fates":
        fates(sys.argv[2], sys.argv[3], sys.argv[4])
