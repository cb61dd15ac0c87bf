import Foundation
import LanesReport
import LanesXDP

/// Where one side of an experiment runs: this machine, or a host reached with
/// OpenSSH (`[USER@]HOST[:PORT]`), as TRex and CSIT drive a remote generator. The
/// user's own ssh (its config, agent and keys) is the transport; Lanes runs no
/// daemon of its own. BatchMode: a host that would ask for a password is an error.
public enum HostSpec: Sendable, Equatable, CustomStringConvertible {
    case local
    case ssh(user: String?, host: String, port: Int?)

    /// `local`, or `[USER@]HOST[:PORT]` (an IPv6 address in brackets: `[fd00::1]:22`).
    public init(parsing spec: String) throws(LanesError) {
        let bad = LanesError("bad host '\(spec)'", fix: "give [USER@]HOST[:PORT], e.g. root@198.18.0.10 or ec2-user@gen:2222, or 'local'")
        if spec == "local" { self = .local; return }
        var rest = Substring(spec)
        var user: String? = nil
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
            guard let u = user, !u.isEmpty, u.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else { throw bad }
        }
        var host: Substring, port: Int? = nil
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { throw bad }
                port = p
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw bad }
            port = p
        } else {
            host = rest
        }
        if let port, !(1...65535).contains(port) { throw bad }
        guard !host.isEmpty, !host.hasPrefix("-"), host.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:".contains($0) }) else { throw bad }
        self = .ssh(user: user, host: String(host), port: port)
    }

    public var isLocal: Bool { self == .local }

    public var description: String {
        switch self {
        case .local: "local"
        case .ssh(let user, let host, let port):
            (user.map { $0 + "@" } ?? "") + (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
        }
    }
}

/// How the lab reaches its SSH hosts: the user's ssh, with an optional config file
/// (`-F`; else ~/.ssh/config and the agent, as the user's own ssh would), and the
/// `lanes` binary's path there (the same build, checked by `Remote.preflight`).
public struct SSHAccess: Sendable, Equatable {
    public var configFile: String?
    /// The remote `lanes` (default: this binary's path, the same build installed the same way).
    public var lanesPath: String
    public init(configFile: String? = nil, lanesPath: String? = nil) {
        self.configFile = configFile
        self.lanesPath = lanesPath ?? Child.lanesBinary
    }

    /// The `lanes` to run on `host`: this binary here, `lanesPath` there.
    public func lanes(on host: HostSpec) -> String { host.isLocal ? Child.lanesBinary : lanesPath }

    /// ssh's arguments up to the remote command. BatchMode: never a password
    /// prompt; keep-alives of 2 s x 3: a connection lost is seen in 6 s and the
    /// remote side stops (it reads EOF, see `Remote.stopOnHangUp`).
    func arguments(_ host: HostSpec) -> [String] {
        guard case .ssh(let user, let name, let port) = host else { return [] }
        var a = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3", "-T"]
        if let configFile { a += ["-F", configFile] }
        if let port { a += ["-p", "\(port)"] }
        a.append((user.map { $0 + "@" } ?? "") + name)
        return a
    }
}

/// Running lanes (and a few tools) on an SSH host.
public enum Remote {
    /// `word` quoted for the remote POSIX shell (ssh hands it one command line).
    public static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The remote command line that runs `argv` so that it stops cleanly, with its
    /// report, when the controller asks or goes away: argv runs in the background
    /// with stdin from /dev/null, and a reader of the SSH channel (fd 3: a shell
    /// gives an asynchronous list /dev/null as stdin) sends it SIGINT at EOF (the
    /// controller closed ssh's stdin, or the connection was lost: sshd closes the
    /// channel) or a line; the exit status is argv's. (A shell also starts an
    /// asynchronous list with SIGINT ignored: lanes sets it back, see main.)
    public static func stopOnHangUp(_ argv: [String]) -> String {
        let cmd = argv.map(quote).joined(separator: " ")
        // SIGINT again every 0.2 s until it is gone: a stop that comes before lanes runs
        // (the controller gone as the side starts) would find SIGINT still ignored.
        return "sh -c " + quote("exec 3<&0; \(cmd) </dev/null 3<&- & p=$!; (read _ <&3; while kill -INT $p 2>/dev/null; do sleep 0.2; done) & r=$!; exec 3<&-; wait $p; s=$?; kill $r 2>/dev/null; exit $s")
    }

    /// Runs `argv` on `host` to completion (a short tool: info, sha256sum, ethtool;
    /// here, `Shell.run`); over SSH, a connection that fails is a one-line error
    /// naming the host. `check`: a non-zero exit is one too, with the tool's first
    /// line on stderr.
    public static func run(_ argv: [String], on host: HostSpec, access: SSHAccess, check: Bool = false, timeout: Double = 60) throws(LanesError) -> Shell.Result {
        let r = try host.isLocal ? Shell.run(argv, check: false) : overSSH(argv, on: host, access: access, timeout: timeout)
        if check && r.status != 0 {
            throw LanesError("\(host): '\(argv.joined(separator: " "))' failed: \(r.stderr.split(whereSeparator: \.isNewline).first ?? "exit \(r.status)")")
        }
        return r
    }

    static func overSSH(_ argv: [String], on host: HostSpec, access: SSHAccess, timeout: Double) throws(LanesError) -> Shell.Result {
        let o = try Subprocess.run("/usr/bin/ssh", access.arguments(host) + [argv.map(quote).joined(separator: " ")], timeout: timeout)
        // ssh exits 255 on its own errors (no route, refused, no key): its last line says which.
        if o.status == 255 {
            // ssh ends its lines with CRLF, one Character to Swift: split on any newline.
            let why = o.stderr.split(whereSeparator: \.isNewline).last.map(String.init) ?? "ssh exited 255"
            throw LanesError("cannot reach \(host) over ssh: \(why)", fix: "check that 'ssh\(access.configFile.map { " -F \($0)" } ?? "") \(host) true' works without a password (BatchMode)")
        }
        return Shell.Result(status: o.status, stdout: o.stdout, stderr: o.stderr)
    }

    /// What a side's port is, from `lanes info PORT --json` on its host (with the
    /// namespace, where the port lives in one there).
    public struct Side: Sendable {
        public var host: HostSpec
        public var port: String
        public var netns: String?
        public var info: InterfaceInfo
    }

    /// Before any traffic: the host answers over SSH, runs the same Lanes build as
    /// this one (the binaries' SHA-256), and has the port; its facts come back
    /// typed. Each failure is one line naming the host.
    /// `localLanes`: this side's build (the running lanes).
    public static func preflight(host: HostSpec, port: String, netns: String? = nil, access: SSHAccess,
                                 localLanes: String = Child.lanesBinary) throws(LanesError) -> Side {
        let lanes = host.isLocal ? localLanes : access.lanesPath
        if !host.isLocal {
            let here = try Shell.run(["sha256sum", localLanes]).stdout.split(separator: " ").first.map(String.init) ?? "?"
            let there = try run(["sha256sum", lanes], on: host, access: access)
            guard there.status == 0, let sum = there.stdout.split(separator: " ").first.map(String.init) else {
                throw LanesError("\(host) has no lanes at \(lanes): \(there.stderr.split(whereSeparator: \.isNewline).first ?? "")",
                                 fix: "install this build there at the same path, or name it")
            }
            guard sum == here else {
                throw LanesError("\(host) runs another Lanes build (\(lanes): sha256 \(sum.prefix(12))) than this one (\(localLanes): sha256 \(here.prefix(12)))",
                                 fix: "copy this build there: both sides must run the same one")
            }
        }
        let o = try run([lanes, "info", port] + (netns.map { ["--netns", $0] } ?? []) + ["--json"], on: host, access: access)
        guard o.status == 0 else {
            let why = o.stderr.split(whereSeparator: \.isNewline).first.map(String.init) ?? "exit \(o.status)"
            throw LanesError("\(host): port \(port): \(why)")
        }
        do {
            return Side(host: host, port: port, netns: netns, info: try Report.decoder.decode(InterfaceInfo.self, from: Data(o.stdout.utf8)))
        } catch {
            throw LanesError("\(host): 'lanes info \(port) --json' gave no interface facts: \(error)")
        }
    }
}
