import Foundation

/// A line chart as a standalone SVG image: axes with rounded ticks, labels, one coloured line with dots per series
/// (error bars where a series has a spread), and a legend; what `graft train` draws its learning curves with.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Half the height of each point's error bar (y ± spread), one per point; nil draws none.
        public var spread: [Double]?
        public init(_ name: String, _ points: [(x: Double, y: Double)], spread: [Double]? = nil) {
            (self.name, self.points, self.spread) = (name, points, spread)
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    /// Names of evenly spaced x positions: x = i is drawn at the i-th place and labelled `xCategories[i]` (sizes such
    /// as 5, 10, 20, all); nil makes x a number axis.
    public var xCategories: [String]?
    public var width = 560, height = 340

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        (self.title, self.xLabel, self.yLabel, self.series) = (title, xLabel, yLabel, series)
    }

    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// The chart's SVG elements inside a group placed at (x, y), for combining several charts in one image.
    public func elements(at x: Int = 0, y: Int = 0) -> [String] {
        let (left, right, top, bottom) = (64.0, 150.0, 34.0, 46.0)
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let bars = series.flatMap(errorBars).map(\.y)
        var (x0, x1) = (points.map(\.x).min() ?? 0, points.map(\.x).max() ?? 1)
        var (y0, y1) = ((points.map(\.y) + bars.map(\.lowerBound)).min() ?? 0, (points.map(\.y) + bars.map(\.upperBound)).max() ?? 1)
        if x1 <= x0 { (x0, x1) = (x0 - 1, x1 + 1) }
        if y1 <= y0 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
        let xTicks = xCategories.map { $0.indices.map(Double.init) } ?? ticks(x0, x1), yTicks = ticks(y0, y1)
        (x0, x1) = xCategories.map { (-0.5, Double($0.count) - 0.5) } ?? (min(x0, xTicks.first!), max(x1, xTicks.last!))
        (y0, y1) = (min(y0, yTicks.first!), max(y1, yTicks.last!))
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * plotW }
        func py(_ v: Double) -> Double { top + plotH - (v - y0) / (y1 - y0) * plotH }
        var out = ["<g transform=\"translate(\(x),\(y))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<text x=\"\(left)\" y=\"20\" font-size=\"14\" font-weight=\"bold\">\(escaped(title))</text>",
                   "<rect x=\(quoted(left)) y=\(quoted(top)) width=\(quoted(plotW)) height=\(quoted(plotH)) fill=\"none\" stroke=\"#888\"/>"]
        for t in xTicks {
            out.append("<line x1=\(quoted(px(t))) y1=\(quoted(top)) x2=\(quoted(px(t))) y2=\(quoted(top + plotH)) stroke=\"#eee\"/>")
            let name = xCategories.map { escaped($0[Int(t)]) } ?? label(t)
            out.append("<text x=\(quoted(px(t))) y=\(quoted(top + plotH + 16)) text-anchor=\"middle\">\(name)</text>")
        }
        for t in yTicks {
            out.append("<line x1=\(quoted(left)) y1=\(quoted(py(t))) x2=\(quoted(left + plotW)) y2=\(quoted(py(t))) stroke=\"#eee\"/>")
            out.append("<text x=\(quoted(left - 6)) y=\(quoted(py(t) + 4)) text-anchor=\"end\">\(label(t))</text>")
        }
        out.append("<text x=\(quoted(left + plotW / 2)) y=\(quoted(Double(height) - 10)) text-anchor=\"middle\">\(escaped(xLabel))</text>")
        out.append("<text transform=\"translate(16,\(top + plotH / 2)) rotate(-90)\" text-anchor=\"middle\">\(escaped(yLabel))</text>")
        for (i, s) in series.enumerated() {
            let colour = LineChart.colours[i % LineChart.colours.count]
            let finite = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if finite.count > 1 {
                let path = finite.map { "\(format(px($0.x))),\(format(py($0.y)))" }.joined(separator: " ")
                out.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>")
            }
            for p in finite where finite.count <= 60 {
                out.append("<circle cx=\(quoted(px(p.x))) cy=\(quoted(py(p.y))) r=\"3\" fill=\"\(colour)\"/>")
            }
            for bar in errorBars(s) {
                let (x, low, high) = (px(bar.x), py(bar.y.lowerBound), py(bar.y.upperBound))
                out.append("<path class=\"error-bar\" d=\"M\(format(x)),\(format(low))V\(format(high))M\(format(x - 4)),\(format(low))"
                           + "h8M\(format(x - 4)),\(format(high))h8\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>")
            }
            let ly = top + 8 + Double(i) * 18
            out.append("<line x1=\(quoted(left + plotW + 12)) y1=\(quoted(ly)) x2=\(quoted(left + plotW + 32)) y2=\(quoted(ly)) stroke=\"\(colour)\" stroke-width=\"2\"/>")
            out.append("<text x=\(quoted(left + plotW + 38)) y=\(quoted(ly + 4))>\(escaped(s.name))</text>")
        }
        out.append("</g>")
        return out
    }

    /// A series' error bars: x and y − spread...y + spread of each finite point with a positive finite spread.
    private func errorBars(_ s: Series) -> [(x: Double, y: ClosedRange<Double>)] {
        guard let spread = s.spread else { return [] }
        return zip(s.points, spread).compactMap { p, d in
            p.x.isFinite && p.y.isFinite && d.isFinite && d > 0 ? (p.x, (p.y - d)...(p.y + d)) : nil
        }
    }

    /// Charts stacked top to bottom in one SVG document.
    public static func svg(_ charts: [LineChart]) -> String {
        let width = charts.map(\.width).max() ?? 0, height = charts.map(\.height).reduce(0, +)
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"]
        var y = 0
        for chart in charts {
            out += chart.elements(y: y)
            y += chart.height
        }
        return (out + ["</svg>"]).joined(separator: "\n") + "\n"
    }
}

/// About five round tick values covering [low, high].
private func ticks(_ low: Double, _ high: Double) -> [Double] {
    let raw = (high - low) / 5, magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    let first = floor(low / step) * step
    return stride(from: first, through: high + step * 0.999, by: step).map { ($0 / step).rounded() * step }
}

private func label(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : String(format: abs(v) < 0.01 ? "%.1e" : "%.3g", v)
}

private func format(_ v: Double) -> String { String(format: "%.1f", v) }
private func quoted(_ v: Double) -> String { "\"\(format(v))\"" }

private func escaped(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
