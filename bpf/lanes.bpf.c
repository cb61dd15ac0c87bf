// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The XDP program that Lanes loads on every interface it serves.
 *
 * A packet arriving on RX queue q that matches the lane filter goes to lane q's
 * AF_XDP socket (xsks[q]), but only when a socket is registered for q; anything
 * else gets XDP_PASS, so ARP, ping and SSH keep working on the host.
 * In sink mode, matching packets are counted and dropped here (an XDP_DROP sink
 * for generator tests). Per-queue counters live in a per-CPU array.
 * The config map's magic lets a later Lanes recognise a program left behind. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define LANES_MAX_QUEUES 256
#define LANES_MAGIC 0x4c414e45 /* "LANE" */

enum lanes_action { LANES_REDIRECT = 0, LANES_SINK = 1, LANES_COUNT_PASS = 2 };
enum lanes_proto { LANES_IPV4 = 1, LANES_IPV6 = 2 };

struct lanes_config {
	__u32 magic;
	__u32 action;     /* enum lanes_action */
	__u32 proto_mask; /* enum lanes_proto bits; 0 = nothing matches */
	__u32 l4;         /* 0 any, IPPROTO_UDP, IPPROTO_TCP */
	__u16 dport_lo;   /* inclusive; 0..0 = any port */
	__u16 dport_hi;
	__u32 pad;
	__u64 flow_cap_bps; /* per-flow policer: 0 = off */
	__u64 flow_burst_bytes;
};

struct lanes_qstats {
	__u64 redirected; /* matched and handed to the queue's AF_XDP socket */
	__u64 passed;     /* given to the kernel stack */
	__u64 dropped;    /* matched in sink mode */
	__u64 matched_bytes;
	__u64 policed;    /* over the per-flow cap: dropped here */
};

/* The per-flow policer: a token bucket per 5-tuple, emulating a cloud's
 * per-flow ceiling (EC2: 5 Gbps per flow outside a cluster placement group). */
struct lanes_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes_config);
} lanes_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LANES_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct lanes_qstats);
} lanes_qstats SEC(".maps");

struct vlan_hdr_l {
	__be16 tci;
	__be16 proto;
};

/* Returns 1 when the packet matches the filter; fills the flow key. */
static __always_inline int lanes_match(struct xdp_md *ctx, const struct lanes_config *cfg,
				       struct lanes_flow_key *key)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l4 = 0;
	__u8 proto = 0;

	if ((void *)(eth + 1) > end)
		return 0;
	__u16 type = eth->h_proto;
	void *cur = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr_l *v = cur;
		if ((void *)(v + 1) > end)
			return 0;
		type = v->proto;
		cur = v + 1;
	}

	if (type == bpf_htons(ETH_P_IP)) {
		if (!(cfg->proto_mask & LANES_IPV4))
			return 0;
		struct iphdr *ip = cur;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
		key->saddr[0] = ip->saddr;
		key->daddr[0] = ip->daddr;
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		if (!(cfg->proto_mask & LANES_IPV6))
			return 0;
		struct ipv6hdr *ip6 = cur;
		if ((void *)(ip6 + 1) > end)
			return 0;
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
		__builtin_memcpy(key->saddr, &ip6->saddr, 16);
		__builtin_memcpy(key->daddr, &ip6->daddr, 16);
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
	key->proto = proto;
	if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
		/* UDP and TCP both keep the ports at offsets 0 and 2. */
		__be16 *ports = l4;
		if ((void *)(ports + 2) <= end) {
			key->sport = ports[0];
			key->dport = ports[1];
		}
	}
	if (cfg->dport_lo == 0 && cfg->dport_hi == 0)
		return 1;
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	__u16 dport = bpf_ntohs(key->dport);
	if (key->dport == 0 && key->sport == 0)
		return 0;
	return dport >= cfg->dport_lo && dport <= cfg->dport_hi;
}

/* Returns 1 when the flow is over its cap (drop), 0 to let it through. */
static __always_inline int lanes_police(const struct lanes_config *cfg, const struct lanes_flow_key *key, __u64 bytes)
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

SEC("xdp")
int lanes_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 q = ctx->rx_queue_index;
	struct lanes_config *cfg = bpf_map_lookup_elem(&lanes_config, &zero);
	struct lanes_qstats *st = bpf_map_lookup_elem(&lanes_qstats, &q);

	if (!cfg || !st)
		return XDP_PASS;
	struct lanes_flow_key key = {};
	if (!lanes_match(ctx, cfg, &key)) {
		st->passed++;
		return XDP_PASS;
	}
	__u64 bytes = (__u64)(ctx->data_end - ctx->data);
	if (cfg->flow_cap_bps && lanes_police(cfg, &key, bytes)) {
		st->policed++;
		return XDP_DROP;
	}
	st->matched_bytes += bytes;
	if (cfg->action == LANES_SINK) {
		st->dropped++;
		return XDP_DROP;
	}
	if (cfg->action == LANES_COUNT_PASS) {
		st->passed++;
		return XDP_PASS;
	}
	int verdict = bpf_redirect_map(&lanes_xsks, q, XDP_PASS);
	if (verdict == XDP_REDIRECT)
		st->redirected++;
	else
		st->passed++;
	return verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
