import LanesXDP
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
        p.storeRelaxed(p.loadRelaxed() &+ n)
    }

    @inlinable @inline(__always)
    public func set(_ c: LaneCounter, _ v: UInt64) { (base + c.rawValue).storeRelaxed(v) }

    /// The lane's turn begins (`.turn` odd). Pairs with `stableTurn`'s loads: the
    /// release fence orders the odd mark before the turn's ring and counter stores.
    @inlinable @inline(__always)
    public func beginTurn(_ seq: inout UInt64) {
        seq &+= 1
        (base + LaneCounter.turn.rawValue).storeRelaxed(seq)
        MemoryFence.release()
    }

    /// The turn ends (`.turn` even): a release store after all of the turn's stores.
    @inlinable @inline(__always)
    public func endTurn(_ seq: inout UInt64) {
        seq &+= 1
        (base + LaneCounter.turn.rawValue).storeRelease(seq)
    }

    /// Runs `read` until it saw no turn in progress and none completed during it
    /// (the seqlock's reader side), at most `tries` times; nil if never.
    public func stableTurn<T>(tries: Int = 1000, _ read: () -> T) -> T? {
        let p = base + LaneCounter.turn.rawValue
        for _ in 0..<tries {
            let s1 = p.loadAcquire()
            if s1 & 1 == 1 { continue }
            let v = read()
            MemoryFence.acquire()
            if p.loadRelaxed() == s1 { return v }
        }
        return nil
    }

    public func snapshot() -> LaneSnapshot {
        LaneSnapshot(values: (0..<LaneCounter.slots).map { (base + $0).loadRelaxed() })
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
