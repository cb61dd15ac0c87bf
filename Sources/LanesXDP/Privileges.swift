import CLanes

/// The process's capabilities after set-up.
public enum Privileges {
    /// Keeps only CAP_NET_ADMIN (to detach an XDP program at the end) in the calling
    /// thread's effective and permitted sets; threads started later inherit it. Call
    /// once the sockets, rings, maps and programs are open, before any worker thread.
    public static func keepOnlyNetAdmin() throws(LanesError) {
        if lanes_keep_only_net_admin() != 0 {
            throw LanesError.system("drop capabilities after set-up (capset)", errno: lanes_errno())
        }
    }
}
