#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An input file that cannot be read: missing, unreadable, or not a regular file. `problem` is the message without
/// the path, for readers that wrap it in their own error type.
public struct FileProblem: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// A FIFO, device, socket or directory where a file's contents were expected.
        case notRegular
        /// A system call failed: missing file, permissions, I/O.
        case io
    }

    public let kind: Kind
    public let path: String
    /// E.g. "not a regular file (a FIFO)", "cannot open: Permission denied".
    public let problem: String

    public init(_ kind: Kind, path: String, problem: String) {
        (self.kind, self.path, self.problem) = (kind, path, problem)
    }

    public var description: String { "\(path): \(problem)" }
}

/// What kind of file `mode` describes when it is not a regular one ("a FIFO", "a directory", …); nil for a regular
/// file.
public func nonRegularKind(_ mode: mode_t) -> String? {
    switch mode & S_IFMT {
    case S_IFREG: nil
    case S_IFIFO: "a FIFO"
    case S_IFDIR: "a directory"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    case S_IFSOCK: "a socket"
    default: "an unknown kind of file"
    }
}

/// Opens `path` (symbolic links followed) for reading if it is a regular file, and returns the descriptor, which the
/// caller closes, and the file's size.
///
/// The kind is checked with `stat` before opening, because opening a FIFO waits for a writer (forever, in a batch
/// job) and opening a device can act on it. The open is non-blocking, which changes nothing for a regular file,
/// and `fstat` checks again what was opened, so a FIFO swapped in between is refused without hanging.
public func openRegularFile(_ path: String) throws(FileProblem) -> (descriptor: Int32, size: Int) {
    var status = stat()
    guard stat(path, &status) == 0 else { throw FileProblem(.io, path: path, problem: "cannot open: \(errnoText())") }
    if let kind = nonRegularKind(status.st_mode) {
        throw FileProblem(.notRegular, path: path, problem: "not a regular file (\(kind))")
    }
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw FileProblem(.io, path: path, problem: "cannot open: \(errnoText())") }
    guard fstat(fd, &status) == 0 else {
        let problem = "cannot stat: \(errnoText())"
        close(fd)
        throw FileProblem(.io, path: path, problem: problem)
    }
    if let kind = nonRegularKind(status.st_mode) {
        close(fd)
        throw FileProblem(.notRegular, path: path, problem: "not a regular file (\(kind))")
    }
    return (fd, Int(status.st_size))
}

/// The bytes of the regular file at `path` (see `openRegularFile` for what is refused).
public func readRegularFile(_ path: String) throws(FileProblem) -> [UInt8] {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(size)
    // Files in /proc and /sys report size 0 and still have content, so read to the end rather than `size` bytes.
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count == 0 { return bytes }
        if count < 0 {
            if errno == EINTR { continue }
            throw FileProblem(.io, path: path, problem: "cannot read: \(errnoText())")
        }
        bytes += chunk[..<count]
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }
