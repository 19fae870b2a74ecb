// Multi-rank checks of GraftDistributed, meant for `mpirun -np N` (launch/test-ranks.sh runs N = 2 and 3).
// Every rank runs every check; a check fails if it fails on any rank. Rank 0 prints one line per check and a
// `N passed, M failed` summary; every rank exits 1 if anything failed, 2 if the harness itself broke.
//
// Options: --chunk-bytes B (message size limit of the chunked-reduction check, default 1000004: not a divisor of the
// buffer, so the last chunk is short), --large-count N (floats in that check, default 5000000).
import GraftCore
import GraftDistributed
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var chunkBytes = 1_000_004
    var largeCount = 5_000_000

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            guard let text = rest.popFirst(), let value = Int(text), value > 0 else {
                fail("\(flag) needs a positive integer")
            }
            switch flag {
            case "--chunk-bytes": chunkBytes = value
            case "--large-count": largeCount = value
            default: fail("unknown option \(flag) (expected --chunk-bytes or --large-count)")
            }
        }
    }
}

/// A named check run on every rank: nil when it holds on this rank, otherwise what went wrong.
struct Check {
    let name: String
    let run: (MPICommunicator, Options) throws -> String?
}

/// Unbuffered, so rank 0's lines and other ranks' complaints interleave in the order they happen.
func emit(_ line: String, to fd: Int32 = 1) {
    let text = line + "\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    emit("graft-rank-tests: \(message)", to: 2)
    exit(2)
}

/// Where `actual` and `expected` first differ, or nil if they are equal.
func firstMismatch<T: Equatable>(_ actual: [T], _ expected: [T], _ what: String) -> String? {
    guard actual.count == expected.count else { return "\(what): \(actual.count) values, expected \(expected.count)" }
    guard let i = actual.indices.first(where: { actual[$0] != expected[$0] }) else { return nil }
    return "\(what)[\(i)] = \(actual[i]), expected \(expected[i])"
}

/// FNV-1a over the bit patterns: equal iff the values are bit-identical (up to a 2⁻⁶⁴ collision).
func checksum(_ values: [Float]) -> Int64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values { hash = (hash ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
    return Int64(bitPattern: hash)
}

/// The model of the gradient check: weight [2, 3], bias [2], drawn the same on every rank.
func linearParameters() -> (weight: [Float], bias: [Float]) {
    var rng = RandomGenerator(seed: 8)
    return ((0..<6).map { _ in rng.nextNormal() }, (0..<2).map { _ in rng.nextNormal() })
}

/// d(Σ‖x·Wᵀ + b − y‖² · scale)/d(W, b) over `rows` of the data, flattened as W then b, followed by the loss.
func squaredErrorGradient(x: [Float], y: [Float], rows: Range<Int>, scale: Float) -> [Float] {
    let (w, b) = linearParameters()
    let weight = Tensor(w, shape: [2, 3], requiresGrad: true), bias = Tensor(b, shape: [2], requiresGrad: true)
    let xs = Tensor(Array(x[rows.lowerBound * 3..<rows.upperBound * 3]), shape: [rows.count, 3])
    let ys = Tensor(Array(y[rows.lowerBound * 2..<rows.upperBound * 2]), shape: [rows.count, 2])
    let diff = Tensor.linear(xs, weight: weight, bias: bias) - ys
    let loss = (diff * diff).sum() * scale
    loss.backward()
    return weight.grad!.scalars + bias.grad!.scalars + [loss.item]
}

let checks: [Check] = [
    Check(name: "rank and size agree with mpirun") { comm, _ in
        let ranks = try comm.allGather(Int64(comm.rank))
        if let bad = firstMismatch(ranks, (0..<comm.size).map(Int64.init), "gathered ranks") { return bad }
        let launched = getenv("OMPI_COMM_WORLD_SIZE").flatMap { Int(String(cString: $0)) }
        return launched.map { $0 == comm.size ? nil : "size \(comm.size), mpirun started \($0)" } ?? nil
    },
    Check(name: "allReduce sum of rank-dependent values (Float, Double, Int64)") { comm, _ in
        let (r, n) = (comm.rank, comm.size)
        let triangle = n * (n + 1) / 2  // Σ (rank + 1)
        var floats = (0..<1000).map { Float(r + 1) * Float($0 % 7 + 1) }
        try comm.allReduce(&floats, op: .sum)
        var doubles = (0..<1000).map { Double(r + 1) * Double($0) * 0.25 }
        try comm.allReduce(&doubles, op: .sum)
        var ints = (0..<100).map { Int64(r + 1) << 40 + Int64($0) }
        try comm.allReduce(&ints, op: .sum)
        return firstMismatch(floats, (0..<1000).map { Float(triangle * ($0 % 7 + 1)) }, "float sum")
            ?? firstMismatch(doubles, (0..<1000).map { Double(triangle) * Double($0) * 0.25 }, "double sum")
            ?? firstMismatch(ints, (0..<100).map { Int64(triangle) << 40 + Int64(n * $0) }, "int64 sum")
    },
    Check(name: "allReduce max and min") { comm, _ in
        let (r, n) = (comm.rank, comm.size)
        // Over ranks, (rank + i) % n takes every value in 0..<n once.
        let values = (0..<500).map { Float((r + $0) % n) - Float($0) }
        var maxima = values, minima = values
        try comm.allReduce(&maxima, op: .max)
        try comm.allReduce(&minima, op: .min)
        var doubleMax = Double(r) * -3, doubleMin = Double(r) * -3
        doubleMax = try comm.allReduce(doubleMax, op: .max)
        doubleMin = try comm.allReduce(doubleMin, op: .min)
        return firstMismatch(maxima, (0..<500).map { Float(n - 1) - Float($0) }, "max")
            ?? firstMismatch(minima, (0..<500).map { -Float($0) }, "min")
            ?? firstMismatch([doubleMax, doubleMin], [0, Double(n - 1) * -3], "double max, min")
    },
    Check(name: "broadcast of random data from rank 0 is bit-identical") { comm, _ in
        func draw(seed: UInt64) -> [Float] {
            var rng = RandomGenerator(seed: seed)
            // Bit-identity, not equality: NaN payloads, −0 and subnormals must survive too.
            return (0..<10_007).map { _ in rng.nextNormal() } + [.nan, Float(bitPattern: 0x7fc0_1234), -0.0,
                                                                 .leastNonzeroMagnitude, -.infinity]
        }
        let sent = draw(seed: 42)
        let tensor = Tensor(comm.isRoot ? sent : draw(seed: 1000 + UInt64(comm.rank)), shape: [sent.count])
        try comm.broadcast(tensor, root: 0)
        return firstMismatch(tensor.scalars.map(\.bitPattern), sent.map(\.bitPattern), "received bits")
    },
    Check(name: "broadcast from the last rank (Double, variable-length bytes)") { comm, _ in
        let root = comm.size - 1
        var doubles = (0..<100).map { Double($0) * (comm.rank == root ? 1.5 : -7) }
        try comm.broadcast(&doubles, root: root)
        let decision = Array("stop: epoch 7, best checkpoint step-1400".utf8)
        let received = try comm.broadcast(bytes: comm.rank == root ? decision : [1, 2, 3], root: root)
        return firstMismatch(doubles, (0..<100).map { Double($0) * 1.5 }, "doubles")
            ?? firstMismatch(received, decision, "bytes")
    },
    Check(name: "large buffer reduces correctly in chunks") { _, options in
        let comm = try MPICommunicator.world(maxChunkBytes: options.chunkBytes)
        let n = options.largeCount
        let perChunk = options.chunkBytes / MemoryLayout<Float>.stride
        guard (n + perChunk - 1) / perChunk > 1 else { return "\(n) floats fit one \(options.chunkBytes)-byte chunk" }
        let factor = Float(comm.rank + 1)
        var values = [Float](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer[i] = factor * Float(i % 1000) }
            count = n
        }
        try comm.allReduce(&values, op: .sum)
        let triangle = Float(comm.size * (comm.size + 1) / 2)
        guard let i = (0..<n).first(where: { values[$0] != triangle * Float($0 % 1000) }) else { return nil }
        return "element \(i) (chunk \(i / perChunk)) = \(values[i]), expected \(triangle * Float(i % 1000))"
    },
    Check(name: "allGather of ranks (Int64, Double)") { comm, _ in
        let ints = try comm.allGather(Int64(comm.rank) * 10), doubles = try comm.allGather(Double(comm.rank) + 0.5)
        return firstMismatch(ints, (0..<comm.size).map { Int64($0) * 10 }, "Int64")
            ?? firstMismatch(doubles, (0..<comm.size).map { Double($0) + 0.5 }, "Double")
    },
    Check(name: "allReduceMean returns the mean and leaves the input alone") { comm, _ in
        let grad = Tensor((0..<6).map { Float(comm.rank) * Float($0) }, shape: [2, 3])
        let before = grad.scalars
        let mean = try comm.allReduceMean(grad)
        let expected = (0..<6).map { Float(comm.size - 1) / 2 * Float($0) }
        guard mean.shape == [2, 3] else { return "mean has shape \(mean.shape)" }
        return zip(mean.scalars, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }
            ? firstMismatch(grad.scalars, before, "input after the reduction")
            : "mean \(mean.scalars), expected \(expected)"
    },
    Check(name: "sharded gradients summed over ranks equal the full-batch gradient") { comm, _ in
        // Uneven shards (4·size + 1 rows) show that reducing sums and dividing by the global count is exact.
        let total = 4 * comm.size + 1
        var rng = RandomGenerator(seed: 7)
        // Offsets keep every gradient component far from zero, where a relative tolerance would mean nothing.
        let x = (0..<total * 3).map { _ in rng.nextNormal() + 1 }, y = (0..<total * 2).map { _ in rng.nextNormal() + 4 }
        let shard = (comm.rank * total / comm.size)..<((comm.rank + 1) * total / comm.size)
        var reduced = squaredErrorGradient(x: x, y: y, rows: shard, scale: 1)
        try comm.allReduce(&reduced, op: .sum)
        reduced = reduced.map { $0 / Float(total) }
        let full = squaredErrorGradient(x: x, y: y, rows: 0..<total, scale: 1 / Float(total))
        let names = ["weight[0,0]", "weight[0,1]", "weight[0,2]", "weight[1,0]", "weight[1,1]", "weight[1,2]",
                     "bias[0]", "bias[1]", "loss"]
        for (i, (got, want)) in zip(reduced, full).enumerated() where !(abs(got - want) <= 1e-5 * abs(want)) {
            return "\(names[i]): reduced \(got), full batch \(want)"
        }
        return nil
    },
    Check(name: "different random parameters agree bit-for-bit after broadcast") { comm, _ in
        func initialise(seed: UInt64) -> [Tensor] {
            var rng = RandomGenerator(seed: seed)
            return [[16, 8], [16], [4, 16], [4]].map { Tensor.randomNormal($0, using: &rng) }
        }
        let parameters = initialise(seed: 100 + UInt64(comm.rank))
        let before = try comm.allGather(checksum(parameters.flatMap(\.scalars)))
        if comm.size > 1, Set(before).count == 1 { return "ranks started from identical parameters" }
        for p in parameters { try comm.broadcast(p, root: 0) }
        let after = try comm.allGather(checksum(parameters.flatMap(\.scalars)))
        if Set(after).count != 1 { return "checksums differ after broadcast: \(after)" }
        return firstMismatch(parameters.flatMap(\.scalars).map(\.bitPattern),
                             initialise(seed: 100).flatMap(\.scalars).map(\.bitPattern), "parameter bits")
    },
    Check(name: "gradient reducer sums trainable gradients in small buckets; nil on every rank stays nil") { comm, _ in
        // Three parameters over buckets of 16 bytes (so each is its own bucket, one split mid-way): a gets rank+1 on
        // every rank, b a gradient on rank 0 only, c none anywhere.
        let a = Tensor.zeros([7], requiresGrad: true), b = Tensor.zeros([2, 3], requiresGrad: true)
        let c = Tensor.zeros([1], requiresGrad: true)
        a.grad = Tensor([Float](repeating: Float(comm.rank + 1), count: 7), shape: [7])
        if comm.isRoot { b.grad = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]) }
        let reducer = GradientReducer(communicator: comm, bucketBytes: 16)
        try reducer.reduce([("g", "a", a), ("g", "b", b), ("h", "c", c)])
        let n = Float(comm.size)
        if let problem = firstMismatch(a.grad?.scalars ?? [], [Float](repeating: n * (n + 1) / 2, count: 7), "a.grad") { return problem }
        if let problem = firstMismatch(b.grad?.scalars ?? [], [1, 2, 3, 4, 5, 6], "b.grad") { return problem }
        return c.grad == nil ? nil : "c.grad is \(c.grad!.scalars), expected nil"
    },
    Check(name: "gradient reducer: two parameters sharing one gradient storage each get the sum once") { comm, _ in
        let a = Tensor.zeros([5], requiresGrad: true), b = Tensor.zeros([5], requiresGrad: true)
        let shared = Tensor([Float](repeating: Float(comm.rank + 1), count: 5), shape: [5])
        for bytes in [8, 1 << 20] {  // in place one by one, and packed in one bucket
            let fresh = shared + 0
            (a.grad, b.grad) = (fresh, fresh)
            try GradientReducer(communicator: comm, bucketBytes: bytes).reduce([("g", "a", a), ("g", "b", b)])
            let n = Float(comm.size), sum = [Float](repeating: n * (n + 1) / 2, count: 5)
            if let problem = firstMismatch(a.grad?.scalars ?? [], sum, "a.grad (\(bytes)-byte buckets)")
                ?? firstMismatch(b.grad?.scalars ?? [], sum, "b.grad (\(bytes)-byte buckets)") { return problem }
        }
        return nil
    },
    Check(name: "a rank training other parameters: every rank throws, naming the first differing one and the ranks") { comm, _ in
        let w = Tensor.zeros([2], requiresGrad: true), v = Tensor.zeros([3], requiresGrad: true)
        let mine: [(group: String, name: String, tensor: Tensor)] = comm.rank == comm.size - 1 ? [("g", "w", w)] : [("g", "w", w), ("g", "v", v)]
        do {
            try GradientReducer(communicator: comm).reduce(mine)
            return "no error"
        } catch let error as ReplicaMismatch {
            let expected = "ranks disagree on the trainable parameters at position 1: rank 0 has v (group g, shape [3]), "
                + "rank \(comm.size - 1) has nothing; every rank must freeze and train the same parameters"
            return "\(error)" == expected ? nil : "message: \(error)"
        }
    },
    Check(name: "replica check names the first tensor that differs") { comm, _ in
        let same = Tensor([1, 2, 3], shape: [3]), differs = Tensor([comm.rank == 1 ? 5 : 4], shape: [1])
        try comm.checkReplicas([("same", same)])
        do {
            try comm.checkReplicas([("same", same), ("bn.running_mean", differs)])
            return "no error"
        } catch let error as ReplicaMismatch {
            return "\(error)".contains("replica contents at position 1: rank 0 has bn.running_mean [1]")
                && "\(error)".contains("rank 1 has bn.running_mean [1]") ? nil : "message: \(error)"
        }
    },
    Check(name: "invalid root throws on every rank, naming MPI_Bcast and the rank") { comm, _ in
        var values: [Float] = [1, 2, 3]
        do {
            try comm.broadcast(&values, root: comm.size)
            return "broadcast from root \(comm.size) succeeded"
        } catch let error as CommunicatorError {
            guard error.call == "MPI_Bcast", error.rank == comm.rank, error.code != nil,
                  "\(error)".contains("MPI_Bcast"), "\(error)".contains("rank \(comm.rank)") else {
                return "unexpected error: \(error)"
            }
        }
        // The communicator must still work after a returned error.
        try comm.barrier()
        return try comm.allReduce(Int64(1), op: .sum) == Int64(comm.size) ? nil : "allReduce after the error is wrong"
    },
]

func runChecks(_ checks: [Check], _ options: Options) -> Int32 {
    let comm: MPICommunicator
    do { comm = try MPICommunicator.world() } catch { fail("cannot start MPI: \(error)") }
    var failed = 0
    let clock = ContinuousClock()
    for check in checks {
        var problem: String?
        let elapsed = clock.measure {
            do { problem = try check.run(comm, options) } catch { problem = "threw \(error)" }
        }
        if let problem, !comm.isRoot { emit("rank \(comm.rank): \(check.name): \(problem)", to: 2) }
        let failingRanks: Int64, slowest: Double
        do {
            failingRanks = try comm.allReduce(problem == nil ? 0 : 1, op: .sum)
            let seconds = elapsed.components
            slowest = try comm.allReduce(Double(seconds.seconds) + Double(seconds.attoseconds) * 1e-18, op: .max)
        } catch { fail("rank \(comm.rank): combining results of \(check.name): \(error)") }
        if failingRanks > 0 { failed += 1 }
        guard comm.isRoot else { continue }
        let time = "\(Int((slowest * 1000).rounded())) ms"
        if failingRanks == 0 {
            emit("PASS  \(check.name)  (\(time))")
        } else {
            let detail = problem.map { "; rank 0: \($0)" } ?? ""
            emit("FAIL  \(check.name)  (failed on \(failingRanks) of \(comm.size) ranks\(detail))")
        }
    }
    if comm.isRoot { emit("\(checks.count - failed) passed, \(failed) failed") }
    do { try MPICommunicator.shutdown() } catch { fail("rank \(comm.rank): \(error)") }
    return failed == 0 ? 0 : 1
}

exit(runChecks(checks, Options(CommandLine.arguments)))
