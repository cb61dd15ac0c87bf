import CLanes
import Glibc

/// The one error type of Lanes' set-up code: what was attempted, the errno when
/// the OS refused, and a fix where one is known. Its description is the one line
/// a user sees on stderr. The fast path never throws; it counts.
public struct LanesError: Error, CustomStringConvertible, Equatable {
    public var what: String
    public var errno: Int32?
    public var fix: String?

    public init(_ what: String, errno: Int32? = nil, fix: String? = nil) {
        self.what = what
        self.errno = errno
        self.fix = fix
    }

    public var description: String {
        var s = what
        if let e = errno { s += ": \(String(cString: strerror(e))) (errno \(e))" }
        if let fix { s += "; \(fix)" }
        return s
    }

    /// A system call failure, with the usual fix for permission errors.
    public static func system(_ what: String, errno e: Int32, fix: String? = nil) -> LanesError {
        var fix = fix
        if fix == nil && (e == EPERM || e == EACCES) && geteuid() != 0 {
            fix = "run as root (or with CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW, CAP_IPC_LOCK)"
        }
        return LanesError(what, errno: e, fix: fix)
    }
}

/// Runs a system call, retrying EINTR, and throws the rest with what was attempted.
/// Returns the call's non-negative result.
@discardableResult
@inlinable
public func syscall<T: SignedInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws(LanesError) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = lanes_errno()
        if e == EINTR { continue }
        throw LanesError.system(what(), errno: e)
    }
}

/// Runs a libbpf/libxdp call that returns a negative errno on failure.
@discardableResult
@inlinable
public func negErrno(_ what: @autoclosure () -> String, _ body: () -> Int32) throws(LanesError) -> Int32 {
    let r = body()
    if r < 0 { throw LanesError.system(what(), errno: -r) }
    return r
}

/// Root is needed for XDP and AF_XDP; say so in one line before anything else fails.
public func requireRoot(for what: String) throws(LanesError) {
    if geteuid() != 0 {
        throw LanesError("\(what) needs root", fix: "run it with sudo, or as root")
    }
}

/// Writes `text` to standard error (descriptor 2) as it is, unbuffered: the one
/// way the project writes there (Glibc's `stderr` is a mutable global).
public func printError(_ text: String) {
    var t = text
    t.withUTF8 { b in
        guard let base = b.baseAddress else { return }
        var done = 0
        while done < b.count {
            let n = write(2, base + done, b.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            done += n
        }
    }
}
