import Foundation
import GraftCore

/// Labelled texts held in memory: one document per row, with its class and the file it came from.
public struct TextDataset: Sendable {
    public let texts: [String]
    public let labels: [Int]
    /// Class names by label: `classNames[labels[i]]` names row `i`'s class.
    public let classNames: [String]
    /// Where each text came from (file paths, for messages).
    public let sources: [String]

    public init(texts: [String], labels: [Int], classNames: [String], sources: [String]) {
        require(texts.count == labels.count && texts.count == sources.count,
                "TextDataset: \(texts.count) texts, \(labels.count) labels and \(sources.count) sources")
        require(labels.allSatisfy { classNames.indices.contains($0) },
                "TextDataset: labels must be in 0..<\(classNames.count), the number of class names")
        self.texts = texts
        self.labels = labels
        self.classNames = classNames
        self.sources = sources
    }

    public var count: Int { texts.count }

    /// The rows at `indices`, in that order, with the same class names.
    public func subset(_ indices: [Int]) -> TextDataset {
        TextDataset(texts: indices.map { texts[$0] }, labels: indices.map { labels[$0] }, classNames: classNames,
                    sources: indices.map { sources[$0] })
    }

    /// A seeded split into training rows and one held-out part per fraction, stratified by class (see the free
    /// function `stratifiedSplit(labels:heldOut:seed:)`). Deduplicate first (as `folder` does by default), or a
    /// text may land in both training and a held-out part.
    public func stratifiedSplit(heldOut fractions: [Double], seed: UInt64) -> (train: TextDataset, heldOut: [TextDataset]) {
        let (train, heldOut) = GraftData.stratifiedSplit(labels: labels, heldOut: fractions, seed: seed)
        return (subset(train), heldOut.map(subset))
    }

    /// Reads a folder with one sub-folder per class, each holding one text per file (the BBC News layout:
    /// `bbcnews/<topic>/NNN.txt`).
    ///
    /// - Classes are the sub-folders, sorted by name in byte order; label `i` is `classNames[i]`. Files directly
    ///   inside the folder, hidden entries (names starting with "."), and anything nested deeper than one level are
    ///   ignored.
    /// - A class's files are those whose extension (case-insensitive) is in `extensions`, read in byte order of their
    ///   names. Such an entry that is not a regular file (a FIFO, device or socket) is refused, not skipped: reading
    ///   it could wait forever, and skipping it would quietly train on less data than the folder shows.
    /// - Files are decoded as UTF-8; a file that is not valid UTF-8 is decoded as Windows-1252 and listed in
    ///   `report.nonUTF8Files`.
    /// - With `deduplicate`, a text identical (scalar for scalar) to an earlier one in (class, file) order is dropped
    ///   and counted in `report.duplicatesRemoved`; when the earlier copy is in another class, the dropped file is
    ///   also listed in `report.conflictingDuplicates`, since one of the two labels is wrong.
    ///
    /// Throws `DataError` naming the path when the folder is missing or not a folder, has no class sub-folders,
    /// a class folder has no matching files, or a folder or file cannot be read or is not a regular file.
    public static func folder(_ path: String, deduplicate: Bool = true,
                              extensions: Set<String> = ["txt"]) throws -> (data: TextDataset, report: TextFolderReport) {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(file: path, line: nil, problem: "no such folder")
        }
        guard isDirectory.boolValue else {
            throw DataError(file: path, line: nil, problem: "not a folder (expected one sub-folder per class)")
        }

        let classNames = try visibleEntries(of: path).filter { isFolder(join(path, $0)) }
        guard !classNames.isEmpty else {
            throw DataError(file: path, line: nil, problem: "no class sub-folders (expected one sub-folder per class)")
        }

        let wanted = Set(extensions.map { $0.lowercased() })
        var texts: [String] = [], labels: [Int] = [], sources: [String] = []
        var filesRead = 0, duplicatesRemoved = 0, nonUTF8Files: [String] = [], conflictingDuplicates: [String] = []
        // Each kept text's UTF-8 bytes (an exact key: String equality would also merge canonically equivalent
        // texts) → its row.
        var firstRow: [[UInt8]: Int] = [:]

        for (label, className) in classNames.enumerated() {
            let classPath = join(path, className)
            // Anything that is not a folder is a file candidate, so a dangling link is reported, not skipped.
            let files = try visibleEntries(of: classPath).filter { name in
                wanted.contains((name as NSString).pathExtension.lowercased()) && !isFolder(join(classPath, name))
            }
            guard !files.isEmpty else {
                let listed = wanted.sorted().map { ".\($0)" }.joined(separator: ", ")
                throw DataError(file: classPath, line: nil, problem: "class folder has no \(listed) files")
            }
            for name in files {
                let filePath = join(classPath, name)
                let bytes: [UInt8]
                do { bytes = try readRegularFile(filePath) } catch {
                    throw DataError(file: filePath, line: nil, problem: error.problem)
                }
                filesRead += 1
                let text: String
                if let utf8 = String(validating: bytes, as: UTF8.self) {
                    text = utf8
                } else {
                    text = decodeWindows1252(bytes)
                    nonUTF8Files.append(filePath)
                }
                if deduplicate {
                    let key = Array(text.utf8)
                    if let row = firstRow[key] {
                        duplicatesRemoved += 1
                        if labels[row] != label { conflictingDuplicates.append(filePath) }
                        continue
                    }
                    firstRow[key] = texts.count
                }
                texts.append(text)
                labels.append(label)
                sources.append(filePath)
            }
        }
        let data = TextDataset(texts: texts, labels: labels, classNames: classNames, sources: sources)
        let report = TextFolderReport(folder: path, classCount: classNames.count, filesRead: filesRead,
                                      duplicatesRemoved: duplicatesRemoved, nonUTF8Files: nonUTF8Files,
                                      conflictingDuplicates: conflictingDuplicates)
        return (data, report)
    }
}

/// What `TextDataset.folder` read and what it changed, for the caller to print.
public struct TextFolderReport: Sendable {
    public let folder: String
    public let classCount: Int
    /// Files read, duplicates included.
    public let filesRead: Int
    /// Files dropped because an earlier file had the same text (0 without deduplication).
    public let duplicatesRemoved: Int
    /// Files that were not valid UTF-8 and were decoded as Windows-1252.
    public let nonUTF8Files: [String]
    /// Dropped duplicates whose earlier copy is in a different class: one of the two labels is wrong.
    public let conflictingDuplicates: [String]

    /// E.g. "bbcnews: 5 classes, 2225 files read, 98 exact duplicates removed (0 across classes), 1 not UTF-8 (read as
    /// Windows-1252)".
    public var summary: String {
        "\(folder): \(classCount) classes, \(filesRead) files read, \(duplicatesRemoved) exact duplicates removed "
            + "(\(conflictingDuplicates.count) across classes), \(nonUTF8Files.count) not UTF-8 (read as Windows-1252)"
    }
}

/// The non-hidden entries of a folder, sorted by name in byte order (independent of locale and normalisation).
func visibleEntries(of folder: String) throws -> [String] {
    let names: [String]
    do {
        names = try FileManager.default.contentsOfDirectory(atPath: folder)
    } catch {
        throw DataError(file: folder, line: nil, problem: "cannot list the folder")
    }
    return names.filter { !$0.hasPrefix(".") }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}

/// Whether `path` is a folder (following symbolic links).
func isFolder(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}

/// `folder/name`, without doubling a trailing slash, keeping a relative folder relative.
func join(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
}

/// Windows-1252 (the usual encoding of Western European text that is not UTF-8): Latin-1 except 0x80–0x9F, which
/// hold typographic punctuation and a few letters. The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F,
/// 0x90, 0x9D) map to the C1 controls U+0081 etc., as Latin-1 (and the WHATWG Encoding Standard) does.
func decodeWindows1252(_ bytes: [UInt8]) -> String {
    var scalars = String.UnicodeScalarView()
    scalars.reserveCapacity(bytes.count)
    for byte in bytes {
        let value = (0x80...0x9F).contains(byte) ? windows1252C1[Int(byte) - 0x80] : UInt32(byte)
        scalars.append(Unicode.Scalar(value)!)
    }
    return String(scalars)
}

/// Code points of bytes 0x80–0x9F in Windows-1252.
private let windows1252C1: [UInt32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, // 80–87: € (81) ‚ ƒ „ … † ‡
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F, // 88–8F: ˆ ‰ Š ‹ Œ (8D) Ž (8F)
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, // 90–97: (90) ‘ ’ “ ” • – —
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178, // 98–9F: ˜ ™ š › œ (9D) ž Ÿ
]
