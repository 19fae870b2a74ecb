import Foundation
import GraftCore
import Testing
@testable import GraftData

private let fontsPresent = FileManager.default.fileExists(atPath: "\(GlyphSet.defaultFontDirectory)/NotoSansGeorgian-Regular.ttf")
private let fontsMissing: Comment = "Noto fonts not in \(GlyphSet.defaultFontDirectory): bash launch/setup.sh installs fonts-noto-core"

@Suite(.enabled(if: fontsPresent, fontsMissing)) struct GlyphTests {
    static let set = try! GlyphSet(charactersPerScript: 20, seed: 3)

    @Test func manyScriptsOfTwentyLetterClasses() {
        let set = Self.set
        #expect(set.scripts.count >= 40, "\(set.scripts.map(\.name))")
        #expect(set.classes.count == 20 * set.scripts.count)
        #expect(set.classesByScript.allSatisfy { $0.count == 20 })
        #expect(set.scripts.contains { $0.name == "Georgian" } && !set.scripts.contains { $0.name == "Math" })
        for script in set.scripts {
            #expect(script.characters.allSatisfy { $0.value >= 0x370 && $0.properties.isAlphabetic }, "\(script.name)")
        }
    }

    @Test func samplesAreDeterministicVariedAndInked() {
        let set = Self.set
        let a = set.sample(class: 5, index: 2)
        #expect(a.count == 28 * 28 && a.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(a == set.sample(class: 5, index: 2))
        #expect(a == (try! GlyphSet(charactersPerScript: 20, seed: 3)).sample(class: 5, index: 2))
        #expect(a != set.sample(class: 5, index: 3) && a != set.sample(class: 6, index: 2))
        // Some ink, centred: the border rows and columns stay nearly empty.
        for c in stride(from: 0, to: set.classes.count, by: 97) {
            let image = set.sample(class: c, index: 0)
            let ink = image.reduce(0, +) / Float(image.count)
            #expect(ink > 0.02 && ink < 0.6, "class \(c): mean ink \(ink)")
            var border: Float = 0
            for i in 0..<28 { border += image[i] + image[27 * 28 + i] + image[i * 28] + image[i * 28 + 27] }
            #expect(border < 2, "class \(c): border ink \(border)")
        }
        let (images, labels) = set.images(classes: [0, 7], samplesPerClass: 3)
        #expect(images.shape == [6, 1, 28, 28] && labels == [0, 0, 0, 7, 7, 7])
    }

    @Test func aMissingFontDirectoryIsNamed() {
        let error = #expect(throws: DataError.self) { _ = try GlyphSet(fontDirectory: "/nonexistent/fonts") }
        #expect(error?.description.contains("/nonexistent/fonts") == true && error?.description.contains("fonts-noto-core") == true)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["GRAFT_GLYPH_GRID"] != nil))
    func writesAGridToLookAt() throws {
        let set = Self.set
        var rows: [String] = []
        for c in stride(from: 0, to: set.classes.count, by: set.classes.count / 12) {
            rows.append((0..<10).map { i in set.sample(class: c, index: i).map { String(Int($0 * 255)) }.joined(separator: " ") }.joined(separator: "|"))
        }
        try rows.joined(separator: "\n").write(toFile: ProcessInfo.processInfo.environment["GRAFT_GLYPH_GRID"]!, atomically: true, encoding: .utf8)
    }
}
