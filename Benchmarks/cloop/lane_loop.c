/* The C reference of Lanes' in-memory lane loop (Sources/LanesEngine/Lane.swift
 * over InMemoryPort), written over libxdp's inline ring helpers (xsk.h):
 * the same rings in plain memory, the same fake kernel side, the same lane turn
 * (completions, one RX burst through the app, TX, refill in chunks keeping a quarter
 * of the frames back, FIFO free frames, per-burst counters), so the Swift loop can be
 * reported as a ratio to it from the same run (Benchmarks/run).
 * Usage: lane_loop drop|macswap PACKETS [BURST]   -> prints one JSON line */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#define RING 2048u
#define FRAMES 4096u
#define FRAME_SIZE 2048u

static uint32_t words[16];
static struct xdp_desc rx_descs[RING], tx_descs[RING];
static uint64_t fill_addrs[RING], comp_addrs[RING];
static struct xsk_ring_cons rx, comp;
static struct xsk_ring_prod tx, fill;
static unsigned char *umem;
static uint64_t pool[FRAMES];
static uint32_t pool_head, pool_tail;
static uint64_t counters[32];

static inline void pool_push(uint64_t a) { pool[pool_tail++ & (FRAMES - 1)] = a; }
static inline uint64_t pool_pop(void) { return pool[pool_head++ & (FRAMES - 1)]; }
static inline uint32_t pool_count(void) { return pool_tail - pool_head; }
static inline void add(int c, uint64_t n) { __atomic_store_n(&counters[c], __atomic_load_n(&counters[c], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED); }

static void init_cons(struct xsk_ring_cons *r, int base, void *ring) {
	memset(r, 0, sizeof(*r));
	r->mask = RING - 1; r->size = RING;
	r->producer = &words[base]; r->consumer = &words[base + 1]; r->flags = &words[base + 2]; r->ring = ring;
}
static void init_prod(struct xsk_ring_prod *r, int base, void *ring) {
	memset(r, 0, sizeof(*r));
	r->cached_cons = RING; r->mask = RING - 1; r->size = RING;
	r->producer = &words[base]; r->consumer = &words[base + 1]; r->flags = &words[base + 2]; r->ring = ring;
}

/* Fake kernel: fill-ring frames onto the RX ring (descriptors only, as the Swift bench). */
static void kernel_receive(uint32_t count, uint32_t len) {
	uint32_t avail = words[6] - words[7], room = RING - (words[0] - words[1]);
	uint32_t n = count < avail ? count : avail;
	n = n < room ? n : room;
	uint32_t fc = words[7], rp = words[0];
	for (uint32_t i = 0; i < n; i++, fc++, rp++) {
		rx_descs[rp & (RING - 1)].addr = fill_addrs[fc & (RING - 1)];
		rx_descs[rp & (RING - 1)].len = len;
		rx_descs[rp & (RING - 1)].options = 0;
	}
	words[7] = fc; words[0] = rp;
}
static void kernel_transmit(void) {
	uint32_t pending = words[3] - words[4], room = RING - (words[9] - words[10]);
	uint32_t n = pending < room ? pending : room, tc = words[4], cp = words[9];
	for (uint32_t i = 0; i < n; i++, tc++, cp++) comp_addrs[cp & (RING - 1)] = tx_descs[tc & (RING - 1)].addr;
	words[4] = tc; words[9] = cp;
}

static struct xdp_desc burst[256];
static uint32_t batch = 64;
static long outstanding;
static int macswap;

static inline void refill(void) {
	int want = (int)pool_count() - (int)(FRAMES / 4);
	if (!(want >= (int)batch || (want > 0 && pool_count() == FRAMES))) return;
	/* Only once there is room for a chunk: an eighth of the ring, or all it wants if less. */
	uint32_t chunk = (uint32_t)want < RING / 8 ? (uint32_t)want : RING / 8;
	uint32_t room = xsk_prod_nb_free(&fill, chunk);
	if (room < chunk) return;
	uint32_t idx, r = xsk_ring_prod__reserve(&fill, (uint32_t)want < room ? (uint32_t)want : room, &idx);
	for (uint32_t i = 0; i < r; i++) *xsk_ring_prod__fill_addr(&fill, idx + i) = pool_pop();
	xsk_ring_prod__submit(&fill, r);
	if (xsk_ring_prod__needs_wakeup(&fill)) add(14, 1);
}

static inline void step(void) {
	uint32_t idx;
	if (outstanding > 0) {
		uint32_t n = xsk_ring_cons__peek(&comp, batch, &idx);
		for (uint32_t i = 0; i < n; i++) pool_push(*xsk_ring_cons__comp_addr(&comp, idx + i) & ~(uint64_t)(FRAME_SIZE - 1));
		if (n) { xsk_ring_cons__release(&comp, n); outstanding -= n; }
	}
	uint32_t n = xsk_ring_cons__peek(&rx, batch, &idx);
	if (n) {
		uint64_t bytes = 0;
		for (uint32_t i = 0; i < n; i++) { burst[i] = *xsk_ring_cons__rx_desc(&rx, idx + i); bytes += burst[i].len; }
		xsk_ring_cons__release(&rx, n);
		add(0, n); add(1, bytes); add(16, 1);
		uint32_t keep = 0;
		if (macswap) {
			/* Prefetch 4 frames ahead, as the Swift apps do (LaneApps.partition). */
			for (uint32_t i = 0; i < n && i < 4; i++) __builtin_prefetch(umem + burst[i].addr, 1, 3);
			for (uint32_t i = 0; i < n; i++) {
				if (i + 4 < n) __builtin_prefetch(umem + burst[i + 4].addr, 1, 3);
				if (burst[i].len < 14) { add(11, 1); continue; }
				unsigned char *f = umem + burst[i].addr, t[6];
				memcpy(t, f, 6); memcpy(f, f + 6, 6); memcpy(f + 6, t, 6);
				burst[keep++] = burst[i];
			}
		} else {
			add(4, n);
		}
		uint32_t sent = 0;
		if (keep) {
			uint32_t room = xsk_prod_nb_free(&tx, keep), tidx;
			uint32_t r = room ? xsk_ring_prod__reserve(&tx, keep < room ? keep : room, &tidx) : 0;
			uint64_t tb = 0;
			for (uint32_t i = 0; i < r; i++) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&tx, tidx + i);
				d->addr = burst[i].addr; d->len = burst[i].len; d->options = 0; tb += burst[i].len;
			}
			if (r) { xsk_ring_prod__submit(&tx, r); outstanding += r; add(2, r); add(3, tb); }
			if (r < keep) add(5, keep - r);
			sent = r;
		}
		for (uint32_t i = sent; i < n; i++) pool_push(burst[i].addr & ~(uint64_t)(FRAME_SIZE - 1));
	}
	refill();
}

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: %s drop|macswap PACKETS [BURST]\n", argv[0]); return 2; }
	macswap = strcmp(argv[1], "macswap") == 0;
	long packets = atol(argv[2]);
	if (argc > 3) batch = (uint32_t)atoi(argv[3]);
	umem = aligned_alloc(4096, (size_t)FRAMES * FRAME_SIZE);
	memset(umem, 0, (size_t)FRAMES * FRAME_SIZE);
	for (uint32_t i = 0; i < FRAMES; i++) {
		unsigned char *f = umem + (size_t)i * FRAME_SIZE;
		for (int b = 0; b < 6; b++) { f[b] = 0x02; f[6 + b] = 0x04; }
		f[12] = 0x08;
	}
	init_cons(&rx, 0, rx_descs); init_prod(&tx, 3, tx_descs); init_prod(&fill, 6, fill_addrs); init_cons(&comp, 9, comp_addrs);
	for (uint32_t i = 0; i < FRAMES; i++) pool_push((uint64_t)i * FRAME_SIZE);
	refill();
	for (int i = 0; i < 1000; i++) { kernel_receive(batch, 64); step(); kernel_transmit(); }
	long turns = packets / batch;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long t = 0; t < turns; t++) { kernel_receive(batch, 64); step(); kernel_transmit(); }
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("{\"app\":\"%s\",\"packets\":%ld,\"seconds\":%.6f,\"mpps\":%.3f,\"ns_per_packet\":%.3f,\"check\":%llu}\n",
	       argv[1], turns * batch, s, turns * batch / s / 1e6, s * 1e9 / (turns * batch), (unsigned long long)counters[0]);
	return 0;
}
