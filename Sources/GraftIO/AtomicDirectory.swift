#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSystem
import Foundation

/// A directory written as a whole: `fill` writes into a fresh temporary directory beside `path`, which replaces
/// `path` only once every file in it is complete and on disk. A failure leaves an existing `path` untouched.
///
/// The replacement is one atomic exchange of the two directories, so `path` holds the old or the new contents at
/// every instant, never neither; the old ones are then deleted. Where the file system cannot exchange, two renames
/// (old aside, new in) leave a window in which `path` is missing but the old contents are whole under
/// `path.old-PID`. A killed writer's `.tmp-PID` or `.old-PID` is removed by `removeLeftovers`.
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
        let replacing = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if replacing && !isDirectory.boolValue {
            try? fm.removeItem(atPath: temporary)
            throw SafeTensorsError(.io, path: path, "exists and is not a directory; not replaced")
        }
        if replacing && graft_exchange_paths(temporary, path) == 0 {
            // `temporary` now holds the previous contents.
            try syncDirectory(parentDirectory(of: path), for: path)
            try? fm.removeItem(atPath: temporary)
            return
        }
        let old = "\(path).old-\(getpid())"
        if replacing {
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

    /// Removes what killed writers left in `directory`: `NAME.tmp-PID` (never complete) and `NAME.old-PID` (a
    /// previous version; restored as `NAME` when the kill came between the two renames and `NAME` is missing).
    public static func removeLeftovers(in directory: String) throws {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        for name in names.sorted() {
            let path = "\(directory)/\(name)"
            if let range = name.range(of: ".old-", options: .backwards), Int(name[range.upperBound...]) != nil {
                let original = "\(directory)/\(name[..<range.lowerBound])"
                if !fm.fileExists(atPath: original) && rename(path, original) == 0 { continue }
                try? fm.removeItem(atPath: path)
            } else if let range = name.range(of: ".tmp-", options: .backwards), Int(name[range.upperBound...]) != nil {
                try? fm.removeItem(atPath: path)
            }
        }
    }

    /// Replaces `directory/name` with `contents` in one step: written to a temporary name, fsynced, renamed over it
    /// (a kill leaves the old file or the new one, never a truncated one). The directory itself is synced by the
    /// caller (`write`) or by `syncDirectory`.
    public static func writeFile(_ contents: String, named name: String, in directory: String) throws {
        let path = "\(directory)/\(name)"
        let temporary = "\(directory)/\(name).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafeTensorsError(.io, path: path, "cannot create: \(errnoMessage())") }
        do {
            defer { close(fd) }
            let bytes = Array(contents.utf8)
            try bytes.withUnsafeBytes { try writeAll(fd, $0.baseAddress, $0.count, path: path) }
            guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "cannot fsync: \(errnoMessage())") }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let message = errnoMessage()
            unlink(temporary)
            throw SafeTensorsError(.io, path: path, "cannot rename \(temporary) into place: \(message)")
        }
    }
}
