// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The live-frames transmit path of `lanes gen --tx xdp`.
 *
 * User space runs this program with BPF_PROG_RUN and BPF_F_TEST_XDP_LIVE_FRAMES
 * (kernel 5.18+): the kernel runs it once per frame on frames from a page pool
 * and sends every XDP_REDIRECT through the target's ndo_xdp_xmit. No skb is built,
 * which is why this path is several times faster than AF_XDP in copy mode.
 *
 * Per frame the program takes the next slot of its lane's pattern (streams in
 * turn, then sizes in turn, as the AF_XDP generator does), copies the slot's 128
 * header bytes (Ethernet, VLAN, IP, UDP, signature) into the frame, writes the
 * stream's next sequence number and the TX time (bpf_ktime_get_ns: CLOCK_MONOTONIC,
 * the receiver's clock), fixes the UDP checksum incrementally (RFC 1624), shrinks
 * the frame to the slot's size and redirects it.
 *
 * What the page pool keeps between repeats (net/bpf/test_run.c, checked against
 * 6.x): a page is initialised from data_in (copied once) when the run first
 * takes it; each run of BPF_PROG_RUN gets a fresh random cookie, so a page left
 * over from an earlier run is initialised again. Within one run, a recycled frame
 * keeps whatever bytes the program and the target left in it; only its data,
 * data_meta and data_end pointers are reset to data_in's (so bpf_xdp_adjust_tail
 * must run on every repeat). So: the 128 template bytes are copied every time
 * (the frame may last have carried another slot), and bytes past 128 are never
 * written, so they stay the zeros of data_in and the template's checksum (computed
 * over a zero payload) holds for every size.
 *
 * The program is also attached to the sending interface, where it passes every
 * packet that really arrives there (their ingress is that interface, never the
 * loopback device BPF_PROG_RUN gives live frames). Attached, it stays in the
 * kernel's XDP dispatcher between runs; otherwise each BPF_PROG_RUN with
 * repeat > 1 adds it to the dispatcher and removes it again, and the removal
 * waits for an RCU grace period (synchronize_rcu): measured here, one lane
 * spent 3/4 of its time in that wait (0.93 Mpps instead of several). Some
 * drivers (ena, mlx5, ice, i40e) also take redirected frames only while an
 * XDP program is attached to them.
 *
 * A lane is one pinned thread; the kernel runs the program with preemption off
 * on that thread's CPU, so the lane's state is indexed by CPU and written by that
 * CPU only. One stream belongs to one lane, so its sequence numbers stay in order. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lanes_shared.h" /* struct lanes_gen_slot, struct lanes_gen_lane */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LANES_GEN_MAX_CPUS);
	__uint(map_flags, BPF_F_MMAPABLE); /* user space sets limits and reads counters in place */
	__type(key, __u32);
	__type(value, struct lanes_gen_lane);
} lanes_gen_lanes SEC(".maps");

/* Sized by user space before load (bpf_map__set_max_entries): every lane's slots. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes_gen_slot);
} lanes_gen_slots SEC(".maps");

/* Next sequence number per stream; sized to the stream count before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lanes_gen_seq SEC(".maps");

SEC("xdp")
int lanes_gen(struct xdp_md *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct lanes_gen_lane *lane = bpf_map_lookup_elem(&lanes_gen_lanes, &cpu);
	if (!lane || ctx->ingress_ifindex != lane->source_ifindex)
		return XDP_PASS; /* a packet received on the interface: the kernel's */
	if (lane->slots == 0 || lane->sent >= lane->limit)
		return XDP_DROP;

	__u32 idx = lane->first_slot + lane->next;
	lane->next = lane->next + 1 >= lane->slots ? 0 : lane->next + 1;
	struct lanes_gen_slot *slot = bpf_map_lookup_elem(&lanes_gen_slots, &idx);
	if (!slot)
		return XDP_DROP;
	__u32 stream = slot->stream;
	__u64 *seqp = bpf_map_lookup_elem(&lanes_gen_seq, &stream);
	if (!seqp)
		return XDP_DROP;

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + LANES_GEN_TEMPLATE > end) {
		lane->short_frames++;
		return XDP_DROP;
	}
	/* Sixteen 8-byte moves (a memcpy here would be byte by byte). */
	__u64 *dst = data;
#pragma unroll
	for (int i = 0; i < LANES_GEN_TEMPLATE / 8; i++)
		dst[i] = slot->hdr[i];

	__u32 so = slot->sig, co = slot->csum;
	if (so > LANES_GEN_TEMPLATE - 16 || co > LANES_GEN_TEMPLATE - 2)
		return XDP_DROP;
	__u8 *sig = data + so;
	__u8 *ck = data + co;
	if ((void *)(sig + 16) > end || (void *)(ck + 2) > end)
		return XDP_DROP;

	__u32 seq = (__u32)*seqp;
	*seqp += 1;
	__u64 now = bpf_ktime_get_ns();
	*(__u32 *)(sig + 4) = bpf_htonl(seq);
	*(__u64 *)(sig + 8) = bpf_cpu_to_be64(now);

	/* RFC 1624: the template's checksum covers zeros where sequence and time
	 * now stand; add their six 16-bit words: HC' = ~(~HC + sum of m'). */
	__u32 acc = (__u16)~bpf_ntohs(*(__u16 *)ck);
	acc += (seq >> 16) + (seq & 0xffff);
	acc += (__u32)(now >> 48) + (__u32)((now >> 32) & 0xffff);
	acc += (__u32)((now >> 16) & 0xffff) + (__u32)(now & 0xffff);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	__u16 c = ~(__u16)acc;
	if (c == 0)
		c = 0xffff;
	*(__u16 *)ck = bpf_htons(c);

	int delta = (int)slot->length - (int)(end - data);
	if (delta != 0 && bpf_xdp_adjust_tail(ctx, delta) != 0)
		return XDP_DROP;
	lane->sent++;
	lane->bytes += slot->length;
	return bpf_redirect(lane->ifindex, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
