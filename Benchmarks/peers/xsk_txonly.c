/* A plain C txonly loop over libxdp's xsk.h: the reference "as thin as it gets"
 * AF_XDP generator that `lanes gen` is compared with (Benchmarks/peers).
 * Usage: xsk_txonly IFACE QUEUE SECONDS DSTMAC SRCMAC
 * Sends 64-byte UDP frames 198.18.0.1:1024 -> 198.18.1.1:9000 in bursts of 64,
 * copy mode, need_wakeup; prints "packets N seconds S pps P". */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#define FRAMES 4096
#define FRAME_SIZE 2048
#define BATCH 64
#define LEN 64

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned short csum(const void *p, int n) {
	const unsigned char *b = p;
	unsigned long s = 0;
	for (int i = 0; i + 1 < n; i += 2) s += (b[i] << 8) | b[i + 1];
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return ~s;
}

int main(int argc, char **argv) {
	if (argc < 6) { fprintf(stderr, "usage: %s IFACE QUEUE SECONDS DSTMAC SRCMAC\n", argv[0]); return 2; }
	const char *ifname = argv[1];
	int queue = atoi(argv[2]);
	double seconds = atof(argv[3]);
	unsigned char dmac[6], smac[6];
	sscanf(argv[4], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1], &dmac[2], &dmac[3], &dmac[4], &dmac[5]);
	sscanf(argv[5], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &smac[0], &smac[1], &smac[2], &smac[3], &smac[4], &smac[5]);

	void *area = mmap(NULL, FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) { perror("mmap"); return 1; }
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = { .fill_size = 2048, .comp_size = 2048, .frame_size = FRAME_SIZE, .frame_headroom = 0 };
	int r = xsk_umem__create(&umem, area, FRAMES * FRAME_SIZE, &fill, &comp, &ucfg);
	if (r) { fprintf(stderr, "umem: %s\n", strerror(-r)); return 1; }
	struct xsk_socket *xsk;
	struct xsk_socket_config scfg = { .rx_size = 2048, .tx_size = 2048,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP };
	r = xsk_socket__create(&xsk, ifname, queue, umem, &rx, &tx, &scfg);
	if (r) { fprintf(stderr, "socket: %s\n", strerror(-r)); return 1; }
	int fd = xsk_socket__fd(xsk);

	/* One prebuilt frame per slot: Ethernet, IPv4, UDP. */
	for (int i = 0; i < FRAMES; i++) {
		unsigned char *f = (unsigned char *)area + i * FRAME_SIZE;
		memcpy(f, dmac, 6); memcpy(f + 6, smac, 6); f[12] = 0x08; f[13] = 0x00;
		unsigned char *ip = f + 14;
		memset(ip, 0, 20);
		ip[0] = 0x45; ip[2] = 0; ip[3] = LEN - 14; ip[8] = 64; ip[9] = 17;
		ip[12] = 198; ip[13] = 18; ip[14] = 0; ip[15] = 1; ip[16] = 198; ip[17] = 18; ip[18] = 1; ip[19] = 1;
		unsigned short c = csum(ip, 20); ip[10] = c >> 8; ip[11] = c & 0xff;
		unsigned char *u = ip + 20;
		u[0] = 1024 >> 8; u[1] = 1024 & 0xff; u[2] = 9000 >> 8; u[3] = 9000 & 0xff; u[4] = 0; u[5] = LEN - 34; u[6] = 0; u[7] = 0;
		memset(u + 8, 0, LEN - 42);
	}
	unsigned long long free_stack[FRAMES];
	int nfree = 0;
	for (int i = 0; i < FRAMES; i++) free_stack[nfree++] = (unsigned long long)i * FRAME_SIZE;

	unsigned long long sent = 0, outstanding = 0;
	double start = now(), end = start + seconds;
	unsigned int spin = 0;
	while (1) {
		if ((++spin & 1023) == 0 && now() >= end) break;
		unsigned int idx;
		unsigned int done = xsk_ring_cons__peek(&comp, BATCH, &idx);
		for (unsigned int i = 0; i < done; i++) free_stack[nfree++] = *xsk_ring_cons__comp_addr(&comp, idx + i);
		if (done) { xsk_ring_cons__release(&comp, done); outstanding -= done; }
		unsigned int n = nfree < BATCH ? nfree : BATCH;
		if (n && xsk_ring_prod__reserve(&tx, n, &idx) == n) {
			for (unsigned int i = 0; i < n; i++) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&tx, idx + i);
				d->addr = free_stack[--nfree];
				d->len = LEN;
				d->options = 0;
			}
			xsk_ring_prod__submit(&tx, n);
			sent += n;
			outstanding += n;
		}
		if (outstanding && xsk_ring_prod__needs_wakeup(&tx)) sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
	}
	double el = now() - start;
	printf("packets %llu seconds %.3f pps %.0f\n", sent, el, sent / el);
	xsk_socket__delete(xsk);
	xsk_umem__delete(umem);
	return 0;
}
