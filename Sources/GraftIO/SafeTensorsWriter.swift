#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GraftCore

/// Writing safetensors files.
public enum SafeTensors {
    /// Writes `tensors` as little-endian F32 in the given order, atomically: a failure leaves `path` as it was.
    ///
    /// The file appears under `path` only once complete and fsynced (temporary name, fsync, rename, fsync of the
    /// directory), so a crash never leaves a half-written checkpoint where a good one stood.
    public static func write(_ tensors: [(String, Tensor)], to path: String, metadata: [String: String]? = nil) throws {
        let header = try headerBytes(tensors, metadata: metadata, path: path)
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(.io, path: path, "cannot create temporary file \(temporary): \(errnoMessage())")
        }
        do {
            var length = UInt64(header.count).littleEndian
            try writeAll(fd, &length, 8, path: path)
            try header.withUnsafeBytes { try writeAll(fd, $0.baseAddress, $0.count, path: path) }
            for (_, tensor) in tensors { try writeFloats(fd, tensor, path: path) }
            guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "cannot fsync: \(errnoMessage())") }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else {
            let message = errnoMessage()
            unlink(temporary)
            throw SafeTensorsError(.io, path: path, "cannot close \(temporary): \(message)")
        }
        guard rename(temporary, path) == 0 else {
            let message = errnoMessage()
            unlink(temporary)
            throw SafeTensorsError(.io, path: path, "cannot rename \(temporary) into place: \(message)")
        }
        try syncDirectory(parentDirectory(of: path), for: path)
    }

    /// The JSON header, padded with spaces so the data buffer starts 8-byte aligned as other writers do.
    private static func headerBytes(_ tensors: [(String, Tensor)], metadata: [String: String]?, path: String) throws -> [UInt8] {
        var seen = Set<String>()
        for (name, _) in tensors {
            if name == "__metadata__" {
                throw SafeTensorsError(.invalidName, path: path, tensor: name, "the name is reserved for metadata")
            }
            if !seen.insert(name).inserted {
                throw SafeTensorsError(.invalidName, path: path, tensor: name, "the name is given twice")
            }
        }
        var fields: [String] = []
        if let metadata {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for (name, tensor) in tensors {
            let end = offset + tensor.count * MemoryLayout<Float>.size
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        bytes += repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        return bytes
    }

    /// A JSON string literal; names are arbitrary text, so quotes, backslashes and control characters are escaped.
    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Copies through a little-endian staging buffer so the file is the same on any host.
    private static func writeFloats(_ fd: Int32, _ tensor: Tensor, path: String) throws {
        let chunk = 1 << 16
        var staging = [UInt32](repeating: 0, count: min(chunk, tensor.count))
        var start = 0
        while start < tensor.count {
            let n = min(chunk, tensor.count - start)
            let source = tensor.pointer + start
            for i in 0..<n { staging[i] = source[i].bitPattern.littleEndian }
            try staging.withUnsafeBytes { try writeAll(fd, $0.baseAddress, n * 4, path: path) }
            start += n
        }
    }
}

/// Writes all `count` bytes to `fd`, retrying short writes and EINTR; errors name `path`.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int, path: String) throws {
    guard var p = bytes else { return }
    var left = count
    while left > 0 {
        let n = write(fd, p, left)
        if n < 0 {
            if errno == EINTR { continue }
            throw SafeTensorsError(.io, path: path, "cannot write: \(errnoMessage())")
        }
        p += n
        left -= n
    }
}

/// Fsyncs `directory`: a rename or a new file in it is durable only once the directory entry is on disk.
func syncDirectory(_ directory: String, for path: String) throws {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw SafeTensorsError(.io, path: path, "cannot open directory \(directory) to fsync it: \(errnoMessage())") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "cannot fsync directory \(directory): \(errnoMessage())") }
}

/// The directory holding `path`.
func parentDirectory(of path: String) -> String {
    path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
}
