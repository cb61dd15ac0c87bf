import Foundation

/// The SVG of an RFC 2544 run: throughput per frame size in Mpps and in Gbps
/// (NDR solid, PDR dashed, one colour per flow count, open marks where the
/// generator bounded the result), and loss ratio against offered load.
public enum RFC2544Plot {
    public static func svg(_ r: RFC2544Result) -> String {
        let panelW = 340.0, panelH = 280.0, top = 70.0
        let lefts = [70.0, 500.0, 930.0]
        let w = 1320.0, h = 450.0
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(w / 2)" y="24" text-anchor="middle" font-size="16" font-weight="bold">\(SVG.esc(r.tool)): \(SVG.esc(r.dut))</text>
        <text x="\(w / 2)" y="44" text-anchor="middle" fill="#555">\(SVG.esc(r.machine)), \(SVG.esc(r.path)), \(r.trialSeconds) s trials, precision \(SVG.fmt(r.precision * 100))%, PDR \(SVG.fmt(r.pdrLossRatio * 100))%</text>

        """
        var sizes: [RFC2544Frame] = []
        for p in r.points where !sizes.contains(p.size) { sizes.append(p.size) }
        let flows = Array(Set(r.points.map(\.flows))).sorted()
        let sx: (Double, RFC2544Frame) -> Double = { left, f in
            let i = Double(sizes.firstIndex(of: f) ?? 0)
            return left + (sizes.count > 1 ? i / Double(sizes.count - 1) * (panelW - 40) + 20 : panelW / 2)
        }
        // Panels 1 and 2: NDR and PDR per frame size, in Mpps and in Gbps.
        for (panel, unit) in [(0, "Mpps"), (1, "Gbps")] {
            let left = lefts[panel]
            func value(_ x: RFC2544Result.Rate) -> Double { unit == "Mpps" ? x.pps / 1e6 : x.gbps }
            let ymax = SVG.niceMax(r.points.flatMap { [$0.ndr, $0.pdr].compactMap { $0.map(value) } }.max() ?? 0.1)
            let y: (Double) -> Double = { top + panelH - $0 / ymax * panelH }
            s += SVG.axes(left: left, top: top, width: panelW, height: panelH, ymax: ymax,
                          xticks: sizes.map { (sx(left, $0), $0.description) }, xlabel: "frame size (bytes)", ylabel: "throughput \(unit)")
            var row = 0
            for (i, f) in flows.enumerated() {
                let c = SVG.colors[i % SVG.colors.count]
                for (name, dashed) in [("NDR", false), ("PDR", true)] {
                    let pts = r.points.filter { $0.flows == f }.compactMap { p in (name == "NDR" ? p.ndr : p.pdr).map { (p.size, $0) } }
                    guard !pts.isEmpty else { continue }
                    s += SVG.polyline(pts.map { (sx(left, $0.0), y(value($0.1))) }, color: c, dashed: dashed)
                    for (size, rate) in pts where rate.generatorBound {
                        s += "<circle cx=\"\(sx(left, size))\" cy=\"\(y(value(rate)))\" r=\"5\" fill=\"white\" stroke=\"\(c)\" stroke-width=\"2\"/>\n"
                    }
                    s += SVG.legend(x: left + 10, y: top + 14 + Double(row) * 16, color: c, text: "\(name), \(f) flow\(f == 1 ? "" : "s")", dashed: dashed)
                    row += 1
                }
            }
            if r.points.contains(where: { $0.ndr?.generatorBound == true || $0.pdr?.generatorBound == true }) {
                s += "<text x=\"\(left + panelW)\" y=\"\(top + panelH + 56)\" text-anchor=\"end\" fill=\"#555\">open marks: generator-bound (at least)</text>\n"
            }
        }
        // Panel 3: loss ratio against offered load.
        let left = lefts[2]
        let curves = r.points.filter { !$0.frameLoss.isEmpty }
        let xmax = SVG.niceMax(curves.flatMap { $0.frameLoss.map { $0.offeredPps / 1e6 } }.max() ?? 1)
        let ymax = SVG.niceMax(max(curves.flatMap { $0.frameLoss.map { $0.lossRatio * 100 } }.max() ?? 0, 0.1))
        let x: (Double) -> Double = { left + $0 / xmax * panelW }
        let y: (Double) -> Double = { top + panelH - $0 / ymax * panelH }
        s += SVG.axes(left: left, top: top, width: panelW, height: panelH, ymax: ymax,
                      xticks: (0...5).map { (x(xmax * Double($0) / 5), SVG.fmt(xmax * Double($0) / 5)) }, xlabel: "offered Mpps", ylabel: "loss %")
        for (i, p) in curves.enumerated() {
            let c = SVG.colors[(i + flows.count) % SVG.colors.count]
            let pts = p.frameLoss.sorted { $0.offeredPps < $1.offeredPps }
            s += SVG.polyline(pts.map { (x($0.offeredPps / 1e6), y($0.lossRatio * 100)) }, color: c)
            s += SVG.legend(x: left + 10, y: top + 14 + Double(i) * 16, color: c, text: "\(p.size) B, \(p.flows) flow\(p.flows == 1 ? "" : "s")")
        }
        if curves.isEmpty {
            s += "<text x=\"\(left + panelW / 2)\" y=\"\(top + panelH / 2)\" text-anchor=\"middle\" fill=\"#555\">no frame loss test in this run</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
