import Foundation
import Synchronization
import Testing
@testable import LanesCore

/// Concurrent stress tests of the rings (run under ThreadSanitizer by scripts/test).
@Suite struct RingTests {
    static func descs(_ n: Int, from: UInt64, producer: UInt64) -> [FrameDesc] {
        (0..<n).map { FrameDesc(addr: producer << 40 | (from + UInt64($0)), len: 64) }
    }

    @Test func spscBurstsFillAndDrain() {
        let r = SPSCRing(capacity: 8)
        let a = Self.descs(10, from: 0, producer: 0)
        #expect(a.withUnsafeBufferPointer { r.enqueue($0.baseAddress!, count: 10) } == 8, "a full ring takes what fits")
        #expect(r.count == 8)
        var out = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 16)
        #expect(out.withUnsafeMutableBufferPointer { r.dequeue(into: $0.baseAddress!, max: 5) } == 5)
        #expect(out.prefix(5).map(\.addr) == (0..<5).map(UInt64.init))
        #expect(out.withUnsafeMutableBufferPointer { r.dequeue(into: $0.baseAddress!, max: 16) } == 3)
        #expect(out.withUnsafeMutableBufferPointer { r.dequeue(into: $0.baseAddress!, max: 16) } == 0)
    }

    /// Every loop of a concurrent test gives up at this point, so a lost item fails
    /// the test (a count short) instead of hanging the run; the test's time limit
    /// says so too.
    static func deadline() -> ContinuousClock.Instant { .now + .seconds(60) }

    @Test(.timeLimit(.minutes(2))) func spscConcurrentKeepsOrderAndLosesNothing() async {
        let r = SPSCRing(capacity: 64)
        let total = 50_000
        let deadline = RingTests.deadline()
        let producer = Thread {
            var next = 0, spins = 0
            var buf = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 32)
            while next < total && ContinuousClock.now < deadline {
                let n = min(32, total - next)
                for i in 0..<n { buf[i] = FrameDesc(addr: UInt64(next + i), len: 1) }
                let put = buf.withUnsafeBufferPointer { r.enqueue($0.baseAddress!, count: n) }
                next += put
                if put == 0 { spins += 1 }
            }
        }
        producer.start()
        var expected: UInt64 = 0
        var ok = true
        var out = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 32)
        while expected < UInt64(total) && ContinuousClock.now < deadline {
            let n = out.withUnsafeMutableBufferPointer { r.dequeue(into: $0.baseAddress!, max: 32) }
            for i in 0..<n where out[i].addr != expected + UInt64(i) { ok = false }
            expected += UInt64(n)
        }
        #expect(ok, "order broken")
        #expect(expected == UInt64(total))
    }

    @Test(.timeLimit(.minutes(2))) func mpmcConcurrentDeliversEverythingExactlyOnce() async {
        let deadline = RingTests.deadline()
        let r = MPMCRing(capacity: 256)
        let producers = 3, consumers = 3, perProducer = 15_000
        final class Shared: @unchecked Sendable {
            let done = Atomic<Int>(0), received = Atomic<Int>(0), orderBroken = Atomic<Int>(0)
        }
        let shared = Shared()
        // Atomics, read after every thread is done (the `done` count orders it).
        nonisolated(unsafe) let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: producers * perProducer)
        for i in 0..<(producers * perProducer) { (seen + i).initialize(to: Atomic(0)) }
        defer { seen.deallocate() }
        var threads: [Thread] = []
        for p in 0..<producers {
            threads.append(Thread {
                var next = 0
                var buf = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 16)
                while next < perProducer && ContinuousClock.now < deadline {
                    let n = min(16, perProducer - next)
                    for i in 0..<n { buf[i] = FrameDesc(addr: UInt64(p) << 32 | UInt64(next + i), len: 1) }
                    next += buf.withUnsafeBufferPointer { r.enqueue($0.baseAddress!, count: n) }
                }
            })
        }
        for _ in 0..<consumers {
            threads.append(Thread {
                var out = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 16)
                var last = [Int](repeating: -1, count: producers)
                while shared.received.load(ordering: .relaxed) < producers * perProducer && ContinuousClock.now < deadline {
                    let n = out.withUnsafeMutableBufferPointer { r.dequeue(into: $0.baseAddress!, max: 16) }
                    for i in 0..<n {
                        let p = Int(out[i].addr >> 32), s = Int(out[i].addr & 0xffff_ffff)
                        // Each consumer sees each producer's items in the order they were sent.
                        if s <= last[p] { shared.orderBroken.add(1, ordering: .relaxed) }
                        last[p] = s
                        seen[p * perProducer + s].add(1, ordering: .relaxed)
                    }
                    shared.received.add(n, ordering: .relaxed)
                }
                shared.done.add(1, ordering: .releasing)
            })
        }
        threads.forEach { $0.start() }
        while shared.done.load(ordering: .acquiring) < consumers { usleep(1000) }
        var missing = 0, twice = 0
        for i in 0..<(producers * perProducer) {
            let v = seen[i].load(ordering: .relaxed)
            if v == 0 { missing += 1 } else if v > 1 { twice += 1 }
        }
        #expect(shared.received.load(ordering: .relaxed) == producers * perProducer)
        #expect(missing == 0)
        #expect(twice == 0)
        #expect(shared.orderBroken.load(ordering: .relaxed) == 0)
        #expect(r.count == 0)
    }
}
