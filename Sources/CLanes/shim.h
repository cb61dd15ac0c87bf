/* C side of Lanes: libxdp, libbpf, libnuma and the Linux headers, plus small
 * inline shims (prefixed lanes_) for what Swift cannot import: macros,
 * CPU_SET, and relaxed atomics on plain memory. */
#ifndef LANES_SHIM_H
#define LANES_SHIM_H

#include <stdint.h>
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/capability.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <xdp/xsk.h>
#include "../../bpf/lanes_shared.h" /* the layouts shared with the XDP programs */
#include <xdp/libxdp.h>
#include <numa.h>
#include <numaif.h>

/* These need _GNU_SOURCE, which breaks Glibc's module map (fd_set, sockaddr
 * unions) when defined for the importer; declare them here instead. */
extern int pthread_setaffinity_np(pthread_t thread, size_t cpusetsize, const cpu_set_t *cpuset);
extern int setns(int fd, int nstype);
extern int pthread_setname_np(pthread_t thread, const char *name);
extern int unshare(int flags);

/* Pin the calling thread to one CPU. Returns 0 or an errno value. */
static inline int lanes_pin_self(int cpu) {
    cpu_set_t set;
    /* CPU_ZERO/CPU_SET need _GNU_SOURCE; their __ forms are always there. */
    __CPU_ZERO_S(sizeof(set), &set);
    __CPU_SET_S(cpu, sizeof(set), &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

#include <sys/prctl.h>
/* prctl is variadic: Swift cannot call it. PR_SET_TIMERSLACK for the calling thread. */
static inline int lanes_set_timer_slack(unsigned long ns) { return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }

static inline int lanes_clone_newnet(void) { return 0x40000000; /* CLONE_NEWNET */ }
static inline int lanes_clone_newns(void) { return 0x00020000; /* CLONE_NEWNS */ }

/* XDP attach flags (linux/if_link.h macros). */
static inline uint32_t lanes_xdp_flags_update_if_noexist(void) { return XDP_FLAGS_UPDATE_IF_NOEXIST; }
static inline uint32_t lanes_xdp_flags_skb_mode(void) { return XDP_FLAGS_SKB_MODE; }
static inline uint32_t lanes_xdp_flags_drv_mode(void) { return XDP_FLAGS_DRV_MODE; }

/* AF_XDP bind flags (linux/if_xdp.h). */
static inline uint16_t lanes_xdp_copy(void) { return XDP_COPY; }
static inline uint16_t lanes_xdp_zerocopy(void) { return XDP_ZEROCOPY; }
static inline uint16_t lanes_xdp_use_need_wakeup(void) { return XDP_USE_NEED_WAKEUP; }
/* AF_XDP multi-buffer (kernel 6.6): XDP_USE_SG in sxdp_flags, XDP_PKT_CONTD in a
 * descriptor's options on every buffer of a packet but the last. Debian 12's
 * linux/if_xdp.h predates both; the values are the kernel's uapi. */
static inline uint16_t lanes_xdp_use_sg(void) { return 1 << 4; /* XDP_USE_SG */ }
static inline uint32_t lanes_xdp_pkt_contd(void) { return 1 << 0; /* XDP_PKT_CONTD */ }
static inline uint32_t lanes_xsk_inhibit_prog_load(void) { return XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD; }

/* Relaxed atomics on plain 64-bit counters: one writer (a lane), any number of
 * readers (the monitor). Aligned 8-byte accesses; no fences needed. */
static inline void lanes_store_relaxed_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint64_t lanes_load_relaxed_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void lanes_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t lanes_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
/* Sequentially consistent: a lane's "inside a burst" mark before its load of the
 * current table, against the updater's store of a new table before its reads of
 * the marks (L3TableSlot). */
static inline void lanes_store_seqcst_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t lanes_load_seqcst_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void lanes_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
static inline void lanes_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
/* Prefetch a cache line for writing (packet headers an app is about to rewrite). */
static inline void lanes_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
static inline uint32_t lanes_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* Kick the kernel to process the TX ring (copy mode and need_wakeup). */
static inline int lanes_kick_tx(int fd) {
    return (int)sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
}
/* Wake the kernel to refill RX (fill ring needs_wakeup). */
static inline int lanes_kick_rx(int fd) {
    return (int)recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

/* Ring occupancy as the kernel sees it, for frame accounting. */
static inline uint32_t lanes_prod_occupancy(const struct xsk_ring_prod *r) {
    /* Consumer first: the producer read after it is never behind it, so the
     * difference cannot wrap. The producer's acquire pairs with the lane's
     * submit (release). */
    uint32_t cons = lanes_load_acquire_u32(r->consumer);
    return lanes_load_acquire_u32(r->producer) - cons;
}
static inline uint32_t lanes_cons_occupancy(const struct xsk_ring_cons *r) {
    uint32_t cons = lanes_load_acquire_u32(r->consumer);
    return lanes_load_acquire_u32(r->producer) - cons;
}

/* Reloads a consumer ring's cached producer index. libxdp's peek reloads it
 * only when the cached entries run out; a multi-buffer lane that left a
 * packet's first buffers on the ring (cancel) needs the kernel's newer ones.
 * Pairs with the producer's release store, as peek's own load does. */
static inline void lanes_cons_refresh(struct xsk_ring_cons *r) {
    r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
}

static inline int lanes_errno(void) { return errno; }

#include <sys/syscall.h>
/* Keep only CAP_NET_ADMIN (to detach the XDP program at the end) in the calling
 * thread's effective and permitted sets; threads started later inherit this. */
static inline int lanes_keep_only_net_admin(void) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    __builtin_memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = 1u << CAP_NET_ADMIN;
    return (int)syscall(SYS_capset, &h, d);
}

/* bpf_xdp_query_opts and bpf_xdp_attach_opts end in a zero-width bitfield that
 * the Swift importer lays out differently from C (seen failing under -O), so
 * the opts structs are built here, in C. */
static inline int lanes_xdp_query(int ifindex, uint32_t *prog_id, uint8_t *attach_mode) {
    LIBBPF_OPTS(bpf_xdp_query_opts, opts);
    int r = bpf_xdp_query(ifindex, 0, &opts);
    if (r)
        return r;
    *prog_id = opts.prog_id;
    *attach_mode = opts.attach_mode;
    return 0;
}
/* Detaches the program only if `old_fd` is still the one attached. */
static inline int lanes_xdp_detach_if(int ifindex, uint32_t mode_flags, int old_fd) {
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old_fd);
    return bpf_xdp_detach(ifindex, mode_flags | XDP_FLAGS_REPLACE, &opts);
}
/* The program's name, into buf (16 bytes). */
static inline int lanes_prog_name_by_id(uint32_t id, char *buf) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return fd;
    struct bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    int r = bpf_obj_get_info_by_fd(fd, &info, &len);
    close(fd);
    if (r == 0)
        __builtin_memcpy(buf, info.name, sizeof(info.name));
    return r;
}

/* One BPF_PROG_RUN of an XDP program in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES,
 * kernel 5.18+): `repeat` runs over frames initialised from `data`, in batches of
 * `batch` (1-256), every XDP_REDIRECT sent through the target's ndo_xdp_xmit.
 * Returns 0 or a negative errno. (The opts struct is built here, in C, like the others.) */
static inline int lanes_xdp_live_run(int prog_fd, const void *data, uint32_t size, uint32_t repeat, uint32_t batch) {
    struct xdp_md ctx = { .data_end = size };
    LIBBPF_OPTS(bpf_test_run_opts, opts,
        .data_in = data, .data_size_in = size,
        .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
        .repeat = repeat, .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = batch);
    int r = bpf_prog_test_run_opts(prog_fd, &opts);
    return r < 0 ? -errno : 0;
}
/* Map flag for an array user space maps into its memory. */
static inline uint32_t lanes_bpf_f_mmapable(void) { return BPF_F_MMAPABLE; }


/* recvmmsg needs _GNU_SOURCE (see above): declared here with its own struct. */
struct lanes_mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
extern int recvmmsg(int fd, struct lanes_mmsghdr *vmessages, unsigned int vlen, int flags, struct timespec *tmo);
/* Receives up to `count` (<= 64) datagrams into `count` buffers of `size` bytes
 * at `buffers`, waiting for the first only (MSG_WAITFORONE); their lengths go to
 * `lens`. Returns the number received, or -errno. */
static inline int lanes_recv_batch(int fd, void *buffers, int count, int size, uint32_t *lens) {
    struct iovec iov[64];
    struct lanes_mmsghdr msgs[64];
    if (count > 64) count = 64;
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = (char *)buffers + (size_t)i * (size_t)size;
        iov[i].iov_len = (size_t)size;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, (unsigned int)count, 0x10000 /* MSG_WAITFORONE */, 0);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) lens[i] = msgs[i].msg_len;
    return n;
}

/* posix_spawn's "close every descriptor from FROM in the child" (glibc 2.34+),
 * which Swift's Glibc module does not import. */
#include <spawn.h>
static inline int lanes_spawn_addclosefrom(posix_spawn_file_actions_t *fa, int from) {
    return posix_spawn_file_actions_addclosefrom_np(fa, from);
}

#endif
