// Shared by every fuzz target (compiled into each binary; see launch/fuzz.sh).
#if canImport(Glibc)
import Glibc
#endif

/// Fails the run with a message: libFuzzer reports the abort as a crash and saves the input.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        fputs("FUZZ CHECK FAILED at \(file):\(line): \(message())\n", stderr)
        abort()
    }
}

/// A scratch folder private to this process, on tmpfs when there is one (a write per run costs microseconds).
let scratchFolder: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let path = "\(base)/graft-fuzz-\(getpid())"
    mkdir(path, 0o700)
    return path
}()

/// Writes `bytes` to `path`, replacing it.
func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    check(fd >= 0, "cannot create \(path)")
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        check(n > 0, "cannot write \(path)")
        done += n
    }
    close(fd)
}

/// The fuzzer's input as a buffer (empty inputs get a valid empty buffer).
func buffer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
}
