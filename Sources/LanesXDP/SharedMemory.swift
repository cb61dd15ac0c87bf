import CLanes

// Atomic loads and stores on plain 64-bit words that more than one thread sees
// (lane counters, stop words, table marks): the C11 orderings, through the
// shims in shim.h (Swift's Atomic<T> lives in its own storage; these words live
// in memory the engine allocates in blocks and shares between threads). Every
// call site says what its ordering pairs with.

extension UnsafeMutablePointer where Pointee == UInt64 {
    @inlinable @inline(__always) public func loadRelaxed() -> UInt64 { lanes_load_relaxed_u64(self) }
    @inlinable @inline(__always) public func storeRelaxed(_ v: UInt64) { lanes_store_relaxed_u64(self, v) }
    @inlinable @inline(__always) public func loadAcquire() -> UInt64 { lanes_load_acquire_u64(self) }
    @inlinable @inline(__always) public func storeRelease(_ v: UInt64) { lanes_store_release_u64(self, v) }
    @inlinable @inline(__always) public func loadSequentiallyConsistent() -> UInt64 { lanes_load_seqcst_u64(self) }
    @inlinable @inline(__always) public func storeSequentiallyConsistent(_ v: UInt64) { lanes_store_seqcst_u64(self, v) }
}

extension UnsafePointer where Pointee == UInt64 {
    @inlinable @inline(__always) public func loadRelaxed() -> UInt64 { lanes_load_relaxed_u64(self) }
    @inlinable @inline(__always) public func loadAcquire() -> UInt64 { lanes_load_acquire_u64(self) }
}

/// Thread fences (C11 atomic_thread_fence).
public enum MemoryFence {
    @inlinable @inline(__always) public static func release() { lanes_fence_release() }
    @inlinable @inline(__always) public static func acquire() { lanes_fence_acquire() }
}

/// Brings the cache line at `p` in for writing (packet headers an app is about to rewrite).
@inlinable @inline(__always)
public func prefetchForWrite(_ p: UnsafeRawPointer) { lanes_prefetch_write(p) }

/// Pins the calling thread to `core`; 0 or an errno value.
@discardableResult
public func pinCurrentThread(to core: Int) -> Int32 { lanes_pin_self(Int32(core)) }

/// recvmmsg(2) of up to 64 datagrams into `count` buffers of `size` bytes from
/// `buffers`, their lengths into `lengths`, waiting for the first one only
/// (MSG_WAITFORONE). Returns how many, or -errno.
public func receiveDatagrams(fd: Int32, buffers: UnsafeMutableRawPointer, count: Int, size: Int,
                             lengths: UnsafeMutablePointer<UInt32>) -> Int {
    Int(lanes_recv_batch(fd, buffers, Int32(count), Int32(size), lengths))
}
