import CBLAS
import Dispatch

/// The number of worker threads Graft's own kernels split large loops over: `GRAFT_NUM_THREADS` if set
/// (launch scripts set it to 1 when ranks share cores), else every core.
public let kernelThreads: Int = {
    if let text = getenv("GRAFT_NUM_THREADS"), let n = Int(String(cString: text)), n > 0 { return n }
    return max(1, System.activeProcessorCount)
}()

enum System {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }
}

/// Splits `0..<count` into contiguous chunks of at least `grain` items and runs them on the worker threads.
/// Small loops run inline: a dispatch costs a few microseconds.
@inline(__always)
public func parallelChunks(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(kernelThreads, count / max(grain, 1))
    if chunks <= 1 { body(0..<count); return }
    let per = (count + chunks - 1) / chunks
    withoutActuallyEscaping(body) { body in
        // The chunks are disjoint and the call returns only when all are done, so sharing `body` is safe.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per
            shared.value(lo..<min(count, lo + per))
        }
    }
}

/// `parallelChunks`, or the whole range on this thread (for loops already inside a thread's share of the work).
@inline(__always)
func chunks(_ count: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelChunks(count, grain: grain, body) } else { body(0..<count) }
}

/// Runs body(first, count, parallel) over a batch of images: with several worker threads each takes one contiguous
/// share through every step of a kernel, OpenBLAS held to one thread and `parallel` false; with one thread, the
/// whole batch with `parallel` true. For kernels made of many small GEMMs and copies, which split badly one by one.
func shareImages(_ batch: Int, _ body: (Int, Int, Bool) -> Void) {
    let groups = min(kernelThreads, batch)
    guard groups > 1 else { return body(0, batch, true) }
    let per = (batch + groups - 1) / groups
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        withSingleThreadedBLAS {
            DispatchQueue.concurrentPerform(iterations: groups) { g in
                let first = g * per
                if first < batch { shared.value(first, min(per, batch - first), false) }
            }
        }
    }
}

/// Runs `body` with OpenBLAS held to one thread: for loops that give each worker thread GEMMs of its own.
func withSingleThreadedBLAS<T>(_ body: () -> T) -> T {
    let saved = openblas_get_num_threads()
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(saved) }
    return body()
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

#if canImport(Glibc)
import Glibc
#endif
