#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A directory written as a whole: `fill` writes into a fresh temporary directory beside `path`, which replaces
/// `path` only once every file in it is complete and on disk. A failure leaves an existing `path` untouched.
///
/// The swap is two renames (old away, new in); a crash between them leaves the previous contents complete under
/// `path.old-PID` and nothing half-written under `path`.
public enum AtomicDirectory {
    public static func write(_ path: String, fill: (_ temporary: String) throws -> Void) throws {
        let fm = FileManager.default
        let parent = (path as NSString).deletingLastPathComponent
        let temporary = "\(path).tmp-\(getpid())"
        do {
            try? fm.removeItem(atPath: temporary)
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        } catch {
            throw SafeTensorsError(.io, path: path, "cannot create directory \(temporary): \(error.localizedDescription)")
        }
        do {
            try fill(temporary)
            try syncDirectory(temporary, for: path)
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
        var isDirectory: ObjCBool = false
        let old = "\(path).old-\(getpid())"
        let replacing = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if replacing {
            guard isDirectory.boolValue else {
                try? fm.removeItem(atPath: temporary)
                throw SafeTensorsError(.io, path: path, "exists and is not a directory; not replaced")
            }
            guard rename(path, old) == 0 else {
                let message = String(cString: strerror(errno))
                try? fm.removeItem(atPath: temporary)
                throw SafeTensorsError(.io, path: path, "cannot move the previous directory aside: \(message)")
            }
        }
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            if replacing { rename(old, path) }
            try? fm.removeItem(atPath: temporary)
            throw SafeTensorsError(.io, path: path, "cannot rename \(temporary) into place: \(message)")
        }
        try syncDirectory(parent.isEmpty ? "." : parent, for: path)
        if replacing { try? fm.removeItem(atPath: old) }
    }

    /// Writes `contents` to `directory/name` and fsyncs it (the directory itself is synced by `write`).
    public static func writeFile(_ contents: String, named name: String, in directory: String) throws {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafeTensorsError(.io, path: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(.io, path: path, "cannot write: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "cannot fsync: \(String(cString: strerror(errno)))") }
    }

    private static func syncDirectory(_ directory: String, for path: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SafeTensorsError(.io, path: path, "cannot open \(directory) to fsync it: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw SafeTensorsError(.io, path: path, "cannot fsync \(directory): \(String(cString: strerror(errno)))")
        }
    }
}

/// Outside `AtomicDirectory`, whose own `write` would otherwise shadow the system call.
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }
