// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The XDP program that Lanes loads on every interface it serves.
 *
 * A packet arriving on RX queue q that matches the lane filter goes to lane q's
 * AF_XDP socket (xsks[q]), but only when a socket is registered for q; anything
 * else gets XDP_PASS, so ARP, ping and SSH keep working on the host.
 * In sink mode, matching packets are counted and dropped here (an XDP_DROP sink
 * for generator tests). In signed-receive mode (`lanes gen --rx-only --rx xdp`)
 * they are also checked for the generator's signature and counted per stream
 * (received, duplicates, reordered, highest sequence, one-way latency) before the
 * drop. Per-queue counters live in a per-CPU array.
 * The run's config is in the object's .rodata (lanes_cfg), frozen at load. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lanes_shared.h"

/* The per-flow policer: a token bucket per 5-tuple, emulating a cloud's
 * per-flow ceiling (EC2: 5 Gbps per flow outside a cluster placement group). */
struct lanes_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family; /* 4 or 6 */
	__u8 pad[2];
};

/* No lock: RSS keeps a flow on one RX queue, so one CPU at a time updates
 * its bucket (the same reason one flow is held to one lane). */
struct lanes_bucket {
	__u64 tokens;  /* bytes */
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lanes_flow_key);
	__type(value, struct lanes_bucket);
} lanes_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, LANES_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} lanes_xsks SEC(".maps");

/* The run's config, written by user space into the object's .rodata before the
 * load (XDPProgram's init) and frozen there by libbpf: the verifier knows every
 * field, so a run's program holds only the branches its config takes (no filter
 * code when nothing is filtered, one forwarding mode, no policer when there is no
 * cap), and a packet pays no map lookup for it. Read through this volatile type
 * only: the compiler must not fold the fields to their zero initial values. */
typedef const volatile struct lanes_config lanes_cfg_t;
lanes_cfg_t lanes_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LANES_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct lanes_qstats);
} lanes_qstats SEC(".maps");

/* Ethernet addresses by 16-bit words. struct ethhdr is packed, so the compiler
 * would move them byte by byte (a load, shift and store each); a frame starts
 * 2-byte aligned (NET_IP_ALIGN), and so do the MACs of struct bpf_fib_lookup and
 * struct lanes_config. The source is read through a volatile type, as the
 * config's must be (lanes_cfg_t). */
static __always_inline void lanes_mac_copy(void *dst, const volatile void *src)
{
	__u16 *d = dst;
	const volatile __u16 *s = src;
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
}

/* A MAC of the config against a frame's. */
static __always_inline int lanes_mac_is(const __u8 *frame, const volatile __u8 *mac)
{
	const __u16 *f = (const __u16 *)frame;
	const volatile __u16 *m = (const volatile __u16 *)mac;
	return f[0] == m[0] && f[1] == m[1] && f[2] == m[2];
}

/* LANES_FORWARD_XDP: key 0 is the port packets leave by (the forwarder's other one). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} lanes_tx_port SEC(".maps");

/* LANES_XDP_ROUTES: the route file's longest-prefix-match tables (value: the
 * route's index in lanes_next_hops), both sized to the route count before load;
 * their keys and next hops are in lanes_shared.h. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lanes_lpm4);
	__type(value, __u32);
} lanes_routes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lanes_lpm6);
	__type(value, __u32);
} lanes_routes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes_next_hop);
} lanes_next_hops SEC(".maps");

/* ctx->data and ctx->data_end loaded afresh after a helper that may move them
 * (bpf_xdp_adjust_tail): an asm load the compiler cannot merge with the values
 * loaded before, whose phi it would otherwise widen with shifts the verifier
 * refuses on pkt_end. */
#define LANES_RELOAD_DATA(ctx) ({ void *_p; asm volatile("%0 = *(u32 *)(%1 + 0)" : "=r"(_p) : "r"(ctx)); _p; })
#define LANES_RELOAD_END(ctx) ({ void *_p; asm volatile("%0 = *(u32 *)(%1 + 4)" : "=r"(_p) : "r"(ctx)); _p; })

struct vlan_hdr_l {
	__be16 tci;
	__be16 proto;
};

/* What lanes_match read of a packet, for the rest of the program to use
 * without parsing it again: the IP header (after any VLAN tags), where the
 * transport header starts, the transport protocol and its ports. */
struct lanes_pkt {
	void *l3;
	__u32 l4_offset; /* from the frame's start */
	__be16 sport;    /* UDP and TCP; 0 when the frame ends before them */
	__be16 dport;
	__u8 proto;
	__u8 family;     /* 4 or 6 */
	__u8 tagged;     /* VLAN tags before the IP header */
	__u8 ports;      /* sport and dport were in the frame */
};

/* The filter's destination port range (cfg->dport_lo..dport_hi; 0..0 takes any)
 * against a UDP or TCP packet's ports: a packet whose ports are both 0 (not in
 * the frame) never matches a range. */
static __always_inline int lanes_ports_match(lanes_cfg_t *cfg, __be16 sport, __be16 dport)
{
	if (cfg->dport_lo == 0 && cfg->dport_hi == 0)
		return 1;
	if (dport == 0 && sport == 0)
		return 0;
	__u16 d = bpf_ntohs(dport);
	return d >= cfg->dport_lo && d <= cfg->dport_hi;
}

/* Returns 1 when the packet matches the filter; fills *p. */
static __always_inline int lanes_match(struct xdp_md *ctx, lanes_cfg_t *cfg, struct lanes_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l4 = 0;
	__u8 proto = 0;

	if ((void *)(eth + 1) > end)
		return 0;
	__u16 type = ((__u16 *)data)[6]; /* h_proto, as one load (see lanes_mac_copy) */
	void *cur = eth + 1;
	p->tagged = 0;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr_l *v = cur;
		if ((void *)(v + 1) > end)
			return 0;
		type = v->proto;
		cur = v + 1;
		p->tagged = 1;
	}

	if (type == bpf_htons(ETH_P_IP)) {
		if (!(cfg->proto_mask & LANES_IPV4))
			return 0;
		struct iphdr *ip = cur;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
		p->family = 4;
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		if (!(cfg->proto_mask & LANES_IPV6))
			return 0;
		struct ipv6hdr *ip6 = cur;
		if ((void *)(ip6 + 1) > end)
			return 0;
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
		p->family = 6;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			/* hop-by-hop 0, routing 43, fragment 44, destination options 60 */
			if (proto != 0 && proto != 43 && proto != 44 && proto != 60)
				break;
			__u8 *eh = l4;
			if ((void *)(eh + 8) > end)
				return 0;
			proto = eh[0];
			l4 = eh + (proto == 44 ? 8 : (eh[1] + 1) * 8);
		}
	} else {
		return 0;
	}

	if (cfg->l4 && proto != cfg->l4)
		return 0;
	p->l3 = cur;
	p->proto = proto;
	p->l4_offset = (__u32)(l4 - data);
	p->sport = 0;
	p->dport = 0;
	p->ports = 0;
	if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
		/* UDP and TCP both keep the ports at offsets 0 and 2. */
		__be16 *ports = l4;
		if ((void *)(ports + 2) <= end) {
			p->sport = ports[0];
			p->dport = ports[1];
			p->ports = 1;
		}
	}
	if (cfg->dport_lo == 0 && cfg->dport_hi == 0)
		return 1;
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	return lanes_ports_match(cfg, p->sport, p->dport);
}

/* The flow key of a packet lanes_match took (the policer's, the signed receiver's). */
static __always_inline void lanes_flow_key_of(struct xdp_md *ctx, const struct lanes_pkt *p, struct lanes_flow_key *key)
{
	void *end = (void *)(long)ctx->data_end;
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		if ((void *)(ip + 1) > end)
			return;
		key->saddr[0] = ip->saddr;
		key->daddr[0] = ip->daddr;
	} else {
		struct ipv6hdr *ip6 = p->l3;
		if ((void *)(ip6 + 1) > end)
			return;
		__builtin_memcpy(key->saddr, &ip6->saddr, 16);
		__builtin_memcpy(key->daddr, &ip6->daddr, 16);
	}
	key->sport = p->sport;
	key->dport = p->dport;
	key->proto = p->proto;
	key->family = p->family;
}

/* Returns 1 when the flow is over its cap (drop), 0 to let it through. */
static __always_inline int lanes_police(lanes_cfg_t *cfg, const struct lanes_flow_key *key, __u64 bytes)
{
	__u64 now = bpf_ktime_get_ns();
	struct lanes_bucket *b = bpf_map_lookup_elem(&lanes_buckets, key);
	if (!b) {
		struct lanes_bucket fresh = { .tokens = cfg->flow_burst_bytes, .last_ns = now };
		bpf_map_update_elem(&lanes_buckets, key, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&lanes_buckets, key);
		if (!b)
			return 0;
	}
	int over = 0;
	__u64 cap = cfg->flow_cap_bps;
	__u64 elapsed = now > b->last_ns ? now - b->last_ns : 0;
	__u64 tokens;
	if (elapsed >= 100000000ULL) {
		/* 100 ms idle refills any sane burst; also keeps the product below 2^64. */
		tokens = cfg->flow_burst_bytes;
		b->last_ns = now;
	} else {
		__u64 credit = elapsed * cap / 8000000000ULL;
		tokens = b->tokens + credit;
		/* Advance the clock only by the time the whole bytes took: no drift. */
		b->last_ns += credit * 8000000000ULL / cap;
		if (tokens >= cfg->flow_burst_bytes) {
			tokens = cfg->flow_burst_bytes;
			b->last_ns = now;
		}
	}
	if (tokens >= bytes)
		tokens -= bytes;
	else
		over = 1;
	b->tokens = tokens;
	return over;
}

/* Signed receive: the receiving end of `lanes gen` in XDP, per CPU (merged by
 * user space: sums, and the highest sequence's maximum). RSS keeps a stream on one
 * queue and so one CPU, where its window sees its order; a stream spread over CPUs
 * would count late arrivals on each as reordered. Streams are tracked by the id in
 * their signature, whatever the receiver was told to expect: every id below
 * cfg->streams (the map's size), and a signed packet of a higher id is counted in
 * overflow_packets, never as unsigned. The first packet of a stream on a CPU records
 * its flow and queue, so the receiver reports what it saw. The window logic is StreamRx's
 * (Sources/LanesEngine/Apps/GenApp.swift) and the buckets are LatencyHistogram's
 * (Sources/LanesCore/LatencyHistogram.swift): keep the three in step. The
 * structs (lanes_stream_rx, lanes_rx_totals) are in lanes_shared.h. */

#define LANES_SIGNATURE_MAGIC 0x4c4e /* "LN" */
#define LANES_HIST_BUCKETS (64 + 35 * 32)

/* Sized to the stream count before load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes_stream_rx);
} lanes_rx_streams SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LANES_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} lanes_rx_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes_rx_totals);
} lanes_rx_totals SEC(".maps");

/* Word j of the window as it stands (j outside 0..3: zero). */
static __always_inline __u64 lanes_word(const __u64 *w, int j)
{
	return j == 0 ? w[0] : j == 1 ? w[1] : j == 2 ? w[2] : j == 3 ? w[3] : 0;
}

/* Moves the window up by d sequences: bit i becomes bit i+d. */
static __always_inline void lanes_window_shift(__u64 *w, __u64 d)
{
	if (d >= 256) {
		w[0] = w[1] = w[2] = w[3] = 0;
		return;
	}
	int words = (int)(d / 64);
	__u32 bits = (__u32)(d % 64);
	__u64 o[4];
#pragma unroll
	for (int k = 0; k < 4; k++) {
		__u64 hi = lanes_word(w, k - words) << bits;
		__u64 lo = bits ? lanes_word(w, k - words - 1) >> (64 - bits) : 0;
		o[k] = hi | lo;
	}
	w[0] = o[0]; w[1] = o[1]; w[2] = o[2]; w[3] = o[3];
}

static __always_inline void lanes_stream_record(struct lanes_stream_rx *s, __u64 seq)
{
	if (seq >= s->highest) {
		lanes_window_shift(s->window, seq - s->highest + 1);
		s->window[0] |= 1;
		s->highest = seq + 1;
		s->received++;
		return;
	}
	__u64 i = s->highest - 1 - seq;
	if (i >= 256) {
		s->reordered++;
		s->received++;
		return;
	}
	__u32 word = (__u32)(i / 64);
	__u64 m = 1ULL << (i % 64);
	__u64 *w = word == 0 ? &s->window[0] : word == 1 ? &s->window[1] : word == 2 ? &s->window[2] : &s->window[3];
	if (*w & m) {
		s->duplicates++;
	} else {
		*w |= m;
		s->reordered++;
		s->received++;
	}
}

/* LatencyHistogram.index: exact below 64 ns, then 32 sub-buckets per power of two. */
static __always_inline __u32 lanes_hist_index(__u64 v)
{
	if (v < 64)
		return (__u32)v;
	__u32 e = 0;
	__u64 x = v;
	if (x >> 32) { e += 32; x >>= 32; }
	if (x >> 16) { e += 16; x >>= 16; }
	if (x >> 8) { e += 8; x >>= 8; }
	if (x >> 4) { e += 4; x >>= 4; }
	if (x >> 2) { e += 2; x >>= 2; }
	if (x >> 1) { e += 1; }
	__u32 sub = (__u32)((v >> (e - 5)) & 31);
	__u32 idx = 64 + (e - 6) * 32 + sub;
	return idx < LANES_HIST_BUCKETS ? idx : LANES_HIST_BUCKETS - 1;
}

static __always_inline void lanes_signed_rx(struct xdp_md *ctx, lanes_cfg_t *cfg, __u32 l4_offset,
					    const struct lanes_flow_key *key)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct lanes_rx_totals *t = bpf_map_lookup_elem(&lanes_rx_totals, &zero);
	if (!t)
		return;
	if (l4_offset > 256) {
		t->unsigned_packets++;
		return;
	}
	__u8 *sig = data + l4_offset + 8; /* after the UDP header */
	if ((void *)(sig + 16) > end) {
		t->unsigned_packets++;
		return;
	}
	__u16 magic = bpf_ntohs(*(__u16 *)sig);
	__u32 stream = bpf_ntohs(*(__u16 *)(sig + 2));
	if (magic != LANES_SIGNATURE_MAGIC) {
		t->unsigned_packets++;
		return;
	}
	if (stream >= cfg->streams) {
		t->overflow_packets++;
		return;
	}
	struct lanes_stream_rx *s = bpf_map_lookup_elem(&lanes_rx_streams, &stream);
	if (!s) {
		t->unsigned_packets++;
		return;
	}
	__u64 seq = bpf_ntohl(*(__u32 *)(sig + 4));
	__u64 ts = bpf_be64_to_cpu(*(__u64 *)(sig + 8));
	if (s->family == 0) {
		__builtin_memcpy(s->saddr, key->saddr, 16);
		__builtin_memcpy(s->daddr, key->daddr, 16);
		s->sport = bpf_ntohs(key->sport);
		s->dport = bpf_ntohs(key->dport);
		s->proto = key->proto;
		s->queue = ctx->rx_queue_index;
		s->family = key->family;
	}
	lanes_stream_record(s, seq);
	t->signed_packets++;
	__u64 now = bpf_ktime_get_ns();
	if (now >= ts) {
		__u64 lat = now - ts;
		__u32 b = lanes_hist_index(lat);
		__u64 *bucket = bpf_map_lookup_elem(&lanes_rx_latency, &b);
		if (bucket)
			*bucket += 1;
		if (t->latency_count == 0 || lat < t->latency_min)
			t->latency_min = lat;
		if (lat > t->latency_max)
			t->latency_max = lat;
		t->latency_count++;
		t->latency_sum += lat;
	}
}

/* Frags-aware (BPF_F_XDP_HAS_FRAGS): a multi-buffer packet arrives with its
 * headers in the first buffer (all this program reads), and AF_XDP sockets bound
 * with XDP_USE_SG take it whole. Without the flag, veth refuses native XDP above
 * an MTU of about 3.5 KB. */
#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

/* An IPv4 packet the kernel never forwards: a martian source or destination
 * (zeronet, loopback, multicast or class E, either side), by the addresses'
 * first octets as they lie in the header. */
static __always_inline int lanes_ip4_martian(const struct iphdr *ip)
{
	__u8 s = ((const __u8 *)&ip->saddr)[0], d = ((const __u8 *)&ip->daddr)[0];
	return s == 0 || s == 127 || s >= 224 || d == 0 || d == 127 || d >= 224;
}

/* bpf_fib_lookup's parameters of an IPv4 header (the ports and ifindex are the caller's). */
static __always_inline void lanes_fib_ip4(struct bpf_fib_lookup *fib, const struct iphdr *ip)
{
	fib->family = AF_INET;
	fib->tos = ip->tos;
	fib->l4_protocol = ip->protocol;
	fib->tot_len = bpf_ntohs(ip->tot_len);
	fib->ipv4_src = ip->saddr;
	fib->ipv4_dst = ip->daddr;
}

/* What bpf_fib_lookup's answer rc makes of a packet (lanes_forward_fib's and
 * lanes_fwd_fib4's): the verdict, counted by cause; or, where the kernel would
 * forward it by the lanes' other port, the frame's MACs the next hop's and the
 * port's, and -1. v4 and df: an IPv4 packet, and its DF bit. */
static __always_inline int lanes_fib_fate(struct xdp_md *ctx, lanes_cfg_t *cfg, struct lanes_qstats *st,
					  struct ethhdr *eth, const struct bpf_fib_lookup *fib, long rc, int v4, int df)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
		st->blackhole++;
		return XDP_DROP;
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		st->unreachable++;
		return XDP_PASS;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		if (v4 && !df && (cfg->fib_flags & LANES_FIB_DROP_FRAGMENTABLE)) {
			st->too_big_dropped++;
			return XDP_DROP;
		}
		st->too_big++;
		return XDP_PASS;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		/* The kernel forwards it and resolves the neighbour (ARP, NDP); the
		 * lanes take the flow once the neighbour is there. */
		st->unresolved++;
		return XDP_PASS;
	default: /* NOT_FWDED, FWD_DISABLED, UNSUPP_LWT */
		st->not_forwarded++;
		return XDP_PASS;
	}
	/* Back out of the port it came in on (the kernel also sends a redirect), or by
	 * an interface the lanes do not send on. */
	if (fib->ifindex != cfg->fib_egress || fib->ifindex == ctx->ingress_ifindex) {
		st->other_port++;
		return XDP_PASS;
	}
	lanes_mac_copy(eth->h_dest, fib->dmac);
	lanes_mac_copy(eth->h_source, fib->smac);
	return -1;
}

/* `lanes fwd --mode l3 --routes kernel`: the kernel's FIB decides, once per packet.
 * bpf_fib_lookup applies the policy rules, every table, every route type and the
 * kernel's own multipath choice (fib_multipath_hash_policy, from the addresses,
 * ports and flow label given here), and checks the egress MTU. A packet it would
 * forward by the lanes' other port gets the next hop's and the port's MACs here,
 * and the lane decrements TTL or hop limit; anything the kernel would answer,
 * drop or handle in its own way (ICMP errors, local delivery, fragmenting,
 * options, redirects) is passed to the kernel, and counted by cause.
 * Returns the XDP verdict, or -1 to redirect to the lane. */
static __always_inline int lanes_forward_fib(struct xdp_md *ctx, lanes_cfg_t *cfg, struct lanes_qstats *st,
					     const struct lanes_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup fib = {};
	int v4 = 0, df = 0;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	/* The kernel drops a frame to another host's MAC (PACKET_OTHERHOST), and takes
	 * broadcast and multicast frames for itself. */
	if (!lanes_mac_is(eth->h_dest, cfg->mac)) {
		st->not_forwarded++;
		return XDP_PASS;
	}
	if (p->tagged)
		return XDP_PASS;
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		/* Options (ihl > 5) and fragments are the kernel's to forward; so are martians. */
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)) || lanes_ip4_martian(ip)) {
			st->not_forwarded++;
			return XDP_PASS;
		}
		if (ip->ttl <= 1) {
			st->ttl_expired++;
			return XDP_PASS;
		}
		v4 = 1;
		df = (ip->frag_off & bpf_htons(0x4000)) != 0;
		lanes_fib_ip4(&fib, ip);
	} else {
		struct ipv6hdr *ip6 = p->l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		__u8 nh = ip6->nexthdr;
		__u8 *sa = ip6->saddr.in6_u.u6_addr8, *da = ip6->daddr.in6_u.u6_addr8;
		/* Extension headers (hop-by-hop, routing, fragment, destination options),
		 * multicast and link-local (never forwarded) are the kernel's. */
		if (nh == 0 || nh == 43 || nh == 44 || nh == 60 || da[0] == 0xff || sa[0] == 0xff ||
		    (da[0] == 0xfe && (da[1] & 0xc0) == 0x80) || (sa[0] == 0xfe && (sa[1] & 0xc0) == 0x80)) {
			st->not_forwarded++;
			return XDP_PASS;
		}
		if (ip6->hop_limit <= 1) {
			st->ttl_expired++;
			return XDP_PASS;
		}
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		fib.l4_protocol = nh;
		fib.tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	}
	/* Without extension headers or options, the ports lanes_match read follow the IP header. */
	if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP) {
		if (!p->ports)
			return XDP_PASS;
		fib.sport = p->sport;
		fib.dport = p->dport;
	}
	fib.ifindex = ctx->ingress_ifindex;
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	/* On -1 the caller restores the MACs if no socket takes it. */
	return lanes_fib_fate(ctx, cfg, st, eth, &fib, rc, v4, df);
}

/* The IPv4 header checksum over ihl 32-bit words: 0xffff when right. Each word
 * is bounds-checked where it is read (the empty asm keeps the compiler from
 * merging the checks, which the verifier would refuse). */
static __always_inline __u16 lanes_ip_csum_fold(struct iphdr *ip, void *end, __u32 ihl)
{
	if ((void *)(ip + 1) > end)
		return 0;
	__u32 *w = (__u32 *)ip;
	__u64 sum = (__u64)w[0] + w[1] + w[2] + w[3] + w[4]; /* the 20 bytes every header has */
	if (ihl > 5) {
		for (int i = 5; i < 15; i++) {
			if (i >= (int)ihl)
				break;
			__u32 *o = w + i;
			asm volatile("" : "+r"(o));
			if ((void *)(o + 1) > end)
				return 0;
			sum += *o;
		}
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* TTL or hop limit down by one, IPv4's with the kernel's ip_decrease_ttl
 * checksum update. Returns 0, or -1 when the header is not in the frame. */
static __always_inline int lanes_ttl_down(void *l3, void *end, int v4)
{
	if (v4) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return -1;
		__u32 check = ip->check;
		check += bpf_htons(0x0100);
		ip->check = (__u16)(check + (check >= 0xffff));
		ip->ttl--;
	} else {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return -1;
		ip6->hop_limit--;
	}
	return 0;
}

/* What a router does once it has chosen to forward (IPForwarding.decrement in
 * Sources/LanesEngine/Apps/ForwardApps.swift, in XDP): the frame is trimmed to
 * the IP packet (a router forwards the packet, not the frame's pad), and TTL or
 * hop limit goes down. ip_len is the IP packet's length (lanes_ip_check's).
 * Returns 0, or -1 when the frame is too short to hold what its header says
 * (never the case after lanes_ip_check). *frame_len becomes the new length. */
static __always_inline int lanes_ip_decrement(struct xdp_md *ctx, const struct lanes_pkt *p, __u32 ip_len, __u64 *frame_len)
{
	int v4 = p->family == 4;
	if (*frame_len <= sizeof(struct ethhdr) + ip_len)
		return lanes_ttl_down(p->l3, (void *)(long)ctx->data_end, v4);
	if (bpf_xdp_adjust_tail(ctx, -(int)(*frame_len - sizeof(struct ethhdr) - ip_len)))
		return -1;
	*frame_len = sizeof(struct ethhdr) + ip_len;
	struct ethhdr *eth = LANES_RELOAD_DATA(ctx);
	return lanes_ttl_down(eth + 1, LANES_RELOAD_END(ctx), v4);
}

/* IPForwarding.check in XDP: the family (4 or 6) when the header may be
 * forwarded (well formed, IPv4 header checksum right, lengths inside the frame),
 * else 0 (malformed or bad checksum) or -1 (behind VLAN tags). *ip_len is the IP
 * packet's length. TTL is the caller's. */
static __always_inline int lanes_ip_check(struct xdp_md *ctx, const struct lanes_pkt *p, __u64 frame_len, __u32 *ip_len)
{
	void *end = (void *)(long)ctx->data_end;
	if (p->tagged)
		return -1;
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		if ((void *)(ip + 1) > end || ip->version != 4)
			return 0;
		__u32 total = bpf_ntohs(ip->tot_len);
		if (total < ip->ihl * 4 || sizeof(struct ethhdr) + total > frame_len)
			return 0;
		*ip_len = total;
		return lanes_ip_csum_fold(ip, end, ip->ihl) == 0xffff ? 4 : 0;
	}
	struct ipv6hdr *ip6 = p->l3;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return 0;
	__u32 total = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (sizeof(struct ethhdr) + total > frame_len)
		return 0;
	*ip_len = total;
	return 6;
}

/* LANES_XDP_ROUTES: L3App (`--routes FILE`) in XDP: the header check, the
 * route file's longest-prefix match, TTL, the route's next hop and the egress
 * port's MAC. Drops by cause; returns -1 to send. */
static __always_inline int lanes_forward_routes(struct xdp_md *ctx, lanes_cfg_t *cfg,
						 struct lanes_qstats *st, const struct lanes_pkt *p, __u64 *frame_len)
{
	__u32 ip_len = 0;
	int family = lanes_ip_check(ctx, p, *frame_len, &ip_len);
	if (family <= 0) {
		st->bad_header++; /* the lanes count non-IP apart; the filter lets none through but 'ip' */
		return XDP_DROP;
	}
	void *end = (void *)(long)ctx->data_end;
	__u32 *route = 0;
	if (family == 4) {
		struct iphdr *ip = p->l3;
		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		if (ip->ttl <= 1) {
			st->ttl_expired++;
			return XDP_DROP;
		}
		struct lanes_lpm4 k = { .prefixlen = 32, .addr = ip->daddr };
		route = bpf_map_lookup_elem(&lanes_routes4, &k);
	} else {
		struct ipv6hdr *ip6 = p->l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		if (ip6->hop_limit <= 1) {
			st->ttl_expired++;
			return XDP_DROP;
		}
		struct lanes_lpm6 k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
		route = bpf_map_lookup_elem(&lanes_routes6, &k);
	}
	struct lanes_next_hop *nh = route ? bpf_map_lookup_elem(&lanes_next_hops, route) : 0;
	if (!nh || !nh->usable) {
		st->no_route++;
		return XDP_DROP;
	}
	__u16 dmac[3];
	lanes_mac_copy(dmac, nh->mac);
	if (lanes_ip_decrement(ctx, p, ip_len, frame_len)) {
		st->bad_header++;
		return XDP_DROP;
	}
	struct ethhdr *eth = LANES_RELOAD_DATA(ctx);
	if ((void *)(eth + 1) > LANES_RELOAD_END(ctx))
		return XDP_DROP;
	lanes_mac_copy(eth->h_dest, dmac);
	lanes_mac_copy(eth->h_source, cfg->src_mac);
	return -1;
}

/* A verdict counted: XDP_PASS in passed, XDP_DROP in dropped; -1 (go on) as it is. */
static __always_inline int lanes_counted(struct lanes_qstats *st, int verdict)
{
	if (verdict == XDP_PASS)
		st->passed++;
	else if (verdict == XDP_DROP)
		st->dropped++;
	return verdict;
}

/* LANES_FORWARD_XDP's last step: XDP_PASS and XDP_DROP counted, -1 sent by
 * lanes_tx_port (forwarded, frame_len bytes; no port there: dropped). */
static __always_inline int lanes_xdp_out(struct lanes_qstats *st, int verdict, __u64 frame_len)
{
	if (lanes_counted(st, verdict) != -1)
		return verdict;
	verdict = bpf_redirect_map(&lanes_tx_port, 0, XDP_DROP);
	if (verdict == XDP_REDIRECT) {
		st->forwarded++;
		st->forwarded_bytes += frame_len;
	} else {
		st->no_route++;
		st->dropped++;
	}
	return verdict;
}

/* LANES_XDP_FIB's common case in one pass, for lanes_xdp_fwd: an untagged IPv4
 * packet without options that fills its frame exactly (nothing to trim), to
 * this port's MAC, its header checksum right, neither a fragment nor a martian,
 * TTL over 1, and for UDP and TCP the ports in the frame; one the filter takes
 * (IPv4 with its transport and ports), with no policer. Of such a packet lanes_admit,
 * lanes_ip_check and lanes_forward_fib would check just this, so its fate and
 * counts are theirs; it is parsed once, with no struct lanes_pkt to fill and
 * read back. Returns the verdict, or LANES_GENERAL, having counted and changed
 * nothing, for any other packet (the general path takes it). */
#define LANES_GENERAL (-2)
static __always_inline int lanes_fwd_fib4(struct xdp_md *ctx, lanes_cfg_t *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ((__u16 *)data)[6] != bpf_htons(ETH_P_IP) || *(__u8 *)ip != 0x45)
		return LANES_GENERAL;
	__u64 len = (__u64)(end - data);
	/* The frame holds the packet and no more (and tot_len covers the header: len is
	 * at least 34); ip_check's length tests. */
	if (sizeof(*eth) + bpf_ntohs(ip->tot_len) != len)
		return LANES_GENERAL;
	if (ip->ttl <= 1 || (ip->frag_off & bpf_htons(0x3fff)) || lanes_ip4_martian(ip) || !lanes_mac_is(eth->h_dest, cfg->mac))
		return LANES_GENERAL;
	if (lanes_ip_csum_fold(ip, end, 5) != 0xffff)
		return LANES_GENERAL;
	/* The filter's transport and ports (lanes_match's tests). */
	__u8 proto = ip->protocol;
	if (cfg->l4 && proto != cfg->l4)
		return LANES_GENERAL;
	struct bpf_fib_lookup fib = {};
	if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
		__be16 *ports = (void *)(ip + 1);
		if ((void *)(ports + 2) > end)
			return LANES_GENERAL;
		fib.sport = ports[0];
		fib.dport = ports[1];
	}
	/* Other transports keep ports 0 here, which no range matches. */
	if (!lanes_ports_match(cfg, fib.sport, fib.dport))
		return LANES_GENERAL;
	__u32 q = ctx->rx_queue_index;
	struct lanes_qstats *st = bpf_map_lookup_elem(&lanes_qstats, &q);
	if (!st)
		return XDP_PASS;
	lanes_fib_ip4(&fib, ip);
	fib.ifindex = ctx->ingress_ifindex;
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	st->matched++;
	st->matched_bytes += len;
	int verdict = lanes_fib_fate(ctx, cfg, st, eth, &fib, rc, 1, (ip->frag_off & bpf_htons(0x4000)) != 0);
	if (verdict == -1)
		lanes_ttl_down(ip, end, 1);
	return lanes_xdp_out(st, verdict, len);
}

/* LANES_FORWARD_XDP: `lanes fwd --path xdp` forwards in the driver's receive
 * path, as xdp-forward does, with the lanes' counters: io as it came, macswap
 * back out by XDP_TX, l2 to the next hop, l3 by the kernel's FIB (the header
 * check first: a packet the kernel would drop for its header goes to the kernel,
 * which drops it; then the same lanes_forward_fib as the lanes, and TTL here) or
 * by the route file's tables; then out by lanes_tx_port. */
static __always_inline int lanes_xdp_forward(struct xdp_md *ctx, lanes_cfg_t *cfg,
					     struct lanes_qstats *st, const struct lanes_pkt *p, __u64 frame_len)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end) {
		st->passed++;
		return XDP_PASS;
	}
	int verdict = -1;
	switch (cfg->xdp_fwd) {
	case LANES_XDP_IO:
		break;
	case LANES_XDP_MACSWAP: {
		__u16 tmp[3];
		lanes_mac_copy(tmp, eth->h_dest);
		lanes_mac_copy(eth->h_dest, eth->h_source);
		lanes_mac_copy(eth->h_source, tmp);
		st->forwarded++;
		st->forwarded_bytes += frame_len;
		return XDP_TX;
	}
	case LANES_XDP_L2:
		lanes_mac_copy(eth->h_dest, cfg->next_hop);
		lanes_mac_copy(eth->h_source, cfg->src_mac);
		break;
	case LANES_XDP_FIB: {
		__u32 ip_len = 0;
		if (lanes_ip_check(ctx, p, frame_len, &ip_len) <= 0) {
			/* The kernel's to drop (and count). */
			st->not_forwarded++;
			verdict = XDP_PASS;
			break;
		}
		verdict = lanes_forward_fib(ctx, cfg, st, p);
		if (verdict == -1 && lanes_ip_decrement(ctx, p, ip_len, &frame_len)) {
			st->bad_header++; /* never after lanes_ip_check */
			verdict = XDP_DROP;
		}
		break;
	}
	default:
		verdict = lanes_forward_routes(ctx, cfg, st, p, &frame_len);
		break;
	}
	return lanes_xdp_out(st, verdict, frame_len);
}

/* What every program does first: the queue's counters, the
 * filter (unmatched: passed), the per-flow policer (over: dropped), the matched
 * counts. *bytes becomes the packet's length, every buffer of a multi-buffer one
 * for a program with frags (a helper call, made for matched packets only).
 * Returns the verdict, or -1 to go on with *st, *p and *bytes filled in. */
static __always_inline int lanes_admit(struct xdp_md *ctx, lanes_cfg_t *cfg, struct lanes_qstats **st,
				       struct lanes_pkt *p, int frags, __u64 *bytes)
{
	__u32 q = ctx->rx_queue_index;
	*st = bpf_map_lookup_elem(&lanes_qstats, &q);
	if (!*st)
		return XDP_PASS;
	if (!lanes_match(ctx, cfg, p)) {
		(*st)->passed++;
		return XDP_PASS;
	}
	*bytes = frags ? bpf_xdp_get_buff_len(ctx) : (__u64)((long)ctx->data_end - (long)ctx->data);
	if (cfg->flow_cap_bps) {
		struct lanes_flow_key key = {};
		lanes_flow_key_of(ctx, p, &key);
		if (lanes_police(cfg, &key, *bytes)) {
			(*st)->policed++;
			return XDP_DROP;
		}
	}
	(*st)->matched++;
	(*st)->matched_bytes += *bytes;
	return -1;
}

SEC("xdp.frags")
int lanes_xdp(struct xdp_md *ctx)
{
	lanes_cfg_t *cfg = &lanes_cfg;
	struct lanes_qstats *st;
	struct lanes_pkt p;
	__u64 bytes = 0;
	int admitted = lanes_admit(ctx, cfg, &st, &p, 1, &bytes);
	if (admitted >= 0)
		return admitted;
	if (cfg->action == LANES_SIGNED_RX && p.proto == IPPROTO_UDP) {
		struct lanes_flow_key key = {};
		lanes_flow_key_of(ctx, &p, &key);
		lanes_signed_rx(ctx, cfg, p.l4_offset, &key);
	}
	if (cfg->action == LANES_SINK || cfg->action == LANES_SIGNED_RX) {
		st->dropped++;
		return XDP_DROP;
	}
	if (cfg->action == LANES_COUNT_PASS) {
		st->passed++;
		return XDP_PASS;
	}
	/* LANES_FORWARD_FIB: the frame's MACs as they came, in case no socket takes it. */
	__u16 macs[6];
	int rewritten = 0;
	if (cfg->action == LANES_FORWARD_FIB) {
		struct ethhdr *eth = (void *)(long)ctx->data;
		if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
			return XDP_PASS;
		lanes_mac_copy(macs, eth->h_dest);
		lanes_mac_copy(macs + 3, eth->h_source);
		int verdict = lanes_counted(st, lanes_forward_fib(ctx, cfg, st, &p));
		if (verdict != -1)
			return verdict;
		rewritten = 1;
	}
	int verdict = bpf_redirect_map(&lanes_xsks, ctx->rx_queue_index, XDP_PASS);
	if (verdict == XDP_REDIRECT) {
		st->redirected++;
		return verdict;
	}
	/* No socket on this queue yet (starting, stopping): the kernel takes it as it came. */
	if (rewritten) {
		struct ethhdr *eth = (void *)(long)ctx->data;
		if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
			return XDP_PASS;
		lanes_mac_copy(eth->h_dest, macs);
		lanes_mac_copy(eth->h_source, macs + 3);
	}
	st->passed++;
	return verdict;
}

/* LANES_FORWARD_XDP (`lanes fwd --path xdp`) as a program of its own: the same
 * maps, filter, policer and counters as lanes_xdp (lanes_admit), without the
 * lanes' actions, so the path a forwarded packet runs through holds nothing else.
 * Two sections: lanes_xdp_fwd without frags, where every packet is one buffer
 * (the kernel attaches it only where the MTU keeps it so) and its length is
 * data_end - data; lanes_fwd_frags with them (multi-buffer, above about 3.5 KB),
 * where the length takes a helper call. */
SEC("xdp")
int lanes_xdp_fwd(struct xdp_md *ctx)
{
	lanes_cfg_t *cfg = &lanes_cfg;
	if (cfg->xdp_fwd == LANES_XDP_FIB && (cfg->proto_mask & LANES_IPV4) && !cfg->flow_cap_bps) {
		int verdict = lanes_fwd_fib4(ctx, cfg);
		if (verdict != LANES_GENERAL)
			return verdict;
	}
	struct lanes_qstats *st;
	struct lanes_pkt p;
	__u64 bytes = 0;
	int admitted = lanes_admit(ctx, cfg, &st, &p, 0, &bytes);
	if (admitted >= 0)
		return admitted;
	return lanes_xdp_forward(ctx, cfg, st, &p, bytes);
}

SEC("xdp.frags")
int lanes_fwd_frags(struct xdp_md *ctx)
{
	lanes_cfg_t *cfg = &lanes_cfg;
	struct lanes_qstats *st;
	struct lanes_pkt p;
	__u64 bytes = 0;
	int admitted = lanes_admit(ctx, cfg, &st, &p, 1, &bytes);
	if (admitted >= 0)
		return admitted;
	return lanes_xdp_forward(ctx, cfg, st, &p, bytes);
}

char _license[] SEC("license") = "Dual BSD/GPL";
