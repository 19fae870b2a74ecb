import Foundation
import Testing
@testable import GraftData

#if canImport(Glibc)
import Glibc
#endif

/// A fresh folder under the system temporary directory, removed when `body` returns.
func withScratchFolder(_ body: (String) throws -> Void) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-data-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    try body(root)
}

/// Makes a FIFO at `path`. Should a reader wrongly open it and wait for a writer, a writer comes after 5 s and leaves
/// at once, so the test fails on what the reader makes of an empty file instead of hanging the suite.
func makeFIFO(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    guard mkfifo(path, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
        let fd = open(path, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }
}

/// Asserts that `body` throws a `DataError` whose message starts `file:line: ` (or `file: ` without a line) and holds
/// every piece of `texts`; returns the message.
@discardableResult
func expectRefusal(file: String, line: Int? = nil, _ texts: [String], sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> Void) -> String {
    do {
        try body()
        Issue.record("no error", sourceLocation: sourceLocation)
    } catch let error as DataError {
        let message = "\(error)"
        #expect(message.hasPrefix(line.map { "\(file):\($0): " } ?? "\(file): "), "\(message)", sourceLocation: sourceLocation)
        for text in texts { #expect(message.contains(text), "\(message) should say \(text)", sourceLocation: sourceLocation) }
        return message
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

@Suite struct SpecialFilesAreRefused {
    /// A FIFO among a class's texts is refused (not skipped), naming it, rather than waited on.
    @Test func aFIFOInATextFolder() throws {
        try withScratchFolder { root in
            for (name, text) in [("a/1.txt", "alpha"), ("b/1.txt", "beta")] {
                try FileManager.default.createDirectory(atPath: root + "/" + (name as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + name))
            }
            _ = try TextDataset.folder(root)
            try makeFIFO(root + "/b/2.txt")
            expectRefusal(file: root + "/b/2.txt", ["not a regular file (a FIFO)"]) { _ = try TextDataset.folder(root) }
        }
    }

    @Test func aFIFOAsVocabularyOrImage() throws {
        try withScratchFolder { root in
            let fifo = root + "/vocab.txt"
            try makeFIFO(fifo)
            expectRefusal(file: fifo, ["not a regular file (a FIFO)"]) { _ = try WordPieceTokenizer(vocabularyFile: fifo) }
            expectRefusal(file: fifo, ["not a regular file (a FIFO)"]) { _ = try RGBImage.decodeJPEG(path: fifo) }
            expectRefusal(file: "/dev/zero", ["not a regular file (a character device)"]) {
                _ = try WordPieceTokenizer(vocabularyFile: "/dev/zero")
            }
        }
    }
}
