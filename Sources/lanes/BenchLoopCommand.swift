import ArgumentParser
import LanesEngine

/// The lane loop over in-memory rings with a fake kernel side, timed: the Swift
/// side of Benchmarks/run's comparison with the C reference loop.
struct BenchLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-loop",
        abstract: "Time the lane loop on in-memory rings (no kernel): Mpps and ns per packet.",
        discussion: "Example: lanes bench-loop --app macswap --packets 50000000",
        shouldDisplay: false)
    @Option(help: "drop or macswap.") var app = "drop"
    @Option(help: "Packets to push through.") var packets = 20_000_000
    @Option(help: "Burst size.") var burst = 64

    func run() throws {
        let frame = BenchLoop.udpFrame()
        switch app {
        case "drop": report(BenchLoop.time(DropApp(), frame: frame, packets: packets, burst: burst))
        case "macswap": report(BenchLoop.time(MacSwapApp(), frame: frame, packets: packets, burst: burst))
        default: throw ValidationError("--app drop or macswap")
        }
    }

    func report(_ seconds: Double) {
        let mpps = Double(packets) / seconds / 1e6
        printJSONLine(["app": app, "packets": "\(packets)", "seconds": "\(seconds)", "mpps": "\(mpps)", "ns_per_packet": "\(seconds * 1e9 / Double(packets))"])
    }
}
