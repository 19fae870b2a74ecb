import Foundation
import GraftCore

/// A problem in a data file, naming the file and, where it applies, the line.
public struct DataError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let problem: String

    public init(file: String, line: Int?, problem: String) {
        (self.file, self.line, self.problem) = (file, line, problem)
    }

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(problem)" }
}

/// Examples as rows of features with an integer class label each, held in memory.
public struct LabelledData: Sendable {
    public let features: [Float]
    public let labels: [Int]
    public let featureCount: Int

    public init(features: [Float], labels: [Int], featureCount: Int) {
        require(features.count == labels.count * featureCount,
                     "LabelledData: \(features.count) features for \(labels.count) rows of \(featureCount)")
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
    }

    public var count: Int { labels.count }
    public var classCount: Int { (labels.max() ?? -1) + 1 }

    /// The most classes a label may imply. Labels size the model's output and per-class tables, so a stray large
    /// id must be an error, not a request for terabytes (or, past `Int.max`, a crash in an unchecked build).
    public static let maximumClassCount = 100_000

    /// Reads a headerless numeric CSV whose last column is the class label (MNIST-5k, UCI digits), scaling
    /// each feature by `scale`.
    ///
    /// Lines end in LF or CRLF, the last one may lack its end; blank lines, a UTF-8 byte-order mark and blanks around
    /// fields are ignored. Every row has the same number of fields. A feature must be a number that stays a finite
    /// Float32 once scaled (no NaN, inf, or 1e39); a label must be a whole number in `0..<maximumClassCount`.
    /// Throws `DataError` naming the file, line and column, quoting at most `excerptLimit` characters of a bad value;
    /// a FIFO, device or socket is refused before it is opened (see `readRegularFile`).
    public static func csv(_ path: String, scale: Float = 1) throws -> LabelledData {
        var bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw DataError(file: path, line: nil, problem: error.problem) }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var features: [Float] = [], labels: [Int] = [], width: Int?
        // Split on bytes: as Swift characters, "\r\n" is one character and never equals "\n".
        for (index, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let row = trimmed(line)
            if row.isEmpty { continue }
            let fields = row.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
                .map { String(decoding: trimmed($0), as: UTF8.self) }
            func failure(column: Int, _ problem: String) -> DataError {
                let name = column == fields.count ? "column \(column) (the label)" : "column \(column)"
                return DataError(file: path, line: lineNumber, problem: "\(name): \(problem)")
            }
            guard fields.count >= 2 else {
                throw DataError(file: path, line: lineNumber,
                                problem: "expected features then a label, found 1 field \(quotedExcerpt(fields[0]))")
            }
            if let width, fields.count != width {
                throw DataError(file: path, line: lineNumber, problem: "\(fields.count) fields where earlier rows have \(width)")
            }
            width = fields.count
            for (column, field) in fields.dropLast().enumerated() {
                features.append(try feature(field, scale: scale).mapError { failure(column: column + 1, "\($0)") }.get())
            }
            labels.append(try classID(fields.last!).mapError { failure(column: fields.count, "\($0)") }.get())
        }
        guard let width else { throw DataError(file: path, line: nil, problem: "no rows") }
        return LabelledData(features: features, labels: labels, featureCount: width - 1)
    }

    /// `text` as a feature times `scale`, or why not, quoting it.
    private static func feature(_ text: String, scale: Float) -> Result<Float, Reason> {
        let quoted = quotedExcerpt(text)
        guard let value = Float(text) else { return .failure(Reason("\(quoted) is not a number")) }
        guard value.isFinite else {
            // Float reads 1e39 as inf; Double tells an overflow from a written "inf" or "nan".
            let overflow = Double(text).map(\.isFinite) == true
            return .failure(Reason(overflow ? "\(quoted) is beyond the range of a 32-bit float (±3.4e38)"
                                            : "\(quoted) is not a finite number"))
        }
        let scaled = value * scale
        guard scaled.isFinite else {
            return .failure(Reason("\(quoted) times scale \(scale) is beyond the range of a 32-bit float (±3.4e38)"))
        }
        return .success(scaled)
    }

    /// `text` as a class id, or why not, quoting it. The range is checked before any conversion to `Int`, which
    /// traps (or, unchecked, is undefined) for a Double out of range.
    private static func classID(_ text: String) -> Result<Int, Reason> {
        let outOfRange = Reason("\(quotedExcerpt(text)) is not a class id in 0..<\(maximumClassCount)")
        if let id = Int(text) { return (0..<maximumClassCount).contains(id) ? .success(id) : .failure(outOfRange) }
        // "3.0", as a program writing every column as floats leaves it.
        guard let value = Double(text), value.isFinite, value == value.rounded() else {
            return .failure(Reason("\(quotedExcerpt(text)) is not a whole number"))
        }
        guard value >= 0 && value < Double(maximumClassCount) else { return .failure(outOfRange) }
        return .success(Int(value))
    }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabelledData {
        var f = [Float]()
        f.reserveCapacity(indices.count * featureCount)
        for i in indices { f += features[i * featureCount..<(i + 1) * featureCount] }
        return LabelledData(features: f, labels: indices.map { labels[$0] }, featureCount: featureCount)
    }

    /// A seeded split into training and held-out rows, stratified by class so both keep the class balance
    /// (see the free function `stratifiedSplit(labels:heldOut:seed:)`).
    public func stratifiedSplit(heldOut fraction: Double, seed: UInt64) -> (train: LabelledData, test: LabelledData) {
        let (train, heldOut) = stratifiedSplit(heldOut: [fraction], seed: seed)
        return (train, heldOut[0])
    }

    /// A seeded stratified split into training rows and one held-out part per fraction (e.g. validation, test).
    public func stratifiedSplit(heldOut fractions: [Double], seed: UInt64) -> (train: LabelledData, heldOut: [LabelledData]) {
        let (train, heldOut) = GraftData.stratifiedSplit(labels: labels, heldOut: fractions, seed: seed)
        return (subset(train), heldOut.map(subset))
    }

    /// Rows `indices` as a [n, features] tensor and their labels.
    public func batch(_ indices: ArraySlice<Int>) -> (Tensor, [Int]) {
        let x = Storage(count: indices.count * featureCount)
        features.withUnsafeBufferPointer { src in
            for (j, i) in indices.enumerated() {
                (x.pointer + j * featureCount).update(from: src.baseAddress! + i * featureCount, count: featureCount)
            }
        }
        return (Tensor(shape: [indices.count, featureCount], storage: x), indices.map { labels[$0] })
    }
}

/// Why a value from a file was refused, before the file, line and column are attached.
private struct Reason: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `bytes` without blanks (space, tab, carriage return) at either end.
private func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
    guard let first = bytes.firstIndex(where: { !isBlank($0) }) else { return bytes[bytes.endIndex...] }
    let last = bytes.lastIndex(where: { !isBlank($0) })!
    return bytes[first...last]
}
