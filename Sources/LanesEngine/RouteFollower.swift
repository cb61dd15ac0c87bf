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
    let changes: RouteNetlink.Changes
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
        changes = try RouteNetlink.Changes()
    }

    deinit {
        stop()
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
        stopFlag.storeRelaxed(1) // relaxed: it only ends the loop; the join orders the rest
        t.join()
        thread = nil
    }

    func follow() {
        while stopFlag.loadRelaxed() == 0 {
            guard changes.wait(timeoutMs: 50) else { continue }
            usleep(2000) // the rest of a burst of changes (a route replace is several messages)
            changes.drain()
            guard let (table, _, _) = try? snapshot() else { continue }
            version &+= 1
            for d in directions { d.slot.publish(L3Tables(routes: table, outPort: d.outPort, version: version)) }
            log.append("routes version \(version): \(routes) route(s) from \(neighbours) neighbour(s)" + (unresolved > 0 ? ", \(unresolved) gateway(s) unresolved" : ""))
        }
    }
}
