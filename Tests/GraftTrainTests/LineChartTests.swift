import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import GraftTrain

@Suite struct LineChartTests {
    @Test func drawsEverySeriesWithAxesAndLegendAsWellFormedSVG() throws {
        let chart = LineChart(title: "Loss <per epoch>", xLabel: "epoch", yLabel: "loss", series: [
            .init("training", [(1, 2.0), (2, 0.9), (3, 0.4)]),
            .init("validation", [(1, 1.5), (2, 1.1), (3, .nan)]),
            .init("one point", [(2, 0.7)]),
        ])
        let svg = LineChart.svg([chart, chart])
        #expect(XMLParser(data: Data(svg.utf8)).parse(), "not well-formed XML")
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4, "two lines per chart: a single point draws no line")
        #expect(svg.contains(">training<") && svg.contains(">validation<") && svg.contains(">one point<"))
        #expect(svg.contains("Loss &lt;per epoch&gt;") && !svg.contains("nan"))
        #expect(svg.contains("height=\"680\""))
        // Ticks cover the data: 0.4 … 2 on a 0.5 grid gives 0, 0.5, …, 2.
        for tick in [">0<", ">0.5<", ">1<", ">1.5<", ">2<"] { #expect(svg.contains(tick), "\(tick)") }
    }

    @Test func drawsErrorBarsOverNamedEvenlySpacedSizes() throws {
        var chart = LineChart(title: "Accuracy by rows per class", xLabel: "rows per class", yLabel: "accuracy (%)", series: [
            .init("scratch", [(0, 40), (1, 60), (2, 90)], spread: [5, 0, 2]),
            .init("transfer", [(0, 70), (1, 80), (2, 95)], spread: [10, 4, .nan]),
        ])
        chart.xCategories = ["5", "10", "all"]
        let svg = LineChart.svg([chart])
        #expect(XMLParser(data: Data(svg.utf8)).parse(), "not well-formed XML")
        // A bar for each positive finite spread: 5, 2, 10 and 4.
        #expect(svg.components(separatedBy: "class=\"error-bar\"").count - 1 == 4)
        // The x ticks are the names, evenly spaced; the y axis reaches the lowest bar's end (35, below the points'
        // 40: a tick at 20).
        for tick in [">5<", ">10<", ">all<", ">20<", ">100<"] { #expect(svg.contains(tick), "\(tick)") }
        let xs = ["5", "10", "all"].compactMap { name -> Double? in
            guard let r = svg.range(of: "text-anchor=\"middle\">\(name)<") else { return nil }
            let head = svg[..<r.lowerBound], x = head[head.range(of: "<text x=\"", options: .backwards)!.upperBound...]
            return Double(x.prefix { $0 != "\"" })
        }
        #expect(xs.count == 3 && abs((xs[1] - xs[0]) - (xs[2] - xs[1])) < 0.2, "\(xs)")
    }
}
