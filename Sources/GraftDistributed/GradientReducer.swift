import GraftCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ranks that disagree on what they reduce or hold: which tensor, and which ranks.
public struct ReplicaMismatch: CollectiveError, Sendable, CustomStringConvertible {
    public let description: String
}

/// Sums the gradients of the trainable parameters over ranks, in place: those smaller than `bucketBytes` packed into
/// buckets of about that size, larger ones one by one. The caller has already scaled each rank's loss by its share of the global rows, so the sum is the
/// global gradient.
///
/// The plan (ordered names, shapes and groups) is rebuilt whenever the trainable set changes, and before reducing
/// with a new plan the ranks compare it: a rank that trains other parameters stops every rank with the first
/// differing parameter named, instead of summing mismatched buffers or waiting forever.
public final class GradientReducer {
    public let communicator: any Communicator
    public let bucketBytes: Int
    private var plan: Plan?
    private var bucket: [Float] = []

    /// 256 KiB: with large gradients reduced in place, `graft bench data-parallel` on 2 ranks over shared memory found
    /// 256 KiB buckets 10–20% ahead of 1 MiB for both MiniLM's top layers and ResNet-18 (two runs), and 4–16 MiB
    /// clearly behind.
    public static let defaultBucketBytes = 256 << 10

    public init(communicator: any Communicator, bucketBytes: Int = defaultBucketBytes) {
        require(bucketBytes >= 4, "GradientReducer: bucket size must be at least one float, got \(bucketBytes) bytes")
        (self.communicator, self.bucketBytes) = (communicator, bucketBytes)
    }

    /// What is reduced: each parameter's name, group and shape, in order.
    struct Plan: Equatable {
        var names: [String]
        var groups: [String]
        var shapes: [[Int]]
        var identities: [ObjectIdentifier]

        var description: [String] { zip(zip(names, groups), shapes).map { "\($0.0) (group \($0.1), shape \($1))" } }
    }

    /// Replaces each trainable parameter's gradient by its sum over ranks. `parameters` is (group, name, tensor)
    /// in the same order on every rank; a nil gradient counts as zeros, and stays nil only if it is nil on every rank.
    public func reduce(_ parameters: [(group: String, name: String, tensor: Tensor)]) throws {
        let identities = parameters.map { ObjectIdentifier($0.tensor) }
        if plan?.identities != identities {
            let new = Plan(names: parameters.map(\.name), groups: parameters.map(\.group),
                           shapes: parameters.map(\.tensor.shape), identities: identities)
            try agree(on: new)
            plan = new
        }
        guard communicator.size > 1 else { return }
        let tensors = parameters.map(\.tensor)
        // Gradients are summed where they are. Two parameters can share one gradient storage (an op's backward may
        // hand the same tensor to both inputs), which would then be summed twice: such a gradient gets its own copy
        // first. A missing gradient takes part as zeros, so that every rank reduces the same layout.
        var presence = [Float](repeating: 0, count: tensors.count)
        var seen = Set<ObjectIdentifier>()
        let gradients = tensors.enumerated().map { i, t -> Tensor in
            guard let g = t.grad else { return Tensor.zeros(t.shape) }
            require(g.count == t.count, "GradientReducer: gradient of \(g.shape) for a parameter of \(t.shape)")
            presence[i] = 1
            if seen.insert(ObjectIdentifier(g.storage)).inserted { return g }
            let copy = Storage(count: g.count)
            copy.pointer.update(from: g.pointer, count: g.count)
            return Tensor(shape: g.shape, storage: copy)
        }
        // A gradient of at least a bucket is reduced in place; smaller ones are packed together, so that each MPI
        // call moves enough bytes to reach the link's bandwidth.
        let floatsPerBucket = max(1, bucketBytes / MemoryLayout<Float>.stride)
        var packed: [Tensor] = []
        var packedCount = 0
        func flush() throws {
            guard !packed.isEmpty else { return }
            if bucket.count < packedCount { bucket = [Float](repeating: 0, count: packedCount) }
            try bucket.withUnsafeMutableBufferPointer { buffer in
                var offset = 0
                for g in packed { (buffer.baseAddress! + offset).update(from: g.pointer, count: g.count); offset += g.count }
                try communicator.allReduce(UnsafeMutableBufferPointer(rebasing: buffer[0..<packedCount]), op: .sum)
                offset = 0
                for g in packed { g.pointer.update(from: buffer.baseAddress! + offset, count: g.count); offset += g.count }
            }
            (packed, packedCount) = ([], 0)
        }
        for g in gradients {
            if g.count >= floatsPerBucket {
                try communicator.allReduce(g.storage.buffer, op: .sum)
                continue
            }
            if packedCount + g.count > floatsPerBucket { try flush() }
            packed.append(g)
            packedCount += g.count
        }
        try flush()
        // A parameter without a gradient on every rank keeps none, and the optimizer skips it as one process would.
        try communicator.allReduce(&presence)
        for (i, t) in tensors.enumerated() { t.grad = presence[i] > 0 ? gradients[i] : nil }
    }

    /// Checks that every rank has the same plan; on a mismatch every rank throws the same description.
    private func agree(on plan: Plan) throws {
        try communicator.compare(plan.description, what: "trainable parameters",
                                 advice: "every rank must freeze and train the same parameters")
    }
}

/// FNV-1a over the items' bytes, each followed by a separator.
func fingerprint(_ items: [String]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for item in items {
        for byte in item.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3
    }
    return hash
}

extension Communicator {
    /// Compares `items` (an ordered description) across ranks: a hash first, and on a mismatch rank 0's list, so
    /// that every rank can name the first item where it differs. Every rank makes the same collectives.
    public func compare(_ items: [String], what: String, advice: String) throws {
        guard size > 1 else { return }
        let hashes = try allGather(Int64(bitPattern: fingerprint(items)))
        guard Set(hashes).count > 1 else { return }
        let rootItems = try broadcast(lines: items, root: 0)
        // Where each rank first differs from rank 0 (Int64.max: nowhere); the earliest such place is reported.
        let common = min(items.count, rootItems.count)
        let differs: Int? = (0..<common).first { items[$0] != rootItems[$0] } ?? (items.count == rootItems.count ? nil : common)
        let firsts = try allGather(differs.map { Int64($0) } ?? Int64.max)
        let index = Int(firsts.min()!)
        let ranks = firsts.indices.filter { firsts[$0] == Int64(index) }
        // The first differing rank tells everyone what it has, so every rank throws the same message.
        let mine: [String] = rank == ranks[0] && index < items.count ? [items[index]] : []
        let theirs = try broadcast(lines: mine, root: ranks[0])
        let rootItem = index < rootItems.count ? rootItems[index] : "nothing"
        let otherItem = theirs.first ?? "nothing"
        let others = ranks.count > 1 ? " (ranks \(ranks.map(String.init).joined(separator: ", ")) differ there)" : ""
        throw ReplicaMismatch(description: "ranks disagree on the \(what) at position \(index): rank 0 has \(rootItem), "
            + "rank \(ranks[0]) has \(otherItem)\(others); \(advice)")
    }

    /// `root`'s lines, on every rank.
    func broadcast(lines: [String], root: Int) throws -> [String] {
        let bytes = try broadcast(bytes: Array(lines.joined(separator: "\n").utf8), root: root)
        return bytes.isEmpty ? [] : String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Overwrites every tensor's storage with `root`'s, packed into one buffer (parameters at start-up, batch-norm
    /// running statistics before each evaluation and checkpoint).
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        guard size > 1 else { return }
        var packed = [Float](repeating: 0, count: tensors.reduce(0) { $0 + $1.count })
        var offset = 0
        if rank == root {
            for t in tensors { packed.withUnsafeMutableBufferPointer { ($0.baseAddress! + offset).update(from: t.pointer, count: t.count) }; offset += t.count }
        }
        try broadcast(&packed, root: root)
        offset = 0
        for t in tensors { packed.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress! + offset, count: t.count) }; offset += t.count }
    }

    /// Checks that every rank holds bit-identical `tensors`; a mismatch names the first tensor that differs and the
    /// ranks whose copy differs from rank 0's.
    public func checkReplicas(_ tensors: [(String, Tensor)]) throws {
        guard size > 1 else { return }
        let hashes = tensors.map { name, t in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for i in 0..<t.count { hash = (hash ^ UInt64(t.pointer[i].bitPattern)) &* 0x100_0000_01b3 }
            return "\(name) \(t.shape) \(hash)"
        }
        try compare(hashes, what: "replica contents", advice: "the replicas have diverged")
    }
}
