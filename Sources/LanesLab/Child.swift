import Foundation
import LanesXDP

/// A `lanes` subcommand run as a child process (each in its own namespace),
/// its output collected in temporary files.
public final class Child {
    let process: Subprocess
    let files = TemporaryOutput()

    /// The running binary, for children.
    public static var lanesBinary: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

    /// Starts `command` (the lab's one launcher: see LanesCommand).
    public convenience init(_ command: LanesCommand) throws(LanesError) { try self.init(arguments: command.arguments) }

    init(arguments args: [String]) throws(LanesError) {
        do { process = try Subprocess(Child.lanesBinary, args, stdout: files.out, stderr: files.err) } catch {
            files.remove()
            throw LanesError("could not start lanes \(args.first ?? ""): \(error)")
        }
    }

    public func interrupt() { process.signal(SIGINT) }

    /// Waits (up to `timeout` s, then SIGKILL) and returns status, stdout, stderr.
    /// When `stop` turns true the child gets SIGINT and 5 s more to finish.
    public func wait(timeout: Double = 60, stop: () -> Bool = { false }) -> (status: Int32, stdout: String, stderr: String) {
        var deadline = Date().addingTimeInterval(timeout)
        var interrupted = false
        while process.isRunning && Date() < deadline {
            if !interrupted && stop() {
                interrupted = true
                interrupt()
                deadline = min(deadline, Date().addingTimeInterval(5))
            }
            usleep(5_000)
        }
        if process.isRunning { process.signal(SIGKILL) }
        let status = process.wait()
        defer { files.remove() }
        return (status, files.read(files.out), files.read(files.err))
    }

    /// Runs to completion.
    public static func run(_ command: LanesCommand, timeout: Double = 120, stop: () -> Bool = { false }) throws(LanesError) -> (status: Int32, stdout: String, stderr: String) {
        try Child(command).wait(timeout: timeout, stop: stop)
    }
}

/// Whether an XDP program is attached to `iface` in namespace `ns` (nil: this one), asked with ip.
public func xdpAttached(namespace ns: String?, interface iface: String) -> Bool {
    (try? Shell.run((ns.map { ["ip", "-n", $0] } ?? ["ip"]) + ["link", "show", iface], check: false))?.stdout.contains("prog/xdp") ?? false
}
