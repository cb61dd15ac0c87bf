import ArgumentParser
import Foundation
import LanesPacket
import LanesEngine
import LanesXDP

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Print one line per packet of a pcap or pcapng file: layers, addresses, ports, VLANs, lengths, checksums, where parsing stopped.",
        discussion: "Example: lanes decode capture.pcap --json")
    @Argument(help: "A pcap or pcapng file (Ethernet).") var file: String
    @Flag(help: "One JSON object per packet (JSON lines).") var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LanesError("cannot read '\(file)'", errno: errno, fix: "check the path")
        }
        let read: (records: [PcapRecord], cut: PcapError?)
        do { read = try Pcap.readPrefix(Array(data)) } catch { throw LanesError("bad pcap '\(file)': \(error)", fix: "give a pcap or pcapng capture of Ethernet frames") }
        for (i, r) in read.records.enumerated() {
            let s = PacketSummary(index: i + 1, record: r)
            if json { printJSONLine(s) } else { print(s.line) }
        }
        if let cut = read.cut {
            throw LanesError("'\(file)' is damaged after \(read.records.count) records (printed): \(cut)", fix: "the capture was cut short")
        }
    }
}

struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Plan 5-tuples that RSS puts K to a queue (Toeplitz over the interface's key and table, or the standard key).",
        discussion: "Example: lanes flows d0 --netns lanes-dut --per-queue 4 --json")
    @Argument(help: "Interface whose RSS key and table to use (default: standard key, kernel default table).") var interface: String?
    @Option(help: "Network namespace of the interface.") var netns: String?
    @Option(help: "Queues to plan for (default: the interface's RX queues, else online CPUs).") var queues: Int?
    @Option(help: "Flows per queue.") var perQueue = 1
    @Option(help: "Source address of the first flow.") var src = "198.18.0.1"
    @Option(help: "Destination address.") var dst = "198.18.1.1"
    @Option(help: "First source port.") var sport: UInt16 = 1024
    @Option(help: "Destination port.") var dport: UInt16 = 9000
    @Option(help: "udp or tcp.") var proto = "udp"
    @Option(help: "Predict the queue of each flow in FILE ('lanes flows --json' output, or lines 'SRC DST SPORT DPORT [udp|tcp]') instead of planning.") var predict: String?
    @Flag(help: "Print JSON.") var json = false

    struct Plan: Encodable {
        struct Flow: Encodable { var src: String; var dst: String; var srcPort: Int; var dstPort: Int; var proto: String; var queue: Int; var hash: String }
        var interface: String?
        var rssSource: String
        var key: String
        var tableSize: Int
        var queues: Int
        var perQueue: Int
        var flows: [Flow]
    }

    func run() throws {
        guard let s = IPAddress(src), let d = IPAddress(dst), s.isV6 == d.isV6 else {
            throw LanesError("bad --src/--dst '\(src)' '\(dst)'", fix: "give two IPv4 or two IPv6 addresses")
        }
        guard proto == "udp" || proto == "tcp" else { throw LanesError("bad --proto '\(proto)'", fix: "use udp or tcp") }
        guard perQueue >= 1 && perQueue <= 4096 else { throw LanesError("bad --per-queue \(perQueue)", fix: "use 1-4096") }
        var table: RSSTable
        var source = "default (standard Toeplitz key, kernel default table)"
        var n = queues ?? Sysfs.onlineCPUs()
        if let interface {
            if let netns { try NetworkNamespace.enterWithSysfs(netns) }
            let (rx, _) = try InterfaceInfo.queueCount(interface)
            n = queues ?? rx
            let e = try Ethtool(interface)
            if let rss = e.rss(), !rss.indirection.isEmpty {
                // The device's key, table and the fields it hashes per flow type.
                let fields = e.rssPortHashing()
                table = RSSTable(key: rss.key.isEmpty ? Toeplitz.standardKey : rss.key, indirection: rss.indirection, portHashing: fields)
                source = "driver (\(rss.hashFunctionName)" + (rss.key.isEmpty ? ", standard key" : "") + (fields == RSSPortHashing() ? "" : ", ports hashed: \(fields.summary)") + ")"
            } else {
                table = RSSTable(queues: n)
            }
        } else {
            table = RSSTable(queues: n)
        }
        guard n >= 1 && n <= 1024 else { throw LanesError("bad --queues \(n)", fix: "use 1-1024") }
        if let predict {
            let given = try GenFlows.read(file: predict)
            let out = given.map { f in Plan.Flow(src: f.src.description, dst: f.dst.description, srcPort: Int(f.srcPort), dstPort: Int(f.dstPort),
                                                 proto: f.proto == 6 ? "tcp" : "udp", queue: table.queue(for: f), hash: "0x" + String(table.hash(f), radix: 16)) }
            let plan = Plan(interface: interface, rssSource: source, key: table.toeplitz.key.map { hexByte($0) }.joined(separator: ":"),
                            tableSize: table.indirection.count, queues: n, perQueue: 0, flows: out)
            if json { return printJSON(plan) }
            print("\(out.count) flows of \(predict); RSS \(source)")
            for f in out { print("  queue \(f.queue)  \(f.proto) \(f.src):\(f.srcPort) -> \(f.dst):\(f.dstPort)  hash \(f.hash)") }
            return
        }
        let template = FlowKey(src: s, dst: d, srcPort: sport, dstPort: dport, proto: proto == "tcp" ? 6 : 17)
        guard let flows = FlowPlanner.plan(table: table, queues: n, perQueue: perQueue, template: template) else {
            throw LanesError("could not place \(perQueue) flows on each of \(n) queues", fix: "the indirection table may not reach every queue; check 'lanes info'")
        }
        let plan = Plan(interface: interface, rssSource: source, key: table.toeplitz.key.map { hexByte($0) }.joined(separator: ":"),
                        tableSize: table.indirection.count, queues: n, perQueue: perQueue,
                        flows: flows.map { .init(src: $0.flow.src.description, dst: $0.flow.dst.description, srcPort: Int($0.flow.srcPort),
                                                 dstPort: Int($0.flow.dstPort), proto: proto, queue: $0.queue,
                                                 hash: "0x" + String($0.hash, radix: 16)) })
        if json { return printJSON(plan) }
        print("\(flows.count) flows, \(perQueue) per queue over \(n) queues; RSS \(source)")
        for f in flows { print("  queue \(f.queue)  \(f.flow)  hash 0x\(String(f.hash, radix: 16))") }
    }
}

func hexByte(_ b: UInt8) -> String { (b < 16 ? "0" : "") + String(b, radix: 16) }
