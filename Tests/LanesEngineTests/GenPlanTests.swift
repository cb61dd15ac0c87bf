import LanesCore
import LanesEngine
import LanesPacket
import LanesXDP
import Testing

/// gen's planning, root-free: what the CLI hands over and what each lane sends.
@Suite struct GenPlanTests {
    static let port = GenInterface(interface: "g0", mtu: 1500, mac: MACAddress("02:4c:00:00:00:01"), rxQueues: 3, queues: nil, frameSize: 2048)
    static func request(_ edit: (inout GenRequest) -> Void = { _ in }) -> GenRequest {
        var q = GenRequest()
        q.defaultDstMac = "02:4c:00:00:00:02"
        edit(&q)
        return q
    }
    static func refusal(_ edit: (inout GenRequest) -> Void, port: GenInterface = port) -> String {
        do { _ = try GenPlan(request(edit), port: port); return "planned" } catch { return error.description }
    }

    @Test func flowsRateAndCountAreSharedOverTheLanes() throws {
        let plan = try GenPlan(Self.request { $0.flows = 7; $0.rate = "30kpps"; $0.count = 10 }, port: Self.port)
        #expect(plan.queues == [0, 1, 2] && plan.flows.count == 7 && plan.sizes == [64])
        #expect(plan.lanes.map(\.streams) == [[0, 3, 6], [1, 4], [2, 5]], "round robin without --rss")
        #expect(plan.lanes.map(\.count) == [4, 3, 3], "10 over three lanes, the remainder to the first")
        #expect(plan.lanes.allSatisfy { $0.pps == 10_000 } && plan.totalPps == 30_000)
        #expect(plan.expected == 7 && !plan.receiving)
        #expect(Set(plan.flows).count == 7, "distinct 5-tuples")
        #expect(GenPlan.shares(of: 5, over: [true, false, true]) == [3, 0, 2])
        #expect(GenPlan.shares(of: nil, over: [true, true]) == [nil, nil])
    }

    /// --rss puts each flow on the lane of the queue the receiver's RSS picks.
    @Test func rssSendsEachFlowFromItsReceiversQueue() throws {
        let plan = try GenPlan(Self.request { $0.flows = 12; $0.rss = true }, port: Self.port)
        let table = RSSTable(queues: 3)
        for (lane, p) in plan.lanes.enumerated() {
            #expect(!p.streams.isEmpty, "the planner spreads flows over every queue")
            for s in p.streams { #expect(table.queue(for: plan.flows[s]) == plan.queues[lane]) }
        }
        let narrow = GenInterface(interface: "g0", mtu: 1500, mac: nil, rxQueues: 3, queues: [0], frameSize: 2048)
        #expect(Self.refusal({ $0.flows = 12; $0.rss = true; $0.srcMac = "02:4c:00:00:00:01" }, port: narrow).contains("which no lane serves"))
    }

    @Test func badRequestsAreRefusedInOneLine() {
        #expect(Self.refusal { $0.size = "40" }.contains("below the IPv4 minimum of 58"))
        #expect(Self.refusal { $0.size = "78"; $0.ipv6 = true; $0.vlan = 7 }.contains("below the IPv6+VLAN minimum of 82"))
        #expect(Self.refusal { $0.size = "1600" }.contains("over what g0's MTU of 1500 sends (1514"))
        #expect(Self.refusal { $0.dstIp = "10.0.0.1" }.contains("outside 198.18.0.0/15"), "the benchmarking range only")
        #expect(Self.refusal { $0.srcIp = "192.168.0.1" }.contains("outside 198.18.0.0/15"))
        #expect(Self.refusal { $0.flows = 3; $0.srcPort = "1000"; $0.dstPort = "9000" }.contains("only 1 distinct flows"))
        #expect(Self.refusal { $0.rx = .xdp }.contains("needs --rx-only"))
        #expect(Self.refusal { $0.rxOnly = true; $0.count = 5 }.contains("--rx-only sends nothing"))
        #expect(Self.refusal { $0.defaultDstMac = nil }.contains("--dst-mac is needed off the testbed"))
        #expect(Self.refusal { $0.imix = true; $0.size = "64" }.contains("conflict"))
        #expect(Self.refusal { $0.rate = "fast" }.contains("bad --rate"))
        #expect(Self.refusal { $0.count = 0 }.contains("bad --count 0"))
        #expect(Self.refusal { $0.flows = 70000 }.contains("bad --flows 70000"))
    }

    @Test func receiveOnlyNeedsNoNextHopAndExpectsWhatItIsTold() throws {
        let any = try GenPlan(Self.request { $0.rxOnly = true; $0.defaultDstMac = nil }, port: Self.port)
        #expect(any.receiving && any.rxOnly && any.expected == nil, "receive only with no --flows expects none in particular")
        let told = try GenPlan(Self.request { $0.rxOnly = true; $0.flows = 8; $0.rx = .xdp }, port: Self.port)
        #expect(told.expected == 8 && told.rxPath == .xdp)
    }
}
