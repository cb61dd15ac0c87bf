import ArgumentParser
import Foundation
import Glibc
import LanesEngine
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
        // A reader gone (an SSH connection lost, a closed pipe) makes a write fail
        // with EPIPE instead of killing the process with its XDP program attached.
        signal(SIGPIPE, SIG_IGN)
        // A shell starts a background job with SIGINT ignored, and an ignored signal
        // never reaches the monitor's sigtimedwait: set it back, so that SIGINT stops
        // a run wherever it was started from (SIGHUP stays as given: under nohup a
        // run outlives its terminal).
        signal(SIGINT, SIG_DFL)
        do {
            let args = bareFlags(Array(CommandLine.arguments.dropFirst()))
            if let stray = StrayWord.find(in: args) { fail(stray) }
            var command = try Lanes.parseAsRoot(args)
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
        printError("lanes: error: \(m)\n")
        exit(code == 0 ? 1 : code)
    }
}

/// A word right after a flag that takes no value: the parser would take it as
/// the next positional argument (the interface, a file), so `lanes gen --imix
/// banana` would look for an interface named banana. Refused in one line naming
/// the flag; a positional goes before the flags or after an option's value.
enum StrayWord {
    struct Command: Decodable {
        struct Argument: Decodable {
            struct Name: Decodable { var kind: String; var name: String }
            var kind: String
            var names: [Name]?
        }
        var arguments: [Argument]?
    }
    struct ToolInfo: Decodable { var command: Command }

    /// What a flag's user most likely meant by a word after it.
    static let hints = ["--imix": "for a custom mix use --imix-mix 64:7,570:4,1518:1"]

    /// The one-line error for the first flag in `args` followed by a word, or nil.
    static func find(in args: [String]) -> String? {
        // The subcommand named, and its arguments as the parser knows them.
        var type: ParsableCommand.Type = Lanes.self
        var path = ["lanes"]
        var i = 0
        while i < args.count, let sub = type.configuration.subcommands.first(where: { $0._commandName == args[i] }) {
            type = sub
            path.append(args[i])
            i += 1
        }
        guard let data = type._dumpHelp().data(using: .utf8),
              let command = (try? JSONDecoder().decode(ToolInfo.self, from: data))?.command else { return nil }
        var flags = Set<String>()
        for a in command.arguments ?? [] where a.kind == "flag" {
            for n in a.names ?? [] { flags.insert(n.kind == "short" ? "-" + n.name : "--" + n.name) }
        }
        while i + 1 < args.count {
            let a = args[i], next = args[i + 1]
            if a == "--" { break }
            if flags.contains(a) && !next.hasPrefix("-") {
                let hint = hints[a] ?? "a positional argument (the interface, a file) goes before the flags: \((path + [next, a]).joined(separator: " "))"
                return "\(a) takes no value, but '\(next)' follows it; \(hint)"
            }
            i += 1
        }
        return nil
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
