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

    /// Reads a headerless numeric CSV whose last column is the class label (MNIST-5k, UCI digits), scaling
    /// each feature by `scale`. Every row must have the same number of columns.
    public static func csv(_ path: String, scale: Float = 1) throws -> LabelledData {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, line: nil, problem: "cannot read the file")
        }
        var features: [Float] = [], labels: [Int] = [], width: Int?
        var lineNumber = 0
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            let fields = text.split(separator: ",")
            guard fields.count >= 2 else {
                throw DataError(file: path, line: lineNumber, problem: "expected features then a label, found \(fields.count) field")
            }
            if let width, fields.count != width {
                throw DataError(file: path, line: lineNumber, problem: "\(fields.count) fields where earlier rows have \(width)")
            }
            width = fields.count
            for field in fields.dropLast() {
                guard let v = Float(field) else {
                    throw DataError(file: path, line: lineNumber, problem: "'\(field)' is not a number")
                }
                features.append(v * scale)
            }
            guard let label = Int(fields.last!), label >= 0 else {
                throw DataError(file: path, line: lineNumber, problem: "label '\(fields.last!)' is not a non-negative integer")
            }
            labels.append(label)
        }
        guard let width else { throw DataError(file: path, line: nil, problem: "no rows") }
        return LabelledData(features: features, labels: labels, featureCount: width - 1)
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
