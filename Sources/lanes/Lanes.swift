import ArgumentParser
import Glibc
import LanesXDP

/// `lanes`: the command line. One file per subcommand.
struct Lanes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lanes",
        abstract: "A user-space packet I/O engine over AF_XDP: one lane per NIC queue, one core per lane.",
        discussion: """
        Every command that is given no interface works on the built-in testbed
        (lanes testbed up): gen:g0 <-> dut:d0, dut:d1 <-> sink:s0.
        """,
        subcommands: [TestbedCommand.self, InfoCommand.self, DropCommand.self, FwdCommand.self, GenCommand.self, SinkCommand.self, ScaleCommand.self, RFC2544Command.self, CaptureCommand.self, ReplayCommand.self, FlowsCommand.self, DecodeCommand.self, BenchLoopCommand.self])
}

@main
enum Main {
    static func main() {
        do {
            var command = try Lanes.parseAsRoot(bareFlags(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let error as LanesError {
            fail(error.description)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            let code = Lanes.exitCode(for: error)
            if code == .success { Lanes.exit(withError: error) } // --help, --version
            // One line: the parser's message, without the usage block.
            let msg = Lanes.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            fail(msg + " (see 'lanes help')", code: code.rawValue)
        }
    }

    /// `gen --rx` alone means `--rx xsk` (an option with a default value, which
    /// the parser cannot express itself).
    static func bareFlags(_ args: [String]) -> [String] {
        var out = args
        for (i, a) in args.enumerated() where a == "--rx" {
            if i + 1 == args.count || RxPath(rawValue: args[i + 1]) == nil { out[i] = "--rx=xsk" }
        }
        return out
    }

    static func fail(_ message: String, code: Int32 = 1) -> Never {
        var m = message
        if m.hasPrefix("Error: ") { m.removeFirst(7) }
        fputs("lanes: error: \(m)\n", stderr)
        exit(code == 0 ? 1 : code)
    }
}

/// Options shared by commands that can run inside a network namespace.
struct NamespaceOption: ParsableArguments {
    @Option(name: .customLong("netns"), help: "Network namespace of the interface (as 'ip netns list' shows it).")
    var netns: String?

    /// Enters the namespace before any thread starts; also gives /sys its view.
    func enter() throws(LanesError) {
        if let netns { try NetworkNamespace.enterWithSysfs(netns) }
    }
}
