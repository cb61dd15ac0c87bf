import LanesLab
import Testing

/// The lab's typed reading of the commands' `--json` lines (scale and rfc2544 read
/// nothing else): each kind of line gives its fields, a field of another type
/// under a known key is nil without losing the line, and text that is not JSON is
/// skipped. The keys are the ones the commands print (ScaleTests and RFC2544Tests
/// read the real ones end to end).
@Suite struct ReportLineTests {
    @Test func everyKindOfLineGivesItsFields() throws {
        let dut = """
        lanes drop on d0: 2 lane(s)
        {"elapsed_s":1.0,"rx_pps":0,"tx_pps":0,"lane_rx_pps":[0,0]}
        {"elapsed_s":2.0,"rx_pps":1500000.5,"drops":7,"lane_rx_pps":[750000,750000.5]}
        {"bind_mode":"copy","cpu_s":3.5,"rx_packets":3000001,"lanes":[{"rx_packets":1500000,"queue":0},{"rx_packets":1500001,"queue":1}],\
        "xdp":{"policed":12,"passed":3},"xsk":{"rx_dropped":4},"drops":{"drop_app":3000001,"drop_no_route":2},\
        "ec2_shaping":{"deltas":{"pps_allowance_exceeded":5}}}
        """
        let lines = ReportLine.lines(dut)
        try #require(lines.count == 3, "the banner is not JSON: \(lines.count)")
        #expect(lines[1].elapsedS == 2.0 && lines[1].rxPps == 1500000.5 && lines[1].drops == nil, "a count under 'drops' is not the summary's causes")
        let s = lines[2]
        #expect(s.lanes?.map(\.rxPackets) == [1500000, 1500001])
        #expect(s.xdp?.policed == 12 && s.xsk?.rxDropped == 4 && s.bindMode == "copy" && s.cpuS == 3.5 && s.rxPackets == 3000001)
        #expect(s.drops == ["drop_app": 3000001, "drop_no_route": 2], "cause names stay as printed")
        #expect(s.ec2Shaping?.deltas == ["pps_allowance_exceeded": 5])

        let kernel = ReportLine.last("""
        {"interface":"d0","bind_mode":"kernel","packets":99,"udp_rcvbuf_errors":3,"lanes":[{"socket":0,"core":0,"rx_packets":99}]}
        """)
        #expect(kernel?.packets == 99 && kernel?.udpRcvbufErrors == 3 && kernel?.lanes?.first?.rxPackets == 99 && kernel?.rxPackets == nil)

        let gen = ReportLine.last("""
        {"tx_packets":5000,"tx_pps":250000.0,"rx_packets":4999,"cpu_s":1.25,\
        "latency":{"count":4999,"min_ns":1000,"p50_ns":2000,"p90_ns":3000,"p99_ns":4000,"p999_ns":5000,"max_ns":18446744073709551615}}
        """)
        #expect(gen?.txPackets == 5000 && gen?.txPps == 250000 && gen?.rxPackets == 4999 && gen?.cpuS == 1.25)
        #expect(gen?.latency?["p50_ns"] == 2000 && gen?.latency?["max_ns"] == .max)

        #expect(ReportLine.last(#"{"rx_queues":4,"driver":"virtio_net"}"#)?.rxQueues == 4)
        #expect(ReportLine.last("not json") == nil)
    }
}
