import Foundation
import Testing
@testable import GraftTrain

@Suite struct ProgressTests {
    @Test func aLogGetsPlainLinesAndAFinalOne() {
        var text = ""
        let progress = TextProgress(isTerminal: false, quietFor: 0, lineEvery: 0) { text += $0 }
        progress.begin("caching features", total: 4, unit: "rows")
        for done in 1...4 { progress.advance(to: done) }
        progress.end()
        let lines = text.split(separator: "\n")
        #expect(lines.count == 4, "\(lines)")  // 1, 2, 3 of 4, then the final line with the time taken
        #expect(lines.first?.hasPrefix("caching features: 1/4 rows") == true && lines.first?.contains("ETA") == true)
        #expect(lines.last?.hasPrefix("caching features: 4/4 rows") == true && lines.last?.contains("ETA") == false)
        #expect(!text.contains("\r"))
    }

    @Test func aTerminalGetsABarRedrawnInPlace() {
        var text = ""
        let progress = TextProgress(isTerminal: true, quietFor: 0) { text += $0 }
        progress.begin("epoch 1", total: 10, unit: "steps")
        progress.advance(to: 5)
        progress.end()
        #expect(text.hasPrefix("\r\u{1B}[2Kepoch 1 ███████████████··············· 5/10 steps"), "\(text)")
        #expect(text.hasSuffix("\n") && text.components(separatedBy: "\r").count == 3)
    }

    @Test func shortPassesStayQuiet() {
        var text = ""
        let progress = TextProgress(isTerminal: true, quietFor: 60) { text += $0 }
        progress.begin("evaluating", total: 3, unit: "batches")
        for done in 1...3 { progress.advance(to: done) }
        progress.end()
        #expect(text.isEmpty)
    }
}
