import CMPI
import GraftCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An elementwise reduction across ranks.
public enum ReduceOp: Sendable, CaseIterable {
    case sum, max, min
}

/// The element types that travel between ranks.
public enum ScalarKind: Sendable {
    case float32, float64, int64, uint8
}

/// A Swift type with a fixed wire representation in collectives.
public protocol CommunicatorScalar: BitwiseCopyable, Sendable {
    /// The wire type of this Swift type.
    static var scalarKind: ScalarKind { get }
}

extension Float: CommunicatorScalar { public static var scalarKind: ScalarKind { .float32 } }
extension Double: CommunicatorScalar { public static var scalarKind: ScalarKind { .float64 } }
extension Int64: CommunicatorScalar { public static var scalarKind: ScalarKind { .int64 } }
extension UInt8: CommunicatorScalar { public static var scalarKind: ScalarKind { .uint8 } }

/// A failed collective: which call, on which rank, and why.
public struct CommunicatorError: Error, Sendable, CustomStringConvertible {
    /// The failing call: an MPI function such as `MPI_Bcast`, or the Swift method for checks Graft makes itself.
    public let call: String
    /// The rank that saw the failure; nil when it happened before the rank was known.
    public let rank: Int?
    /// The MPI return code; nil for errors Graft detects itself.
    public let code: Int32?
    /// The cause, from `MPI_Error_string` for MPI failures.
    public let reason: String

    public init(call: String, rank: Int?, code: Int32? = nil, reason: String) {
        self.call = call
        self.rank = rank
        self.code = code
        self.reason = reason
    }

    public var description: String {
        let whereFailed = rank.map { "on rank \($0)" } ?? "before the rank was known"
        return "\(call) failed \(whereFailed): \(reason)" + (code.map { " (MPI error code \($0))" } ?? "")
    }
}

/// The collectives Graft's data parallelism needs. Every rank must issue the same collectives in the same order;
/// failures throw `CommunicatorError`.
public protocol Communicator: Sendable {
    /// This process's index, in `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// Returns once every rank has entered the barrier.
    func barrier() throws
    /// Replaces `buffer` on every rank by its elementwise reduction over all ranks.
    func allReduce<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws
    /// Overwrites `buffer` on every rank with its contents on `root`; the count must match on every rank.
    func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws
    /// Every rank's `value`, indexed by rank.
    func allGather<T: CommunicatorScalar>(_ value: T) throws -> [T]
    /// Ends every rank of the job with `code`, for a failure after which a collective would wait forever.
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// True on rank 0, which writes checkpoints and logs and decides for everyone.
    public var isRoot: Bool { rank == 0 }

    /// Reduces `values` in place across ranks.
    public func allReduce<T: CommunicatorScalar>(_ values: inout [T], op: ReduceOp = .sum) throws {
        try values.withUnsafeMutableBufferPointer { try allReduce($0, op: op) }
    }

    /// The reduction of one value over all ranks.
    public func allReduce<T: CommunicatorScalar>(_ value: T, op: ReduceOp = .sum) throws -> T {
        var values = [value]
        try allReduce(&values, op: op)
        return values[0]
    }

    /// Overwrites `values` with `root`'s; the count must match on every rank.
    public func broadcast<T: CommunicatorScalar>(_ values: inout [T], root: Int = 0) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// `root`'s value, on every rank.
    public func broadcast<T: CommunicatorScalar>(_ value: T, root: Int = 0) throws -> T {
        var values = [value]
        try broadcast(&values, root: root)
        return values[0]
    }

    /// `root`'s bytes, of a length only `root` needs to know (for rank 0's decisions, e.g. encoded JSON).
    public func broadcast(bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        let count = try broadcast(Int64(bytes.count), root: root)
        var received = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        try broadcast(&received, root: root)
        return received
    }

    /// Overwrites `tensor`'s storage with `root`'s, for parameters (which own their storage) at the start of training.
    public func broadcast(_ tensor: Tensor, root: Int = 0) throws {
        try broadcast(UnsafeMutableBufferPointer(start: tensor.pointer, count: tensor.count), root: root)
    }

    /// A new tensor holding the elementwise reduction of `tensor` over ranks. The input is left alone because
    /// gradients may share storage with each other.
    public func allReduce(_ tensor: Tensor, op: ReduceOp = .sum) throws -> Tensor {
        let storage = Storage(count: tensor.count)
        storage.pointer.update(from: tensor.pointer, count: tensor.count)
        try allReduce(storage.buffer, op: op)
        return Tensor(shape: tensor.shape, storage: storage)
    }

    /// A new tensor holding the mean of `tensor` over ranks; exact only for equal shards (reduce sums and a global
    /// count otherwise).
    public func allReduceMean(_ tensor: Tensor) throws -> Tensor {
        let summed = try allReduce(tensor, op: .sum)
        let scale = 1 / Float(size)
        for i in 0..<summed.count { summed.pointer[i] *= scale }
        return summed
    }
}

/// A world of one process: reductions and broadcasts leave buffers as they are.
public struct LocalCommunicator: Communicator {
    public let rank = 0
    public let size = 1

    public init() {}

    public func barrier() throws {}

    public func allReduce<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {}

    public func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        guard root == 0 else {
            throw CommunicatorError(call: "broadcast", rank: 0, reason: "root \(root) is not a rank of a 1-rank world")
        }
    }

    public func allGather<T: CommunicatorScalar>(_ value: T) throws -> [T] { [value] }

    public func abort(code: Int32) -> Never { exit(code) }
}

/// Collectives over `MPI_COMM_WORLD`.
///
/// `@unchecked Sendable` because the MPI handle is an opaque pointer Swift cannot vouch for; sharing it is safe:
/// it never changes after startup, and MPI runs at `MPI_THREAD_MULTIPLE` (checked at startup), so any thread may call.
public struct MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The largest message of one MPI call; bigger buffers go in chunks of at most this many bytes.
    public let maxChunkBytes: Int
    private let comm: MPI_Comm

    /// 4 MiB: on shared memory, all-reduce bandwidth peaks for 256 KB–4 MB messages and drops threefold at 64 MB.
    public static let defaultMaxChunkBytes = 4 << 20

    private init(world: MPIRuntime.World, maxChunkBytes: Int) {
        rank = world.rank
        size = world.size
        comm = graft_mpi_comm_world()
        self.maxChunkBytes = maxChunkBytes
    }

    /// The world communicator; the first call in a process initialises MPI unless someone else already did.
    public static func world(maxChunkBytes: Int = defaultMaxChunkBytes) throws -> MPICommunicator {
        require(maxChunkBytes > 0, "MPICommunicator: maxChunkBytes must be positive, not \(maxChunkBytes)")
        let world = try MPIRuntime.startup.get()
        var finalised: Int32 = 0
        try MPIRuntime.check(MPI_Finalized(&finalised), "MPI_Finalized", rank: world.rank)
        // MPI aborts the job on any call after MPI_Finalize; an error here says why instead.
        guard finalised == 0 else {
            throw CommunicatorError(call: "MPICommunicator.world", rank: world.rank, reason: "MPI is already finalised")
        }
        return MPICommunicator(world: world, maxChunkBytes: maxChunkBytes)
    }

    /// Finalises MPI if Graft initialised it and it is still running; no collective may follow. Runs at exit anyway.
    public static func shutdown() throws {
        var initialised: Int32 = 0, finalised: Int32 = 0
        try MPIRuntime.check(MPI_Initialized(&initialised), "MPI_Initialized", rank: nil)
        try MPIRuntime.check(MPI_Finalized(&finalised), "MPI_Finalized", rank: nil)
        // Reading `startup` after MPI is up cannot initialise anything: at worst it records "not ours".
        guard initialised != 0, finalised == 0, case .success(let world) = MPIRuntime.startup,
              world.initialisedByGraft else { return }
        try MPIRuntime.check(MPI_Finalize(), "MPI_Finalize", rank: world.rank)
    }

    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    public func allReduce<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        let type = T.scalarKind.mpiType, mpiOp = op.mpiOp
        try forEachChunk(of: buffer) { start, count in
            try check(MPI_Allreduce(graft_mpi_in_place(), start, count, type, mpiOp, comm), "MPI_Allreduce")
        }
    }

    public func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        let type = T.scalarKind.mpiType
        // Int32(clamping:) keeps an absurd root an MPI_ERR_ROOT instead of a trap.
        try forEachChunk(of: buffer) { start, count in
            try check(MPI_Bcast(start, count, type, Int32(clamping: root), comm), "MPI_Bcast")
        }
    }

    public func allGather<T: CommunicatorScalar>(_ value: T) throws -> [T] {
        let type = T.scalarKind.mpiType
        var mine = value
        var all = [T](repeating: value, count: size)
        let code = withUnsafeBytes(of: &mine) { send in
            all.withUnsafeMutableBytes { receive in
                MPI_Allgather(send.baseAddress, 1, type, receive.baseAddress, 1, type, comm)
            }
        }
        try check(code, "MPI_Allgather")
        return all
    }

    public func abort(code: Int32) -> Never {
        _ = MPI_Abort(comm, code)
        // MPI_Abort does not return in OpenMPI; should it, the process still ends.
        exit(code)
    }

    /// Calls `body` on consecutive slices of at most `maxChunkBytes`, because MPI counts are Int32 and very large
    /// messages are slow. An empty buffer still makes one call, so its arguments (root, communicator) are checked.
    private func forEachChunk<T>(of buffer: UnsafeMutableBufferPointer<T>,
                                 _ body: (UnsafeMutableRawPointer?, Int32) throws -> Void) throws {
        let step = Swift.max(1, Swift.min(Int(Int32.max), maxChunkBytes / MemoryLayout<T>.stride))
        var offset = 0
        repeat {
            let count = Swift.min(step, buffer.count - offset)
            try body(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + offset) }, Int32(count))
            offset += count
        } while offset < buffer.count
    }

    private func check(_ code: Int32, _ call: String) throws {
        try MPIRuntime.check(code, call, rank: rank)
    }
}

/// Process-wide MPI state.
private enum MPIRuntime {
    struct World: Sendable {
        let rank: Int
        let size: Int
        let initialisedByGraft: Bool
    }

    /// Swift runs a static `let` initialiser exactly once, even when tests start communicators in parallel,
    /// which is what keeps `MPI_Init_thread` to one call per process.
    static let startup = Result { () throws(CommunicatorError) -> World in try start() }

    private static func start() throws(CommunicatorError) -> World {
        var initialised: Int32 = 0
        try check(MPI_Initialized(&initialised), "MPI_Initialized", rank: nil)
        var provided: Int32 = 0
        if initialised == 0 {
            try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided), "MPI_Init_thread", rank: nil)
            // A process that leaves without MPI_Finalize makes mpirun report the whole job as failed.
            atexit { MPIRuntime.finalizeAtExit() }
        } else {
            try check(MPI_Query_thread(&provided), "MPI_Query_thread", rank: nil)
        }
        let world = graft_mpi_comm_world()
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(world, &rank), "MPI_Comm_rank", rank: nil)
        try check(MPI_Comm_size(world, &size), "MPI_Comm_size", rank: Int(rank))
        // The default handler aborts the job; returning codes lets every failure become an error with context.
        try check(MPI_Comm_set_errhandler(world, graft_mpi_errors_return()), "MPI_Comm_set_errhandler", rank: Int(rank))
        guard provided >= Int32(MPI_THREAD_MULTIPLE) else {
            throw CommunicatorError(call: "MPI_Init_thread", rank: Int(rank), reason:
                "MPI provides thread level \(provided), Graft needs MPI_THREAD_MULTIPLE (\(MPI_THREAD_MULTIPLE)) "
                + "because communicators are shared across threads")
        }
        return World(rank: Int(rank), size: Int(size), initialisedByGraft: initialised == 0)
    }

    private static func finalizeAtExit() {
        var finalised: Int32 = 0
        guard MPI_Finalized(&finalised) == MPI_SUCCESS, finalised == 0 else { return }
        let code = MPI_Finalize()
        if code != MPI_SUCCESS {
            let message = "graft: MPI_Finalize at exit failed: \(errorString(code))\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
        }
    }

    static func check(_ code: Int32, _ call: String, rank: Int?) throws(CommunicatorError) {
        guard code != MPI_SUCCESS else { return }
        throw CommunicatorError(call: call, rank: rank, code: code, reason: errorString(code))
    }

    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &text, &length) == MPI_SUCCESS else { return "unknown MPI error" }
        return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension ScalarKind {
    fileprivate var mpiType: MPI_Datatype {
        switch self {
        case .float32: graft_mpi_float()
        case .float64: graft_mpi_double()
        case .int64: graft_mpi_int64()
        case .uint8: graft_mpi_uint8()
        }
    }
}

extension ReduceOp {
    fileprivate var mpiOp: MPI_Op {
        switch self {
        case .sum: graft_mpi_sum()
        case .max: graft_mpi_max()
        case .min: graft_mpi_min()
        }
    }
}
