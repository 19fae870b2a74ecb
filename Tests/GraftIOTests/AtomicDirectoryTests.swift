import Foundation
import Testing
@testable import GraftIO

@Suite struct AtomicDirectoryTests {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "graft-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func replacesADirectoryAsAWholeAndLeavesNothingBeside() throws {
        let dir = try directory()
        try AtomicDirectory.write("\(dir)/last") { try AtomicDirectory.writeFile("one", named: "state.json", in: $0) }
        try AtomicDirectory.write("\(dir)/last") { try AtomicDirectory.writeFile("two", named: "state.json", in: $0) }
        #expect(read("\(dir)/last/state.json") == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["last"])
    }

    @Test func aFailingFillLeavesThePreviousContents() throws {
        let dir = try directory()
        try AtomicDirectory.write("\(dir)/last") { try AtomicDirectory.writeFile("one", named: "a", in: $0) }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try AtomicDirectory.write("\(dir)/last") { try AtomicDirectory.writeFile("two", named: "a", in: $0); throw Boom() }
        }
        #expect(read("\(dir)/last/a") == "one")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["last"])
    }

    @Test func leftoversOfAKilledWriterAreCleanedAndAMissingDirectoryRestored() throws {
        let dir = try directory()
        let fm = FileManager.default
        // Killed mid-write of best/ (a temporary), and between the two renames of last/ (only the old one left).
        try fm.createDirectory(atPath: "\(dir)/best.tmp-4242", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(dir)/last.old-4242", withIntermediateDirectories: true)
        try "epoch 3".write(toFile: "\(dir)/last.old-4242/state.json", atomically: false, encoding: .utf8)
        try fm.createDirectory(atPath: "\(dir)/best", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(dir)/best.old-17", withIntermediateDirectories: true)
        try "kept".write(toFile: "\(dir)/results.tmp-x", atomically: false, encoding: .utf8)
        try AtomicDirectory.removeLeftovers(in: dir)
        #expect(try fm.contentsOfDirectory(atPath: dir).sorted() == ["best", "last", "results.tmp-x"])
        #expect(read("\(dir)/last/state.json") == "epoch 3")
    }

    @Test func writeFileReplacesInOneStep() throws {
        let dir = try directory()
        try AtomicDirectory.writeFile("first", named: "results.json", in: dir)
        try AtomicDirectory.writeFile("second", named: "results.json", in: dir)
        #expect(read("\(dir)/results.json") == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["results.json"])
    }

    @Test func aPlainFileIsNotReplacedByADirectory() throws {
        let dir = try directory()
        try "x".write(toFile: "\(dir)/last", atomically: false, encoding: .utf8)
        #expect(throws: SafeTensorsError.self) { try AtomicDirectory.write("\(dir)/last") { _ in } }
        #expect(read("\(dir)/last") == "x")
    }
}
