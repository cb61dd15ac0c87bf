import CLanes
import Glibc

/// Network namespaces, entered with setns(2) by the thread that opens sockets.
/// Lanes enters once, on the main thread, before it starts any other thread: the
/// lanes inherit it. Sockets keep the namespace they were created in.
public enum NetworkNamespace {
    public static func path(_ name: String) -> String { "/run/netns/\(name)" }

    public static func exists(_ name: String) -> Bool { access(path(name), F_OK) == 0 }

    /// Moves the calling thread into namespace `name`.
    public static func enter(_ name: String) throws(LanesError) {
        guard !name.isEmpty, !name.contains("/") else {
            throw LanesError("bad namespace name '\(name)'", fix: "give a name as 'ip netns list' shows it")
        }
        let fd = open(path(name), O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = lanes_errno()
            if e == ENOENT {
                throw LanesError("network namespace '\(name)' does not exist",
                                 fix: "see 'ip netns list', or run 'lanes testbed up'")
            }
            throw LanesError.system("open \(path(name))", errno: e)
        }
        defer { close(fd) }
        try syscall("setns(\(name))") { setns(fd, lanes_clone_newnet()) }
    }

    /// Enters `name` and gives this process a private view of /sys that shows the
    /// namespace's interfaces (what `ip netns exec` does). Call before any thread starts.
    public static func enterWithSysfs(_ name: String) throws(LanesError) {
        try enter(name)
        try syscall("unshare(CLONE_NEWNS)") { unshare(lanes_clone_newns()) }
        // Stop mount events from leaking back to the host.
        try syscall("make / a slave mount") { mount("", "/", nil, UInt(MS_SLAVE | MS_REC), nil) }
        _ = umount2("/sys", Int32(MNT_DETACH))
        try syscall("mount sysfs for namespace \(name)") { mount(name, "/sys", "sysfs", 0, nil) }
    }
}
