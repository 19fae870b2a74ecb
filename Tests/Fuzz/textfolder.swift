// Fuzzes TextDataset.folder: the input is split on byte 0x1E (record separator) into up to 8 files, dealt to two
// class folders, and read with deduplication.
// Checks: valid UTF-8 files keep their exact bytes; other files are listed as non-UTF-8 and decode byte for byte
// as Windows-1252 (checked against an independent table); kept texts are pairwise distinct; the counts add up.
import GraftData
#if canImport(Glibc)
import Glibc
#endif

private let root = scratchFolder + "/texts"
private let classFolders = [root + "/a", root + "/b"]
private let maxFiles = 8

/// Windows-1252 bytes 0x80–0x9F (the five undefined ones as the C1 controls), from the WHATWG index.
private let cp1252: [UInt32] = [
    0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039, 0x152, 0x8D, 0x17D, 0x8F,
    0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178,
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(buffer(data, size))
    var pieces = bytes.split(separator: 0x1E, maxSplits: maxFiles - 1, omittingEmptySubsequences: false).map(Array.init)
    if pieces.count < 2 { pieces.append([]) }
    mkdir(root, 0o700)
    for folder in classFolders {
        mkdir(folder, 0o700)
        for i in 0..<maxFiles { unlink("\(folder)/\(i).txt") }
    }
    var expected: [String: [UInt8]] = [:]
    for (i, piece) in pieces.enumerated() {
        let file = "\(classFolders[i % 2])/\(i / 2).txt"
        piece.withUnsafeBytes { writeFile(file, $0) }
        expected[file] = piece
    }
    let (dataset, report): (TextDataset, TextFolderReport)
    do { (dataset, report) = try TextDataset.folder(root) } catch {
        check(false, "folder threw on a valid layout: \(error)")
        return 0
    }
    check(report.filesRead == pieces.count, "read \(report.filesRead) of \(pieces.count) files")
    check(dataset.count + report.duplicatesRemoved == report.filesRead, "counts do not add up")
    check(dataset.classNames == ["a", "b"], "class names \(dataset.classNames)")
    check(Set(dataset.texts.map { Array($0.utf8) }).count == dataset.count, "duplicates survived")
    let nonUTF8 = Set(report.nonUTF8Files)
    for (text, source) in zip(dataset.texts, dataset.sources) {
        guard let original = expected[source] else { check(false, "unknown source \(source)"); continue }
        if String(validating: original, as: UTF8.self) != nil {
            check(!nonUTF8.contains(source), "\(source) is UTF-8 but listed as not")
            check(text.utf8.elementsEqual(original), "\(source): UTF-8 text changed")
        } else {
            check(nonUTF8.contains(source), "\(source) is not UTF-8 but not listed")
            let scalars = text.unicodeScalars.map(\.value)
            let reference = original.map { (0x80...0x9F).contains($0) ? cp1252[Int($0) - 0x80] : UInt32($0) }
            check(scalars == reference, "\(source): Windows-1252 decoding differs")
        }
    }
    return 0
}
