import CLanes
import Glibc
import LanesPacket
import LanesXDP

/// `lanes fwd --mode l3 --routes kernel`: the lanes' tables follow the kernel's.
/// A netlink socket subscribed to route (IPv4, IPv6), neighbour and link changes
/// wakes one thread; after a change (and 2 ms for the rest of a burst of them)
/// it dumps both tables again, builds new L3 tables aside and publishes them to
/// every direction's slot (one store each; the old set is freed once the lanes
/// have left it). The lanes never stop and never take a lock.
public final class RouteFollower: @unchecked Sendable {
    public struct Direction: Sendable {
        public let slot: L3TableSlot
        public let outPort: String
        public init(slot: L3TableSlot, outPort: String) { self.slot = slot; self.outPort = outPort }
    }

    public let ports: Set<String>
    let fd: Int32
    public var directions: [Direction] = []
    let stopFlag = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    var thread: PinnedThread?
    /// The published table's version (1: the first), and what it was built from.
    public private(set) var version: UInt64 = 1
    public private(set) var routes = 0, neighbours = 0, unresolved = 0
    /// Lines for stderr, one per update (taken by the command after the run).
    public private(set) var log: [String] = []

    /// Subscribes first, so no change between this and the first dump is missed.
    public init(ports: Set<String>) throws(LanesError) {
        self.ports = ports
        stopFlag.initialize(to: 0)
        fd = try syscall("socket(AF_NETLINK, NETLINK_ROUTE) for route changes") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), NETLINK_ROUTE)
        }
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        // RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
        addr.nl_groups = 0x1 | 0x4 | 0x40 | 0x400
        let fd = self.fd
        do {
            _ = try syscall("bind rtnetlink to route, neighbour and link changes") {
                withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) } }
            }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        stop()
        close(fd)
        stopFlag.deallocate()
    }

    /// The kernel's tables now, as the lanes' route table over `ports`.
    public func snapshot() throws(LanesError) -> (table: RouteTable, kernel: KernelRoutes, unresolved: [KernelRoutes.Route]) {
        let k = try RouteNetlink.read()
        let (list, unresolved) = k.table(ports: ports)
        routes = list.count
        neighbours = k.neighbours.count
        self.unresolved = unresolved.count
        return (RouteTable(routes: list), k, unresolved)
    }

    /// Starts following (once; call after the privileges are dropped and the stop
    /// signals blocked: the thread inherits both).
    public func start(core: Int) throws(LanesError) {
        guard thread == nil else { return }
        let me = Unmanaged.passUnretained(self)
        thread = try PinnedThread(core: core, name: "routes") { me._withUnsafeGuaranteedRef { $0.follow() } }
    }

    public func stop() {
        guard let t = thread else { return }
        lanes_store_relaxed_u64(stopFlag, 1)
        t.join()
        thread = nil
    }

    func drain() -> Bool {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var any = false
        while buf.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, 0) }) > 0 { any = true }
        return any
    }

    func follow() {
        while lanes_load_relaxed_u64(stopFlag) == 0 {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0, drain() else { continue }
            usleep(2000) // the rest of a burst of changes (a route replace is several messages)
            _ = drain()
            guard let (table, _, _) = try? snapshot() else { continue }
            version &+= 1
            for d in directions { d.slot.publish(L3Tables(routes: table, outPort: d.outPort, version: version)) }
            log.append("routes version \(version): \(routes) route(s) from \(neighbours) neighbour(s)" + (unresolved > 0 ? ", \(unresolved) gateway(s) unresolved" : ""))
        }
    }
}
