import LanesEngine
import Testing

/// The generator's per-stream receive window, against a model that remembers
/// every sequence number it has seen.
@Suite struct StreamRxTests {
    struct Model {
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var received: UInt64 = 0, duplicates: UInt64 = 0, reordered: UInt64 = 0

        mutating func record(_ seq: UInt64) {
            if seq >= highest {
                highest = seq + 1
                received += 1
            } else if highest - 1 - seq >= 256 {
                // Beyond the window: counted, not checked for duplicates.
                reordered += 1
                received += 1
            } else if seen.contains(seq) {
                duplicates += 1
                return
            } else {
                reordered += 1
                received += 1
            }
            seen.insert(seq)
        }
    }

    @Test func inOrderCountsEveryPacketOnce() {
        var rx = StreamRx()
        for s in 0..<10_000 as Range<UInt64> { rx.record(s) }
        #expect(rx.received == 10_000)
        #expect(rx.duplicates == 0 && rx.reordered == 0)
        #expect(rx.highest == 10_000)
    }

    @Test func matchesTheModelOnShuffledDuplicatedAndJumpingSequences() {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<50 {
            var rx = StreamRx(), model = Model()
            var next: UInt64 = 0
            var history: [UInt64] = []
            for _ in 0..<3000 {
                let seq: UInt64
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<60: seq = next; next += 1                                      // in order
                case 60..<70: next += UInt64.random(in: 1...300, using: &rng); seq = next // loss, jumps over word and window edges
                case 70..<85: seq = next > 0 ? next - UInt64.random(in: 1...min(next, 400), using: &rng) : 0 // late
                default: seq = history.randomElement(using: &rng) ?? 0                  // duplicate
                }
                history.append(seq)
                rx.record(seq)
                model.record(seq)
            }
            #expect(rx.received == model.received, "trial \(trial)")
            #expect(rx.duplicates == model.duplicates, "trial \(trial)")
            #expect(rx.reordered == model.reordered, "trial \(trial)")
            #expect(rx.highest == model.highest, "trial \(trial)")
        }
    }
}
