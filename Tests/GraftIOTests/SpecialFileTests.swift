import Foundation
import GraftCore
import GraftIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Makes a FIFO at `path`. Should a reader wrongly open it and wait for a writer, a writer comes after 5 s and leaves
/// at once, so the test fails on what the reader makes of an empty file instead of hanging the suite.
private func makeFIFO(_ path: String) throws {
    guard mkfifo(path, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
        let fd = open(path, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }
}

@Suite struct SpecialFileTests {
    @Test func safetensorsRefusesAFIFOADeviceAndAFolder() throws {
        let dir = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/model.safetensors"
        try makeFIFO(fifo)
        for (path, kind) in [(fifo, "a FIFO"), ("/dev/null", "a character device"), (dir, "a directory")] {
            do {
                _ = try SafeTensorsFile(path: path)
                Issue.record("\(path) opened")
            } catch let error as SafeTensorsError {
                #expect(error.kind == .notRegularFile)
                #expect(error.description == "\(path): not a regular file (\(kind))")
            }
        }
        expectOpenFails(dir + "/missing.safetensors", .io)
    }

    @Test func recipesRefuseAFIFO() throws {
        let dir = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/recipe.yaml"
        try makeFIFO(fifo)
        #expect(throws: YAMLError(file: fifo, line: nil, "not a regular file (a FIFO)")) { try YAML.load(path: fifo) }
    }

    @Test func readRegularFileReadsWhatIsThere() throws {
        let dir = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bytes"
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try readRegularFile(path) == bytes)
        #expect(throws: FileProblem.self) { try readRegularFile("/dev/zero") }
    }

    @Test func echoedValuesAreCut() throws {
        #expect(excerpt("short") == "short" && quotedExcerpt("short") == "'short'")
        let exact = String(repeating: "b", count: excerptLimit)
        #expect(quotedExcerpt(exact) == "'\(exact)'")
        let huge = String(repeating: "a", count: 52_428_800)
        let a80 = String(repeating: "a", count: 80)
        #expect(quotedExcerpt(huge) == "'\(a80)…' (52428800 characters)")
        #expect(excerpt(huge) == "\(a80)… (52428800 characters)")
        // Cut by scalars: a "character" of a thousand combining marks is not shown whole.
        let marks = "e" + String(repeating: "\u{301}", count: 1000)
        #expect(excerpt(marks).unicodeScalars.count < 120)
    }

    /// libyaml's messages quote nothing; the one that names a key (a duplicate; a key of over 1,024 characters must be
    /// written as a `?` key) quotes a huge one in part.
    @Test func yamlErrorsQuoteAHugeValueInPart() throws {
        let huge = String(repeating: "k", count: 1_000_000)
        let a80 = String(repeating: "k", count: 80)
        for text in ["a: 1\n\(huge)\n", "a: [1] \(huge)\n", "\(huge): 1\n", "? \(huge)\n: 1\n? \(huge)\n: 2\n"] {
            do {
                _ = try YAML.parse(text, file: "recipe.yaml")
                Issue.record("parsed")
            } catch {
                #expect(error.line != nil && error.description.count < 200, "\(error.description.prefix(200))")
                if text.hasPrefix("?") {
                    #expect(error.description.contains("'\(a80)…' (1000000 characters)"), "\(error.description.prefix(200))")
                }
            }
        }
    }
}
