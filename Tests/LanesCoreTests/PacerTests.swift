import LanesCore
import Testing

/// The pacer both generators (AF_XDP lanes and live frames) share.
@Suite struct PacerTests {
    /// At 1 Mpps (a frame per 1000 ns) with bursts of 64, polled every 100 ns:
    /// frame k goes at k us, never early, and 10 ms give 10000 frames.
    @Test func pacesExactlyWhenOnTime() {
        var p = Pacer(pps: 1_000_000)
        let t0: UInt64 = 5_000_000_000
        var sent: UInt64 = 0, now = t0
        while now < t0 + 10_000_000 {
            let n = p.allowance(max: 64, sent: sent, now: now)
            #expect(n <= 64)
            sent += n
            #expect(sent <= (now - t0) / 1000 + 1, "ahead of schedule at \(now - t0) ns: \(sent)")
            now += 100
        }
        #expect(sent == 10_000)
    }

    /// After a 10 ms stall 10000 frames are owed: they are paid at twice the rate in
    /// bursts of at most 64, not at once, and by 30 ms everything due has gone.
    @Test func paysADebtAtTwiceTheRateNotAtOnce() {
        var p = Pacer(pps: 1_000_000)
        let t0: UInt64 = 5_000_000_000
        var sent = p.allowance(max: 64, sent: 0, now: t0)
        #expect(sent == 1)
        var now = t0 + 10_000_000
        sent += p.allowance(max: 64, sent: sent, now: now)
        #expect(sent == 65)
        #expect(p.allowance(max: 64, sent: sent, now: now + 1_000) == 0, "the debt went out in a second burst at once")
        var inFirst10ms: UInt64 = 0
        while now < t0 + 30_000_000 {
            let n = p.allowance(max: 64, sent: sent, now: now)
            #expect(n <= 64)
            sent += n
            if now < t0 + 20_000_000 { inFirst10ms += n }
            now += 100
        }
        // Twice the rate: about 20000 frames in the 10 ms after the stall (the 10000 due then, and the 10000 owed).
        #expect(abs(Double(inFirst10ms) - 20_000) < 300, "\(inFirst10ms) frames in the 10 ms after the stall")
        #expect(sent >= 29_990 && sent <= 30_001, "everything due by 30 ms went: \(sent)")
    }

    /// Unpaced: every call gets its maximum; reset starts the clock again.
    @Test func unpacedAndReset() {
        var u = Pacer(pps: nil)
        #expect(u.allowance(max: 64, sent: 1_000_000, now: 1) == 64)
        var p = Pacer(pps: 1000)
        #expect(p.allowance(max: 64, sent: 0, now: 1_000_000_000) == 1)
        #expect(p.allowance(max: 64, sent: 1, now: 1_000_500_000) == 0)
        p.reset()
        #expect(p.allowance(max: 64, sent: 0, now: 9_000_000_000) == 1)
        #expect(p.wakeNs(sent: 1, want: 5) == 9_000_000_000 + 5_000_000, "frames 1-5 are due by 5 ms")
    }
}
