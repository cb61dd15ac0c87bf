import ArgumentParser
import LanesEngine
import LanesXDP

struct DropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Receive on every queue of an interface, count, and drop (recycle) each packet.",
        discussion: """
        Memory: UMEM of --frames x --frame-size per lane (default 4096 x 2048 B = 8 MiB), plus a few MiB for the process.
        Example: lanes drop d0 --netns lanes-dut --queues 0-1 --cores 0-1 --duration 10
        """)
    @OptionGroup var options: EngineOptions

    func run() throws {
        let config = try options.prepare()
        try options.run(config, mode: "drop") { _, _ in DropApp() }
    }
}

struct FwdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwd",
        abstract: "Forward packets: --mode macswap swaps Ethernet addresses and sends each packet back out of its queue.",
        discussion: """
        Memory: UMEM of --frames x --frame-size per lane (default 8 MiB), plus a few MiB for the process.
        Example: lanes fwd d0 --netns lanes-dut --mode macswap --duration 10
        """)
    @OptionGroup var options: EngineOptions
    @Option(help: "Forwarding mode: macswap.") var mode = "macswap"
    @Option(help: ArgumentHelp("Test forwarder: drop every Nth packet and swap every Mth with the next (drop=N,reorder=M).", visibility: .hidden))
    var impair: String?

    func run() throws {
        guard mode == "macswap" else {
            throw ValidationError("mode '\(mode)' is not available; use --mode macswap")
        }
        let config = try options.prepare()
        if let impair {
            guard let app = ImpairApp.parse(impair) else { throw LanesError("bad --impair '\(impair)'", fix: "use drop=N,reorder=M") }
            let json = options.json
            try options.run(config, mode: "fwd macswap (impaired: \(impair))", report: { summary, apps in
                let dropped = apps.reduce(0) { $0 + $1.dropped }, swapped = apps.reduce(0) { $0 + $1.swapped }
                if json {
                    printJSONLine(summary)
                    printJSONLine(["impair_dropped": dropped, "impair_swapped": swapped])
                } else {
                    options.printSummary(summary)
                    print("impaired on purpose: \(dropped) dropped, \(swapped) pairs swapped")
                }
            }) { _, _ in app }
            return
        }
        try options.run(config, mode: "fwd macswap") { _, _ in MacSwapApp() }
    }
}
