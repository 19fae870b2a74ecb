#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A contiguous, 64-byte aligned buffer of Float32 owned by one or more tensors (views share it).
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised storage of `count` floats; every kernel that allocates one writes all of it.
    public init(count: Int) {
        self.count = count
        pointer = BufferPool.shared.take(bytes: max(count, 1) * MemoryLayout<Float>.stride)
            .bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(repeating value: Float, count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: value, count: count)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { if let base = $0.baseAddress { pointer.update(from: base, count: values.count) } }
    }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(pointer), bytes: max(count, 1) * MemoryLayout<Float>.stride) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// Keeps freed large buffers for reuse by size. A training step allocates the same shapes every time; fresh
/// large allocations come from mmap and pay a page fault per 4 KiB on first touch, which makes memory-bound
/// kernels several times slower. Small buffers go straight to malloc, which is fast for them.
final class BufferPool: Sendable {
    static let shared = BufferPool(limit: defaultLimit)

    /// An eighth of physical memory, at least 1 GiB and at most 8 GiB; `GRAFT_BUFFER_POOL_MB` sets it. A step
    /// whose activations outgrow the pool frees the excess and page-faults it back in on the next step
    /// (EfficientNet-Lite0 at 224 px, batch 16, holds 1.9 GB: with a 1 GiB pool, 29 % of its step went to the
    /// kernel zeroing fresh pages).
    static let defaultLimit: Int = {
        if let text = getenv("GRAFT_BUFFER_POOL_MB"), let mb = Int(String(cString: text)), mb >= 0 { return mb << 20 }
        #if canImport(Glibc)
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        return Swift.min(Swift.max(physical / 8, 1 << 30), 8 << 30)
        #else
        return 1 << 30
        #endif
    }()

    private static let minimumPooled = 1 << 16
    /// Free buffers by size, kept as addresses (plain integers cross the lock without sendability questions).
    private let state: Mutex<(free: [Int: [UInt]], bytes: Int)>
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
        state = Mutex(([:], 0))
    }

    func take(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= BufferPool.minimumPooled {
            let reused = state.withLock { s -> UInt? in
                guard let p = s.free[bytes]?.popLast() else { return nil }
                s.bytes -= bytes
                return p
            }
            if let reused, let p = UnsafeMutableRawPointer(bitPattern: reused) { return p }
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("Storage: cannot allocate \(bytes) bytes") }
        return raw
    }

    func give(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= BufferPool.minimumPooled {
            let kept = state.withLock { s -> Bool in
                guard s.bytes + bytes <= limit else { return false }
                s.free[bytes, default: []].append(UInt(bitPattern: p))
                s.bytes += bytes
                return true
            }
            if kept { return }
        }
        free(p)
    }
}
