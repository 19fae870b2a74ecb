import GraftCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ranks that disagree on what they reduce or hold: which tensor, and which ranks.
public struct ReplicaMismatch: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Sums the gradients of the trainable parameters over ranks: packed in buckets of about `bucketBytes`, all-reduced,
/// copied back. The caller has already scaled each rank's loss by its share of the global rows, so the sum is the
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

    /// 1 MiB: measured with `graft bench data-parallel` on 2 ranks over shared memory, where MPI_Allreduce peaks between
    /// 256 KiB and 4 MiB messages; smaller buckets keep the copy of one bucket in cache while the next is reduced.
    public static let defaultBucketBytes = 1 << 20

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
        // One presence count per parameter rides in the last bucket, so a parameter unused on every rank keeps a nil
        // gradient (and the optimizer skips it) exactly as in a single process.
        let floatsPerBucket = max(1, bucketBytes / MemoryLayout<Float>.stride)
        var reduced = [Tensor?](repeating: nil, count: tensors.count)
        var start = 0
        var presence = tensors.map { $0.grad == nil ? Float(0) : 1 }
        while start < tensors.count {
            var end = start, size = 0
            while end < tensors.count && (end == start || size + tensors[end].count <= floatsPerBucket) {
                size += tensors[end].count
                end += 1
            }
            let last = end == tensors.count
            let total = size + (last ? presence.count : 0)
            if bucket.count < total { bucket = [Float](repeating: 0, count: total) }
            try bucket.withUnsafeMutableBufferPointer { buffer in
                var offset = 0
                for t in tensors[start..<end] {
                    if let g = t.grad {
                        require(g.count == t.count, "GradientReducer: gradient of \(g.shape) for a parameter of \(t.shape)")
                        (buffer.baseAddress! + offset).update(from: g.pointer, count: t.count)
                    } else {
                        (buffer.baseAddress! + offset).update(repeating: 0, count: t.count)
                    }
                    offset += t.count
                }
                if last { presence.withUnsafeBufferPointer { (buffer.baseAddress! + offset).update(from: $0.baseAddress!, count: $0.count) } }
                try communicator.allReduce(UnsafeMutableBufferPointer(rebasing: buffer[0..<total]), op: .sum)
                if last { presence.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: buffer.baseAddress! + offset, count: $0.count) } }
                offset = 0
                for i in start..<end {
                    // Copy out into a fresh tensor: two parameters' gradients may share one storage.
                    let storage = Storage(count: tensors[i].count)
                    storage.pointer.update(from: buffer.baseAddress! + offset, count: tensors[i].count)
                    reduced[i] = Tensor(shape: tensors[i].shape, storage: storage)
                    offset += tensors[i].count
                }
            }
            start = end
        }
        for (i, t) in tensors.enumerated() { t.grad = presence[i] > 0 ? reduced[i] : nil }
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
