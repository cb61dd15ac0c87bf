import CLanes
import Foundation
import Glibc

/// A child process started with posix_spawn: stdin from /dev/null (or a pipe's
/// read end the caller gives), stdout and stderr into files, every other
/// descriptor closed in the child. The one way
/// Lanes starts a process (Child, Shell, the tests). Not Foundation's Process:
/// its run() reads /proc/self/fd with a 256-byte copy past readdir's record and
/// crashes now and then (swift-corelibs-foundation PR 5472; it took down a whole
/// CI test run here).
public final class Subprocess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Starts `path` with `args` (argv[1...]); output goes to the files at `stdout`
    /// and `stderr`; stdin is `stdin` (a descriptor of the caller's, e.g. a pipe's
    /// read end) or /dev/null.
    public init(_ path: String, _ args: [String], stdout: String, stderr: String, stdin: Int32? = nil) throws(LanesError) {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if let stdin { posix_spawn_file_actions_adddup2(&fa, stdin, 0) } else { posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) }
        posix_spawn_file_actions_addopen(&fa, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&fa, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        lanes_spawn_addclosefrom(&fa, 3)
        // The child starts with no signal blocked (a lanes parent blocks SIGINT/SIGTERM).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let r = posix_spawn(&child, path, &fa, &attr, argv, environ)
        guard r == 0 else { throw LanesError.system("start \(path)", errno: r) }
        pid = child
    }

    /// False once the child has exited (and been reaped).
    public var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        let r = waitpid(pid, &s, WNOHANG)
        if r == pid { status = s; return false }
        if r < 0 && errno != EINTR { status = -1; return false }
        return true
    }

    /// Waits for the exit; the exit code, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        while status == nil {
            var s: Int32 = 0
            let r = waitpid(pid, &s, 0)
            if r == pid { status = s } else if r < 0 && errno != EINTR { status = -1 }
        }
        return exitCode
    }

    public var exitCode: Int32 {
        guard let s = status, s >= 0 else { return -1 }
        let sig = s & 0x7f
        return sig == 0 ? (s >> 8) & 0xff : 128 + sig
    }

    public func signal(_ sig: Int32) { if status == nil { kill(pid, sig) } }

    /// Runs `path args` to completion (at most `timeout` s, then SIGKILL) with its output read from temporary files.
    public static func run(_ path: String, _ args: [String], timeout: Double = 120) throws(LanesError) -> (status: Int32, stdout: String, stderr: String) {
        let files = TemporaryOutput()
        defer { files.remove() }
        let p = try Subprocess(path, args, stdout: files.out, stderr: files.err)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning { p.signal(SIGKILL) }
        let status = p.wait()
        return (status, files.read(files.out), files.read(files.err))
    }
}

/// Two temporary files for a child's stdout and stderr.
public struct TemporaryOutput: Sendable {
    public let out: String, err: String
    public init(prefix: String = "lanes-child") {
        let tmp = FileManager.default.temporaryDirectory.path
        let id = UUID().uuidString
        out = "\(tmp)/\(prefix)-\(id).out"
        err = "\(tmp)/\(prefix)-\(id).err"
    }
    public func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    public func remove() { unlink(out); unlink(err) }
}
