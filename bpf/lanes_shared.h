/* The layouts the XDP programs (bpf/lanes.bpf.c) share with Swift: the config
 * (the object's .rodata, lanes_cfg), the per-queue counters, the route tables, the signed receiver's
 * counts, the live-frames program's slots and lanes, the constants and enums. One header,
 * compiled by clang -target bpf and imported into Swift through CLanes
 * (Sources/CLanes/shim.h); the static asserts hold the layout on both sides, and
 * Tests/LanesXDPTests/LayoutTests.swift checks Swift's view of it. */
#ifndef LANES_SHARED_H
#define LANES_SHARED_H

#include <linux/types.h>

#define LANES_MAX_QUEUES 256
#define LANES_MAGIC 0x4c414e45 /* "LANE" */

enum lanes_action { LANES_REDIRECT = 0, LANES_SINK = 1, LANES_COUNT_PASS = 2, LANES_SIGNED_RX = 3, LANES_FORWARD_FIB = 4,
		   LANES_FORWARD_XDP = 5 };
/* LANES_FORWARD_XDP (`lanes fwd --path xdp`): what the program does before it
 * sends the packet by lanes_tx_port (or back out, macswap). */
enum lanes_xdp_fwd { LANES_XDP_IO = 0, LANES_XDP_MACSWAP = 1, LANES_XDP_L2 = 2, LANES_XDP_FIB = 3, LANES_XDP_ROUTES = 4 };
enum lanes_fib_flags { LANES_FIB_DROP_FRAGMENTABLE = 1 };
enum lanes_proto { LANES_IPV4 = 1, LANES_IPV6 = 2 };

struct lanes_config {
	__u32 magic;
	__u32 action;     /* enum lanes_action */
	__u32 proto_mask; /* enum lanes_proto bits; 0 = nothing matches */
	__u32 l4;         /* 0 any, IPPROTO_UDP, IPPROTO_TCP */
	__u16 dport_lo;   /* inclusive; 0..0 = any port */
	__u16 dport_hi;
	__u32 streams;    /* LANES_SIGNED_RX: stream ids below this are counted */
	__u64 flow_cap_bps; /* per-flow policer: 0 = off */
	__u64 flow_burst_bytes;
	/* LANES_FORWARD_FIB: the lanes send by this interface only (the forwarder's
	 * other port); this interface's own MAC; enum lanes_fib_flags. */
	__u32 fib_egress;
	__u32 fib_flags;
	__u8 mac[6];
	__u8 pad[2];
	/* LANES_FORWARD_XDP: enum lanes_xdp_fwd; LANES_XDP_L2's next hop; the egress
	 * port's MAC (LANES_XDP_L2 and LANES_XDP_ROUTES write it as the source). */
	__u32 xdp_fwd;
	__u8 next_hop[6];
	__u8 src_mac[6];
};

struct lanes_qstats {
	__u64 redirected; /* matched and handed to the queue's AF_XDP socket */
	__u64 passed;     /* given to the kernel stack */
	__u64 dropped;    /* matched in sink mode */
	__u64 matched_bytes;
	__u64 policed;    /* over the per-flow cap: dropped here */
	/* LANES_FORWARD_FIB, by cause (each also in passed or dropped): */
	__u64 unresolved;    /* next hop without a neighbour: passed (the kernel resolves it) */
	__u64 blackhole;     /* a blackhole route: dropped */
	__u64 unreachable;   /* an unreachable or prohibit route: passed (the kernel answers with ICMP) */
	__u64 ttl_expired;   /* TTL or hop limit 1 or less: passed (ICMP time exceeded) */
	__u64 too_big;       /* over the egress MTU: passed (ICMP frag-needed or packet-too-big, or fragmented) */
	__u64 too_big_dropped; /* over the egress MTU with DF clear, and the operator asked for drops */
	__u64 not_forwarded; /* no unicast route (local, broadcast, no route, throw), forwarding off, martian,
	                      * not to this port's MAC, IPv4 options or fragments, IPv6 extension headers
	                      * or link-local: passed, for the kernel to do what it does */
	__u64 other_port;    /* the route leaves by another interface, or back out of this one: passed */
	__u64 matched;       /* packets that matched the filter (matched_bytes' packets) */
	/* LANES_FORWARD_XDP: sent by lanes_tx_port (or XDP_TX), and their bytes; */
	__u64 forwarded;
	__u64 forwarded_bytes;
	/* LANES_XDP_ROUTES, dropped by cause: no route by this port; a malformed
	 * header or a bad IPv4 header checksum (LANES_XDP_FIB passes these to the
	 * kernel, which drops them, and counts them in not_forwarded). */
	__u64 no_route;
	__u64 bad_header;
};

_Static_assert(sizeof(struct lanes_config) == 72, "struct lanes_config: 72 bytes");
_Static_assert(__builtin_offsetof(struct lanes_config, flow_cap_bps) == 24, "lanes_config.flow_cap_bps at 24");
_Static_assert(__builtin_offsetof(struct lanes_config, fib_egress) == 40, "lanes_config.fib_egress at 40");
_Static_assert(__builtin_offsetof(struct lanes_config, mac) == 48, "lanes_config.mac at 48");
_Static_assert(__builtin_offsetof(struct lanes_config, xdp_fwd) == 56, "lanes_config.xdp_fwd at 56");
_Static_assert(__builtin_offsetof(struct lanes_config, next_hop) == 60, "lanes_config.next_hop at 60");
_Static_assert(__builtin_offsetof(struct lanes_config, src_mac) == 66, "lanes_config.src_mac at 66");
_Static_assert(sizeof(struct lanes_qstats) == 18 * 8, "struct lanes_qstats: 18 u64 counters");

/* LANES_XDP_ROUTES: the route file's LPM keys and each route's next hop. */
struct lanes_lpm4 {
	__u32 prefixlen;
	__u32 addr;
};
struct lanes_lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};
struct lanes_next_hop {
	__u8 mac[6];
	__u8 usable; /* the route leaves by this program's egress port */
	__u8 pad;
};

/* LANES_SIGNED_RX: per stream and CPU (the signature's layout is GenApp's). */
struct lanes_stream_rx {
	__u64 received;
	__u64 duplicates;
	__u64 reordered;
	__u64 highest;   /* one past the highest sequence seen */
	__u64 window[4]; /* bit i: sequence highest-1-i seen */
	__u32 saddr[4];  /* the first packet's flow on this CPU (family 0: none yet) */
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 proto;
	__u16 pad;
	__u32 queue;     /* the RX queue it arrived on */
	__u32 pad2;
};

struct lanes_rx_totals {
	__u64 signed_packets;
	__u64 unsigned_packets;
	__u64 latency_count;
	__u64 latency_min;
	__u64 latency_max;
	__u64 latency_sum;
	__u64 overflow_packets; /* signed, with a stream id of cfg->streams or more */
};

_Static_assert(sizeof(struct lanes_lpm4) == 8 && sizeof(struct lanes_lpm6) == 20 && sizeof(struct lanes_next_hop) == 8, "route layouts");
_Static_assert(sizeof(struct lanes_stream_rx) == 14 * 8, "struct lanes_stream_rx: 14 u64 words");
_Static_assert(__builtin_offsetof(struct lanes_stream_rx, saddr) == 64 && __builtin_offsetof(struct lanes_stream_rx, family) == 100
	       && __builtin_offsetof(struct lanes_stream_rx, queue) == 104, "lanes_stream_rx's flow");
_Static_assert(sizeof(struct lanes_rx_totals) == 7 * 8, "struct lanes_rx_totals: 7 u64 words");

/* bpf/lanes_gen.bpf.c, the live-frames transmit program: its pattern slots and
 * its lanes' states, in a map user space mmaps (Sources/LanesXDP/LiveFrames.swift). */
#define LANES_GEN_MAX_CPUS 1024
#define LANES_GEN_TEMPLATE 128

/* One packet of a lane's pattern. */
struct lanes_gen_slot {
	__u64 hdr[LANES_GEN_TEMPLATE / 8]; /* headers and signature; the rest is zero */
	__u32 stream;                 /* global stream id: index into lanes_gen_seq */
	__u16 length;                 /* frame length without FCS */
	__u16 sig;                    /* offset of the 16-byte signature */
	__u16 csum;                   /* offset of the UDP checksum */
	__u16 pad[3];
};

/* A lane's state, at index = its CPU. Written by user space before the lane's
 * first run; `next` and the counters are then the program's, on that CPU only. */
struct lanes_gen_lane {
	__u32 first_slot; /* the lane's pattern: slots first_slot .. first_slot+slots-1 */
	__u32 slots;      /* 0: the lane sends nothing */
	__u32 next;       /* next slot, 0..slots-1 */
	__u32 ifindex;    /* redirect target */
	__u64 sent;       /* frames handed to the redirect */
	__u64 limit;      /* stop at this many (drop the rest): exact --count */
	__u64 bytes;      /* of the frames sent */
	__u64 short_frames; /* data_in smaller than a template: never with Lanes' set-up */
	__u32 source_ifindex; /* live frames come from this device (BPF_PROG_RUN's: lo) */
	__u32 pad;
};

_Static_assert(sizeof(struct lanes_gen_slot) == 144 && __builtin_offsetof(struct lanes_gen_slot, stream) == 128, "struct lanes_gen_slot");
_Static_assert(sizeof(struct lanes_gen_lane) == 56 && __builtin_offsetof(struct lanes_gen_lane, source_ifindex) == 48, "struct lanes_gen_lane");

#endif
