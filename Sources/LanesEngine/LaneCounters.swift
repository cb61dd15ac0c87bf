import CLanes
import LanesCore

/// One lane's stats block: LaneCounter.slots 64-bit counters in their own cache
/// lines (the block is 64-byte aligned and a multiple of 64 bytes), written by the
/// lane with relaxed stores and read by the monitor with relaxed loads. A single
/// writer needs no read-modify-write atomics.
public struct LaneCounters {
    @usableFromInline let base: UnsafeMutablePointer<UInt64>
    public init(base: UnsafeMutablePointer<UInt64>) { self.base = base }

    @inlinable @inline(__always)
    public func add(_ c: LaneCounter, _ n: UInt64) {
        let p = base + c.rawValue
        lanes_store_relaxed_u64(p, lanes_load_relaxed_u64(p) &+ n)
    }

    @inlinable @inline(__always)
    public func set(_ c: LaneCounter, _ v: UInt64) { lanes_store_relaxed_u64(base + c.rawValue, v) }

    public func snapshot() -> LaneSnapshot {
        LaneSnapshot(values: (0..<LaneCounter.slots).map { lanes_load_relaxed_u64(base + $0) })
    }
}

/// The stats blocks of all lanes, allocated once, cache-line aligned.
public final class StatsArea {
    public let lanes: Int
    let memory: UnsafeMutableRawPointer
    static let bytesPerLane = LaneCounter.slots * 8

    public init(lanes: Int) {
        self.lanes = lanes
        memory = .allocate(byteCount: max(lanes, 1) * StatsArea.bytesPerLane, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(lanes, 1) * StatsArea.bytesPerLane)
    }

    deinit { memory.deallocate() }

    public func counters(_ lane: Int) -> LaneCounters {
        LaneCounters(base: (memory + lane * StatsArea.bytesPerLane).assumingMemoryBound(to: UInt64.self))
    }
}
