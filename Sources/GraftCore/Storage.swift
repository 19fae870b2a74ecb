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

    /// How many buffers so far came from the system rather than from the pool of freed ones. A training step that
    /// repeats its shapes takes every buffer from the pool its previous step filled, so this stays put.
    public static var freshAllocations: Int { BufferPool.shared.fresh.load(ordering: .relaxed) }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(pointer), bytes: max(count, 1) * MemoryLayout<Float>.stride) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// Keeps freed buffers for reuse by size. A training step allocates the same shapes every time; fresh large
/// allocations come from mmap and pay a page fault per 4 KiB on first touch, which makes memory-bound kernels
/// several times slower. Small ones are kept too, so that a steady-state step takes nothing from the system.
final class BufferPool: Sendable {
    static let shared = BufferPool(limit: defaultLimit)

    static let defaultLimit: Int = {
        #if canImport(Glibc)
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        let physical = 8 << 30
        #endif
        let environment = ["GRAFT_BUFFER_POOL_MB", "OMPI_COMM_WORLD_LOCAL_SIZE"].reduce(into: [String: String]()) {
            if let value = getenv($1) { $0[$1] = String(cString: value) }
        }
        return limit(environment: environment, physicalMemory: physical)
    }()

    /// The pool's size in bytes: `GRAFT_BUFFER_POOL_MB` when set, else an eighth of physical memory shared among
    /// the node's ranks (`OMPI_COMM_WORLD_LOCAL_SIZE`), at least 1 GiB and at most 8 GiB per process. A step whose
    /// activations outgrow the pool frees the excess and page-faults it back in on the next step (EfficientNet-Lite0
    /// at 224 px, batch 16, holds 1.9 GB: with a 1 GiB pool, 29 % of its step went to the kernel zeroing pages).
    static func limit(environment: [String: String], physicalMemory: Int) -> Int {
        if let text = environment["GRAFT_BUFFER_POOL_MB"], let mb = Int(text), mb >= 0 { return mb << 20 }
        let ranks = Swift.max(1, environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? 1)
        return Swift.min(Swift.max(physicalMemory / 8 / ranks, 1 << 30), 8 << 30)
    }

    /// Free buffers by size, kept as addresses (plain integers cross the lock without sendability questions), with
    /// when each size was last taken or given (a counter), so that a full pool drops the sizes longest unused.
    private let state: Mutex<(free: [Int: [UInt]], bytes: Int, lastUse: [Int: Int], clock: Int)>
    private let limit: Int
    /// Buffers taken from the system.
    let fresh = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
        state = Mutex(([:], 0, [:], 0))
    }

    func take(bytes: Int) -> UnsafeMutableRawPointer {
        let reused = state.withLock { s -> UInt? in
            s.clock += 1
            s.lastUse[bytes] = s.clock
            guard let p = s.free[bytes]?.popLast() else { return nil }
            s.bytes -= bytes
            return p
        }
        if let reused, let p = UnsafeMutableRawPointer(bitPattern: reused) { return p }
        fresh.wrappingAdd(1, ordering: .relaxed)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("Storage: cannot allocate \(bytes) bytes") }
        return raw
    }

    /// Keeps `p` for reuse. When that would pass the limit, free buffers of the sizes longest unused go first
    /// (the shapes of an earlier workload, say); a buffer larger than the whole limit is freed at once.
    func give(_ p: UnsafeMutableRawPointer, bytes: Int) {
        guard bytes <= limit else { free(p); return }
        let evicted = state.withLock { s -> [UInt] in
            s.clock += 1
            s.lastUse[bytes] = s.clock
            var evicted: [UInt] = []
            while s.bytes + bytes > limit {
                guard let stale = s.free.filter({ $0.key != bytes && !$0.value.isEmpty })
                    .min(by: { s.lastUse[$0.key, default: 0] < s.lastUse[$1.key, default: 0] })?.key else { break }
                evicted.append(s.free[stale]!.removeLast())
                if s.free[stale]!.isEmpty { s.free[stale] = nil }
                s.bytes -= stale
            }
            if s.bytes + bytes > limit { evicted.append(UInt(bitPattern: p)) } else {
                s.free[bytes, default: []].append(UInt(bitPattern: p))
                s.bytes += bytes
            }
            return evicted
        }
        for address in evicted { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }
}
