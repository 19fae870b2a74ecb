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
}
