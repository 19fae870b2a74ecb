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
                let message = errnoMessage()
                try? fm.removeItem(atPath: temporary)
                throw SafeTensorsError(.io, path: path, "cannot move the previous directory aside: \(message)")
            }
        }
        guard rename(temporary, path) == 0 else {
            let message = errnoMessage()
            if replacing { rename(old, path) }
            try? fm.removeItem(atPath: temporary)
            throw SafeTensorsError(.io, path: path, "cannot rename \(temporary) into place: \(message)")
        }
        try syncDirectory(parentDirectory(of: path), for: path)
        if replacing { try? fm.removeItem(atPath: old) }
    }

    /// Writes `contents` to `directory/name` and fsyncs it (the directory itself is synced by `write`).
    public static func writeFile(_ contents: String, named name: String, in directory: String) throws {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafeTensorsError(.io, path: path, "cannot create: \(errnoMessage())") }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        try bytes.withUnsafeBytes { try writeAll(fd, $0.baseAddress, $0.count, path: path) }
        guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "cannot fsync: \(errnoMessage())") }
    }
}
