import GraftCore

/// One tensor's entry in a safetensors header.
public struct SafeTensorsInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Bytes of the tensor within the data buffer (which starts right after the header): `data_offsets`.
    public let byteRange: Range<Int>

    /// The number of elements (1 for a scalar).
    public var count: Int { shape.product }
}

/// The parsed, validated header: tensors in file order and the free-form metadata.
struct SafeTensorsHeader {
    let tensors: [SafeTensorsInfo]
    let metadata: [String: String]

    /// Parses `json` and checks every entry against a data buffer of `dataCount` bytes the way the reference
    /// implementation does: each byte range matches its shape and dtype, and the ranges tile the buffer exactly,
    /// without overlaps, holes or trailing bytes.
    init(json: UnsafeRawBufferPointer, dataCount: Int, path: String) throws {
        do {
            guard String(validating: json, as: UTF8.self) != nil else {
                throw Problem(.invalidHeader, "the header is not valid UTF-8")
            }
            let document: JSONValue
            do {
                document = try JSONValue.parse(json)
            } catch {
                throw Problem(.invalidHeader, "the header is not valid JSON: \(error.message)")
            }
            let raw = try RawHeader(document)
            let tensors = try raw.entries.map { try Self.validate($0.name, $0.entry, dataCount: dataCount) }
                .sorted { ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name)
                    < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name) }
            try Self.checkTiling(tensors, dataCount: dataCount)
            self.tensors = tensors
            metadata = raw.metadata
        } catch let problem as Problem {
            throw SafeTensorsError(problem.kind, path: path, tensor: problem.tensor, problem.message)
        }
    }

    private static func validate(_ name: String, _ entry: RawEntry, dataCount: Int) throws -> SafeTensorsInfo {
        guard let dtype = SafeTensorsDType(rawValue: entry.dtype) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem(.unknownDType, tensor: name, "unknown dtype \"\(entry.dtype)\" (Graft reads \(known))")
        }
        if let negative = entry.shape.first(where: { $0 < 0 }) {
            throw Problem(.invalidShape, tensor: name, "shape \(entry.shape) has a negative dimension \(negative)")
        }
        // Elements first, then bytes, in the reference's order, so the same shapes overflow in both.
        var count = 1
        var overflow = false
        for d in entry.shape where !overflow { (count, overflow) = count.multipliedReportingOverflow(by: d) }
        let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: dtype.size)
        if overflow || bytesOverflow {
            throw Problem(.invalidShape, tensor: name, "shape \(entry.shape) of \(dtype.rawValue) overflows")
        }
        let begin = entry.offsets[0], end = entry.offsets[1]
        guard 0 <= begin, begin <= end, end <= dataCount else {
            throw Problem(.offsetsOutOfRange, tensor: name,
                          "data_offsets [\(begin), \(end)] are not a range within the \(dataCount)-byte data buffer")
        }
        guard end - begin == bytes else {
            throw Problem(.sizeMismatch, tensor: name, "data_offsets [\(begin), \(end)] span \(end - begin) bytes, "
                          + "but shape \(entry.shape) of \(dtype.rawValue) needs \(bytes)")
        }
        return SafeTensorsInfo(name: name, dtype: dtype, shape: entry.shape, byteRange: begin..<end)
    }

    /// `tensors` is sorted by range; each must start exactly where the previous one ended.
    private static func checkTiling(_ tensors: [SafeTensorsInfo], dataCount: Int) throws {
        var covered = 0
        var previous: SafeTensorsInfo?
        for t in tensors {
            let r = t.byteRange
            if let previous, r.lowerBound < covered {
                let p = previous.byteRange
                throw Problem(.overlap, tensor: t.name, "bytes \(r.lowerBound)..<\(r.upperBound) overlap tensor "
                              + "'\(previous.name)' (bytes \(p.lowerBound)..<\(p.upperBound))")
            }
            if r.lowerBound > covered {
                throw Problem(.gap, tensor: t.name, "starts at byte \(r.lowerBound) of the data buffer, leaving bytes "
                              + "\(covered)..<\(r.lowerBound) that belong to no tensor")
            }
            covered = r.upperBound
            previous = t
        }
        if covered != dataCount {
            throw Problem(.gap, "the data buffer holds \(dataCount) bytes but its tensors end at byte \(covered)")
        }
    }
}

/// A header problem before the file path is attached.
private struct Problem: Error {
    let kind: SafeTensorsError.Kind
    let tensor: String?
    let message: String

    init(_ kind: SafeTensorsError.Kind, tensor: String? = nil, _ message: String) {
        self.kind = kind
        self.tensor = tensor
        self.message = message
    }
}

/// The header's entries with their JSON types checked; values are checked by `SafeTensorsHeader.validate`.
private struct RawHeader {
    let entries: [(name: String, entry: RawEntry)]
    let metadata: [String: String]

    init(_ json: JSONValue) throws {
        guard case .object(let members) = json else { throw Problem(.invalidHeader, "the header is not a JSON object") }
        var entries: [(name: String, entry: RawEntry)] = []
        var metadata: [String: String] = [:]
        for (key, value) in members {
            if key == "__metadata__" {
                guard case .object(let pairs) = value else {
                    throw Problem(.invalidHeader, "__metadata__ is not an object of strings")
                }
                for (k, v) in pairs {
                    guard case .string(let text) = v else {
                        throw Problem(.invalidHeader, "__metadata__ value \"\(k)\" is not a string")
                    }
                    metadata[k] = text
                }
            } else {
                entries.append((key, try RawEntry(value, name: key)))
            }
        }
        self.entries = entries
        self.metadata = metadata
    }
}

private struct RawEntry {
    let dtype: String
    let shape: [Int]
    let offsets: [Int]

    init(_ json: JSONValue, name: String) throws {
        guard case .object(let members) = json else {
            throw Problem(.invalidEntry, tensor: name, "the entry is not a JSON object")
        }
        func field(_ key: String) throws -> JSONValue {
            guard let value = members.first(where: { $0.key == key })?.value else {
                throw Problem(.invalidEntry, tensor: name, "the entry has no \"\(key)\"")
            }
            return value
        }
        func integers(_ key: String, _ expected: String) throws -> [Int] {
            guard case .array(let elements) = try field(key) else {
                throw Problem(.invalidEntry, tensor: name, "\"\(key)\" is not \(expected)")
            }
            return try elements.map {
                guard let n = $0.integer else {
                    throw Problem(.invalidEntry, tensor: name, "\"\(key)\" is not \(expected)")
                }
                return n
            }
        }
        guard case .string(let dtype) = try field("dtype") else {
            throw Problem(.invalidEntry, tensor: name, "\"dtype\" is not a string")
        }
        self.dtype = dtype
        shape = try integers("shape", "a list of integers")
        offsets = try integers("data_offsets", "a pair of integers")
        if offsets.count != 2 {
            throw Problem(.invalidEntry, tensor: name, "\"data_offsets\" is not a pair of integers")
        }
    }
}
