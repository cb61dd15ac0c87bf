import Foundation
import LanesXDP

/// A `lanes` subcommand run as a child process (each in its own namespace, or
/// on an SSH host), its output collected in temporary files.
public final class Child {
    let process: Subprocess
    let files = TemporaryOutput()
    /// Over SSH: the write end of ssh's stdin. Its close (by `interrupt`, or this
    /// process gone) stops the remote side cleanly (`Remote.stopOnHangUp`).
    var stopLine: Int32 = -1

    /// The running binary, for children.
    public static var lanesBinary: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

    /// Starts `command` here (the lab's one launcher: see LanesCommand).
    public convenience init(_ command: LanesCommand) throws(LanesError) { try self.init(arguments: command.arguments) }

    init(arguments args: [String]) throws(LanesError) {
        do { process = try Subprocess(Child.lanesBinary, args, stdout: files.out, stderr: files.err) } catch {
            files.remove()
            throw LanesError("could not start lanes \(args.first ?? ""): \(error)")
        }
    }

    /// Starts `command` on `host` (`.local`: here, as `init(_:)`); over SSH it runs
    /// under `Remote.stopOnHangUp`, so `interrupt` and a lost connection both stop
    /// it as SIGINT does here.
    public convenience init(_ command: LanesCommand, on host: HostSpec, access: SSHAccess) throws(LanesError) {
        guard !host.isLocal else { try self.init(arguments: command.arguments); return }
        try self.init(ssh: access.arguments(host) + [Remote.stopOnHangUp([access.lanesPath] + command.arguments)], host: host)
    }

    init(ssh args: [String], host: HostSpec) throws(LanesError) {
        var fds: [Int32] = [-1, -1]
        // Every child Lanes starts closes the descriptors past 2 (Subprocess), so the
        // write end stays this process's alone; close-on-exec for anything else.
        guard pipe(&fds) == 0 else { files.remove(); throw LanesError.system("pipe for ssh", errno: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(fds[0]) }
        do {
            process = try Subprocess("/usr/bin/ssh", args, stdout: files.out, stderr: files.err, stdin: fds[0])
        } catch {
            close(fds[1]); files.remove()
            throw LanesError("could not start ssh to \(host): \(error)")
        }
        stopLine = fds[1]
    }

    /// A child dropped without `wait` (an error path) leaves no output files behind.
    deinit {
        if stopLine >= 0 { close(stopLine) }
        files.remove()
    }

    /// Kills the local process at once (SIGKILL): here, the lanes child (what a
    /// crash leaves); over SSH, the ssh client, so the connection goes as if lost
    /// and the remote side stops by itself. `wait` reaps it.
    public func abandon() { process.signal(SIGKILL) }

    /// SIGINT here; over SSH, the stop line closed (EOF: never a SIGPIPE here).
    public func interrupt() {
        if stopLine >= 0 {
            close(stopLine)
            stopLine = -1
        } else {
            process.signal(SIGINT)
        }
    }

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
        // Over SSH, hang up first: the remote side stops when its channel closes.
        if stopLine >= 0 { close(stopLine); stopLine = -1 }
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

/// Whether an XDP program is attached to `iface` in namespace `ns` (nil: the
/// host's own) on `host` (default: here), asked with ip.
public func xdpAttached(namespace ns: String?, interface iface: String, on host: HostSpec = .local, access: SSHAccess = SSHAccess()) -> Bool {
    (try? Remote.run((ns.map { ["ip", "-n", $0] } ?? ["ip"]) + ["link", "show", iface], on: host, access: access))?.stdout.contains("prog/xdp") ?? false
}
