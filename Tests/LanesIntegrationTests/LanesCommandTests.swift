import LanesCore
import LanesLab
import Testing

/// The lab's launcher spells typed values so the CLI's own parsers read them back.
@Suite struct LanesCommandTests {
    @Test func ratesAndListsRoundTripThroughTheCLIParsers() {
        for r in [Rate.pps(1), .pps(50_000), .pps(2_000_000), .bps(1_000), .bps(25_000_000_000)] {
            #expect(Rate.parse(LanesCommand.spell(r)) == r, "\(r)")
        }
        for l in [[0], [0, 1], [3, 1, 2], Array(0..<64)] {
            #expect(IndexList.parse(LanesCommand.list(l)) == l)
        }
    }

    @Test func aCommandRendersEveryValueOnce() {
        var g = LanesCommand(.gen, testbed: "tb")
        g.queues = [0, 1]; g.cores = [0, 1]; g.flows = 16; g.rss = true; g.rate = .pps(500_000); g.duration = 3
        g.extra = ["--size", "64"]
        #expect(g.arguments == ["gen", "--testbed", "tb", "--queues", "0,1", "--cores", "0,1", "--flows", "16", "--rss",
                                "--rate", "500000pps", "--duration", "3.0", "--size", "64", "--interval", "0.0", "--json"])
        var d = LanesCommand(.drop, ports: ["d0"], netns: "ns")
        d.json = false
        #expect(d.arguments == ["drop", "d0", "--netns", "ns", "--interval", "0.0"])
    }
}
