import LanesCore
import Testing

/// The one decision of which frames a lane receives into and which its generator owns.
@Suite struct FrameSplitTests {
    /// Every request and every primed count gives a split that adds up, keeps the
    /// primed frames receiving, and gives the generator whole packets.
    @Test func everySplitAddsUpAndKeepsThePrimedFramesReceiving() {
        let frames = 96
        for unit in [1, 2, 5] {
            for primed in 0...frames {
                for requested in -3...(frames + 3) {
                    let (receive, generator) = FrameSplit.split(frameCount: frames, requested: requested, primed: primed, unit: unit)
                    #expect(receive + generator == frames)
                    #expect(receive >= primed, "primed \(primed), requested \(requested)")
                    #expect(generator % unit == 0 && generator >= 0)
                    #expect(generator <= max(requested, 0))
                    // What it leaves out is less than one packet, or what the primed frames hold.
                    #expect(generator > min(max(requested, 0), frames - primed) - unit)
                }
            }
        }
    }
}

/// A zero-copy driver's posted frames are accounted, not missing.
@Test func aLedgerCountsTheFramesAZeroCopyDriverHolds() {
    let held = FrameLedger(total: 4096, free: 1826, fillRing: 2014, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0, inDriver: 256)
    #expect(held.balanced && held.description.contains("in the driver 256") && held.description.hasSuffix("(balanced)"))
    let lost = FrameLedger(total: 4096, free: 1826, fillRing: 2014, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0)
    #expect(!lost.balanced && lost.inFlight == 256 && lost.description.hasSuffix("(MISSING 256)"))
}
