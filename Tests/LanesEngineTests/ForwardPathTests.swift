import LanesEngine
import LanesXDP
import Testing

/// `fwd --path`'s choice, from the options and the ports' XDP features.
@Suite struct ForwardPathTests {
    static let veth = ["native", "redirect", "redirect-target", "multi-buffer"]

    func choose(_ asked: ForwardPath, needsLanes: String? = nil, generic: Bool = false, driver: String = "veth",
                inFeatures: [String]? = veth, egressFeatures: [String]? = veth) throws(LanesError) -> (ForwardPath, String) {
        try ForwardPath.choose(asked, needsLanes: needsLanes, generic: generic, inDriver: driver, inFeatures: inFeatures,
                               egress: "d1", egressFeatures: egressFeatures)
    }

    @Test func autoTakesXDPOnACopyModeDeviceAndSaysWhy() throws {
        let (p, why) = try choose(.auto)
        #expect(p == .xdp && why.hasPrefix("auto: veth has no AF_XDP zero-copy"))
        let (z, zwhy) = try choose(.auto, driver: "igb", inFeatures: ["native", "redirect", "redirect-target", "zero-copy"])
        #expect(z == .xdp && zwhy.contains("igb offers AF_XDP zero-copy") && zwhy.contains("--path xsk"))
    }

    @Test func autoTakesTheLanesWhenAnOptionNeedsThemOrTheEgressTakesNoRedirects() throws {
        #expect(try choose(.auto, needsLanes: "--impair") == (.xsk, "auto: --impair needs the lanes"))
        let (p, why) = try choose(.auto, egressFeatures: ["native", "redirect"])
        #expect(p == .xsk && why.contains("d1 takes no redirected frames") && why.contains("gro on"))
        // Generic XDP redirects by skb: any egress takes them.
        #expect(try choose(.auto, generic: true, egressFeatures: []).0 == .xdp)
        // Features unknown (no netdev netlink): not held against the port.
        #expect(try choose(.auto, egressFeatures: nil).0 == .xdp)
    }

    @Test func pathXDPRefusesInOneLine() throws {
        #expect(throws: LanesError.self) { try choose(.xdp, needsLanes: "--pipeline") }
        do { _ = try choose(.xdp, needsLanes: "--pipeline"); Issue.record("no refusal") } catch {
            #expect(error.description.contains("--pipeline needs the lanes") && !error.description.contains("\n"), "\(error.description)")
        }
        #expect(throws: LanesError.self) { try choose(.xdp, egressFeatures: ["native"]) }
        #expect(try choose(.xsk, needsLanes: nil).0 == .xsk)
        #expect(try choose(.xdp).0 == .xdp)
    }
}
