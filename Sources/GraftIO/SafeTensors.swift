#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GraftCore

/// A safetensors file, memory-mapped read-only, with its header parsed and validated when it is opened.
///
/// Tensors are converted to Float32 when asked for, so opening a large checkpoint costs only the header.
/// The mapping lives as long as this object; another process truncating the file meanwhile makes reads fault.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The path the file was opened from, as given.
    public let path: String
    /// Size of the whole file in bytes.
    public let fileSize: Int
    /// Free-form string pairs from the header's `__metadata__` (empty if it has none).
    public let metadata: [String: String]
    /// Every tensor's entry, in file order (by byte offset, then name).
    public let infos: [SafeTensorsInfo]

    private let index: [String: Int]
    private let mapping: UnsafeRawPointer
    /// Offset of the data buffer in the file: 8 + the header length.
    private let dataStart: Int

    /// Opens and validates `path`; headers longer than `maxHeaderBytes` are refused, as the reference
    /// implementation does, so a hostile length field cannot make the reader allocate without bound. A FIFO, device
    /// or socket is refused before it is opened (`openRegularFile`): mapping one would wait for a writer or fail.
    public init(path: String, maxHeaderBytes: Int = 100_000_000) throws {
        self.path = path
        let fd: Int32
        do { (fd, fileSize) = try openRegularFile(path) } catch {
            throw SafeTensorsError(error.kind == .notRegular ? .notRegularFile : .io, path: path, error.problem)
        }
        defer { close(fd) }
        guard fileSize >= 8 else {
            throw SafeTensorsError(.truncated, path: path,
                                   "the file has \(fileSize) bytes, fewer than the 8 of the header length")
        }
        guard let mapped = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SafeTensorsError(.io, path: path, "cannot mmap \(fileSize) bytes: \(errnoMessage())")
        }
        mapping = UnsafeRawPointer(mapped)

        let headerLength = UInt64(littleEndian: mapping.loadUnaligned(as: UInt64.self))
        do {
            guard headerLength <= UInt64(clamping: maxHeaderBytes) else {
                throw SafeTensorsError(.headerTooLarge, path: path,
                                       "header length \(headerLength) exceeds the limit of \(maxHeaderBytes) bytes")
            }
            guard headerLength <= UInt64(fileSize - 8) else {
                throw SafeTensorsError(.headerBeyondFile, path: path, "header length \(headerLength) runs past the "
                                       + "end of the file (\(fileSize) bytes, \(fileSize - 8) after the length)")
            }
            dataStart = 8 + Int(headerLength)
            let header = try SafeTensorsHeader(json: UnsafeRawBufferPointer(start: mapping + 8, count: Int(headerLength)),
                                               dataCount: fileSize - dataStart, path: path)
            infos = header.tensors
            metadata = header.metadata
        } catch {
            munmap(mapped, fileSize)
            throw error
        }
        index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize) }

    /// Tensor names in file order (by byte offset, then name).
    public var names: [String] { infos.map(\.name) }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The header entry of `name`.
    public func info(_ name: String) throws -> SafeTensorsInfo {
        guard let i = index[name] else {
            throw SafeTensorsError(.tensorNotFound, path: path, tensor: name, "no such tensor in the file")
        }
        return infos[i]
    }

    /// The tensor `name`, converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        load(try info(name))
    }

    /// Every tensor, converted to Float32, in file order.
    public func tensors() throws -> [(String, Tensor)] {
        infos.map { ($0.name, load($0)) }
    }

    /// The integer (or BOOL) tensor `name` with its exact values, which Float32 would round beyond 2^24 (token ids,
    /// position ids, counters); a floating-point tensor, or a U64 value beyond Int64, is an error naming it.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        let info = try info(name)
        let source = mapping + dataStart + info.byteRange.lowerBound
        func read<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
            (0..<info.count).map { Int64(truncatingIfNeeded: T(littleEndian: source.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        let values: [Int64]
        switch info.dtype {
        case .bool: values = read(UInt8.self).map { $0 != 0 ? 1 : 0 }
        case .u8: values = read(UInt8.self)
        case .i8: values = read(Int8.self)
        case .i16: values = read(Int16.self)
        case .u16: values = read(UInt16.self)
        case .i32: values = read(Int32.self)
        case .u32: values = read(UInt32.self)
        case .i64: values = read(Int64.self)
        case .u64:
            values = read(Int64.self)
            if values.contains(where: { $0 < 0 }) {
                throw SafeTensorsError(.wrongType, path: path, tensor: name, "holds a U64 value beyond Int64.max")
            }
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64:
            throw SafeTensorsError(.wrongType, path: path, tensor: name, "is \(info.dtype.rawValue), not an integer tensor")
        }
        return (info.shape, values)
    }

    private func load(_ info: SafeTensorsInfo) -> Tensor {
        let storage = Storage(count: info.count)
        info.dtype.convert(mapping + dataStart + info.byteRange.lowerBound, count: info.count, into: storage.pointer)
        return Tensor(shape: info.shape, storage: storage)
    }
}

func errnoMessage() -> String { String(cString: strerror(errno)) }
