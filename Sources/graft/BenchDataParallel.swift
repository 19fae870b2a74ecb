import ArgumentParser
import CBLAS
import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftNN
import GraftOptim

/// Data-parallel scaling on this machine: training steps/s on 1 rank × 1 thread, 1 rank × 2 threads and 2 ranks ×
/// 1 thread; the share of a 2-rank step spent in `GradientReducer.reduce`; the reducer's all-reduce bandwidth over a
/// bucket-size sweep beside one raw MPI_Allreduce; and, with `--main-job`, the wall time of a real `graft train`.
///
/// The driver runs without mpirun and starts this executable as workers (`--worker`, under mpirun for 2 ranks), so
/// each configuration gets fresh processes with its own thread settings; rank 0 prints `RESULT key value` lines.
struct BenchDataParallel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-parallel", abstract: "Steps/s on 1 and 2 ranks, gradient all-reduce share and bandwidth.",
        discussion: """
            Run it without mpirun: it starts itself once per configuration (the 2-rank ones under mpirun, found on \
            PATH) with OPENBLAS_NUM_THREADS and GRAFT_NUM_THREADS set to the configuration's threads, and prints one \
            table. Workloads: MiniLM-L6 with its top 2 encoder layers and a mean-pooled linear head trainable, 64 \
            tokens, global batch 32; ResNet-18 (small-image stem, 32×32), full fine-tuning, global batch 64. Each rank \
            trains on its share of the global batch and the gradients are summed by GradientReducer, as graft train \
            does. --main-job also times graft train recipes/bbc-minilm.yaml on 1 rank × 2 threads and 2 ranks × 1 \
            thread (assets from GRAFT_ASSETS, default .cache/assets).
            """)

    /// What a worker process measures.
    enum Worker: String, ExpressibleByArgument {
        case minilm, resnet, allreduce
    }

    @Option(help: "Directory with MiniLM's model.safetensors and config.json.") var minilm: String =
        repositoryRoot.appendingPathComponent(".cache/assets/minilm").path
    @Option(parsing: .upToNextOption, help: "Gradient bucket sizes to sweep, in KiB.") var bucketKib: [Int] = [256, 1024, 4096, 16384]
    @Flag(help: "Also time graft train recipes/bbc-minilm.yaml on 1 rank × 2 threads and 2 ranks × 1 thread (minutes).")
    var mainJob = false
    @Option(help: "Seconds per measurement (at least 3 timed rounds).") var seconds: Double = 2
    @Option(help: .hidden) var worker: Worker?

    /// mpirun's binding for the 2-rank runs. Both were tried for 2 ranks × 1 thread on the 2-core AMD EPYC, on a quiet
    /// machine: `none` gave 1.27–1.43 steps/s (MiniLM) and 0.40–0.42 (ResNet-18), `core` 1.26–1.41 and 0.35–0.39.
    /// `none` is as fast or faster, and leaves the kernel free to move a rank off a core something else is using.
    static let binding = "none"

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        guard !bucketKib.isEmpty, bucketKib.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--bucket-kib needs positive sizes, got \(bucketKib)")
        }
    }

    func run() throws {
        if let worker { try runWorker(worker) } else { try drive() }
    }

    // MARK: Driver

    private func drive() throws {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown"
        let mpirun = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        print("CPU: \(cpu) (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
        print("ranks × threads: 1×1, 1×2, 2×1; threads = OPENBLAS_NUM_THREADS = GRAFT_NUM_THREADS of each rank; "
            + (mpirun.map { "2 ranks: \($0) --bind-to \(Self.binding)" } ?? "mpirun not on PATH: the 2-rank rows are skipped"))
        // Anything else running on the cores (a build, another benchmark) slows the multi-rank rows most.
        let load = { (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?" }
        print("load average (1 min) at start: \(load())")
        let launcher = Launcher(mpirun: mpirun)
        var rows: [[String]] = [["measure", "value", "unit", "reference", "ratio", "goal"]]

        var reduceShares: [(String, Double)] = []
        for (worker, title) in [(Worker.minilm, "MiniLM-L6 top-2 layers, 64 tok, b32"), (.resnet, "ResNet-18 32×32 b64 full")] {
            let arguments = workerArguments(worker)
            let single = launcher.figures(arguments, ranks: 1, threads: 1)["steps_per_s"]
            let threaded = launcher.figures(arguments, ranks: 1, threads: 2)["steps_per_s"]
            let parallel = mpirun == nil ? [:] : launcher.figures(arguments, ranks: 2, threads: 1)
            rows.append(["\(title): 1 rank × 1 thread", format(single), "steps/s", "", "", ""])
            rows.append(["\(title): 1 rank × 2 threads", format(threaded), "steps/s", reference("1×1", single),
                         ratio(threaded, single), ""])
            if let steps = parallel["steps_per_s"] {
                rows.append(["\(title): 2 ranks × 1 thread", format(steps), "steps/s", reference("1×1", single),
                             ratio(steps, single), goal(steps, single, atLeast: 1.8)])
                rows.append(["", "", "", reference("1×2", threaded), ratio(steps, threaded), ""])
            }
            if let share = parallel["reduce_share"] { reduceShares.append((title, share)) }
        }
        for (title, share) in reduceShares {
            let goal = title.hasPrefix("MiniLM") ? "≤ 5% (\(share <= 0.05 ? "met" : "missed"))" : ""
            rows.append(["\(title): reduce share, 2 ranks", String(format: "%.1f", share * 100), "% of step", "", "", goal])
        }

        var fastest: [String] = []
        if mpirun != nil {
            let bandwidth = launcher.figures(workerArguments(.allreduce), ranks: 2, threads: 1)
            for (key, title) in [("minilm", "MiniLM top-2 grads"), ("resnet", "ResNet-18 grads")] {
                guard let floats = bandwidth["\(key)_floats"], let raw = bandwidth["\(key)_raw_gbs"] else { continue }
                let size = String(format: "%.1f MB", floats * 4 / 1e6)
                rows.append(["\(title) (\(size)): raw MPI_Allreduce, 1 call", format(raw), "GB/s", "", "", ""])
                var sweep: [(kib: Int, gbs: Double)] = []
                for kib in bucketKib {
                    guard let gbs = bandwidth["\(key)_graft_gbs_\(kib)"] else { continue }
                    rows.append(["\(title): GradientReducer, \(kibName(kib)) buckets", format(gbs), "GB/s",
                                 reference("raw", raw), ratio(gbs, raw), goal(gbs, raw, atLeast: 0.9)])
                    // What MPI alone gives at the bucket's message size: the rest of the gap is packing and copying.
                    let chunked = bandwidth["\(key)_chunked_gbs_\(kib)"]
                    rows.append(["  raw MPI_Allreduce in \(kibName(kib)) calls", format(chunked), "GB/s",
                                 reference("raw", raw), ratio(chunked, raw), ""])
                    sweep.append((kib, gbs))
                }
                if let best = sweep.max(by: { $0.gbs < $1.gbs }) {
                    // Bucket sizes this close are a tie on a shared machine; the default should not chase noise.
                    let ties = sweep.filter { $0.kib != best.kib && $0.gbs >= 0.95 * best.gbs }.map { kibName($0.kib) }
                    fastest.append("\(title) \(kibName(best.kib))" + (ties.isEmpty ? "" : " (within 5%: \(ties.joined(separator: ", ")))"))
                }
            }
        }

        if mainJob {
            let single = launcher.trainSeconds(ranks: 1, threads: 2)
            rows.append(["graft train bbc-minilm: 1 rank × 2 threads", format(single, "%.1f"), "s wall", "", "", ""])
            if mpirun != nil {
                let parallel = launcher.trainSeconds(ranks: 2, threads: 1)
                rows.append(["graft train bbc-minilm: 2 ranks × 1 thread", format(parallel, "%.1f"), "s wall",
                             reference("1×2", single, "%.1f s"), ratio(single, parallel), ""])
            }
        }

        printTable(rows)
        print("ratios: speed of the row ÷ speed of the reference (wall-time ratio inverted: above 1 is faster).")
        if !fastest.isEmpty {
            print("fastest bucket: \(fastest.joined(separator: "; ")) (GradientReducer.defaultBucketBytes: "
                + "\(kibName(GradientReducer.defaultBucketBytes >> 10)); buckets above "
                + "\(kibName(MPICommunicator.defaultMaxChunkBytes >> 10)) reach MPI in calls of that size).")
        }
        print("load average (1 min) at end: \(load())")
    }

    private func workerArguments(_ worker: Worker) -> [String] {
        ["bench", "data-parallel", "--worker", worker.rawValue, "--minilm", minilm, "--seconds", "\(seconds)",
         "--bucket-kib"] + bucketKib.map(String.init)
    }

    // MARK: Workers

    private func runWorker(_ job: Worker) throws {
        // OpenBLAS reads OPENBLAS_NUM_THREADS itself; setting it again keeps the two thread pools in step.
        openblas_set_num_threads(Int32(kernelThreads))
        let communicator = try launchCommunicator()
        var results: [(String, Double)] = []
        switch job {
        case .minilm, .resnet:
            let workload = job == .minilm ? try minilmWorkload(communicator) : resnetWorkload(communicator)
            let parameters = workload.trainable
            let sgd = try SGD(groups: [ParameterGroup(name: "trainable", parameters: parameters.map { ($0.name, $0.tensor) },
                                                      options: GroupOptions(learningRate: 1e-4))])
            let reducer = GradientReducer(communicator: communicator)
            var reduceSeconds = 0.0, stepSeconds = 0.0
            let perStep = try agreedSecondsPerCall(communicator) {
                let start = Date()
                sgd.zeroGradients()
                workload.loss().backward()
                let reduceStart = Date()
                try reducer.reduce(parameters)
                reduceSeconds += Date().timeIntervalSince(reduceStart)
                sgd.step()
                stepSeconds += Date().timeIntervalSince(start)
            }
            // Includes waiting for the slower rank: that is time the step loses to reducing too.
            let share = try communicator.allReduce(reduceSeconds / stepSeconds) / Double(communicator.size)
            results = [("steps_per_s", 1 / perStep), ("reduce_share", share)]
        case .allreduce:
            guard communicator.size > 1 else { throw ValidationError("the all-reduce worker needs 2 or more ranks (mpirun)") }
            // One MPI call for the whole buffer: the reference is MPI's own bandwidth at that message size.
            let raw = try MPICommunicator.world(maxChunkBytes: Int(Int32.max))
            for (key, workload) in [("minilm", try minilmWorkload(communicator)), ("resnet", resnetWorkload(communicator))] {
                let parameters = workload.trainable
                for p in parameters { p.tensor.grad = Tensor.zeros(p.tensor.shape) }
                let floats = parameters.reduce(0) { $0 + $1.tensor.count }
                var buffer = [Float](repeating: 0, count: floats)
                let gbs = { (seconds: Double) in Double(floats * 4) / seconds / 1e9 }
                results.append(("\(key)_floats", Double(floats)))
                results.append(("\(key)_raw_gbs", gbs(try agreedSecondsPerCall(communicator) { try raw.allReduce(&buffer) })))
                for kib in bucketKib {
                    let reducer = GradientReducer(communicator: communicator, bucketBytes: kib << 10)
                    results.append(("\(key)_graft_gbs_\(kib)", gbs(try agreedSecondsPerCall(communicator) { try reducer.reduce(parameters) })))
                    let chunked = try MPICommunicator.world(maxChunkBytes: kib << 10)
                    results.append(("\(key)_chunked_gbs_\(kib)", gbs(try agreedSecondsPerCall(communicator) { try chunked.allReduce(&buffer) })))
                }
            }
        }
        guard communicator.isRoot else { return }
        for (key, value) in results { print("RESULT \(key) \(value)") }
        fflush(nil)
    }

    /// One rank's part of a training step: the parameters it trains, and the loss of its rows of the global batch,
    /// scaled by their share of it so that the gradients summed over ranks are those of the global mean.
    private struct Workload {
        let trainable: [(group: String, name: String, tensor: Tensor)]
        let loss: () -> Tensor

        init(_ model: Module, loss: @escaping () -> Tensor) {
            model.train()
            model.fixFrozenBatchNorm()
            trainable = model.namedParameters().filter { $0.1.requiresGrad }.map { (group: "trainable", name: $0.0, tensor: $0.1) }
            self.loss = loss
        }
    }

    /// MiniLM-L6 on real weights, everything frozen but the top 2 encoder layers and the head; every rank draws the
    /// same global batch (same seed) and keeps its share.
    private func minilmWorkload(_ communicator: any Communicator) throws -> Workload {
        var rng = RandomGenerator(seed: 1)
        let bert = BertModel(try BertConfig(file: "\(minilm)/config.json"), using: &rng)
        let weights = try SafeTensorsFile(path: "\(minilm)/model.safetensors")
        try bert.load(Dictionary(uniqueKeysWithValues: try weights.tensors()), strict: true, source: weights.path)
        let model = BertClassifier(bert, classes: 5, pooling: .mean, using: &rng)
        try model.setFrozen(true, matching: "*")
        for pattern in ["bert.encoder.layer.4.*", "bert.encoder.layer.5.*", "classifier.*"] {
            try model.setFrozen(false, matching: pattern)
        }
        let (global, tokens) = (32, 64)
        let ids = (0..<global * tokens).map { _ in 1000 + Int(rng.next() % 20000) }
        let labels = (0..<global).map { _ in Int(rng.next() % 5) }
        let rows = Batches.share(global, rank: communicator.rank, of: communicator.size)
        let local = Indices(Array(ids[rows.lowerBound * tokens..<rows.upperBound * tokens]), shape: [rows.count, tokens])
        let mask = Tensor.ones([rows.count, tokens]), targets = Array(labels[rows])
        let scale = Float(rows.count) / Float(global)
        return Workload(model) { Tensor.crossEntropy(model(local, mask: mask), targets: targets) * scale }
    }

    /// ResNet-18 with the small-image stem, every parameter trained.
    private func resnetWorkload(_ communicator: any Communicator) -> Workload {
        var rng = RandomGenerator(seed: 0)
        let model = ResNet(.resnet18, classes: 10, smallImageStem: true, using: &rng)
        let global = 64
        let images = Tensor.randomNormal([global, 3, 32, 32], using: &rng)
        let labels = (0..<global).map { _ in Int(rng.next() % 10) }
        let rows = Batches.share(global, rank: communicator.rank, of: communicator.size)
        let local = withNoGrad { images.indexSelect(axis: 0, Indices(Array(rows), shape: [rows.count])) }
        let targets = Array(labels[rows]), scale = Float(rows.count) / Float(global)
        return Workload(model) { Tensor.crossEntropy(model(local), targets: targets) * scale }
    }

    /// Median seconds per call of `body`, as `secondsPerCall`, but with rank 0's clock deciding how many calls and
    /// rounds every rank makes: ranks that each decided for themselves would leave a collective another still waits in.
    /// At least 3 rounds rather than 5: a MiniLM or ResNet step on one thread takes seconds.
    private func agreedSecondsPerCall(_ communicator: any Communicator, _ body: () throws -> Void) throws -> Double {
        func agreed(_ decision: Bool) throws -> Bool { try communicator.broadcast(Int64(decision ? 1 : 0)) == 1 }
        try body()
        var calls = 1
        while true {
            try communicator.barrier()
            let start = Date()
            for _ in 0..<calls { try body() }
            if try agreed(Date().timeIntervalSince(start) > 0.05) { break }
            calls *= 2
        }
        var rounds: [Double] = []
        let start = Date()
        repeat {
            try communicator.barrier()
            let t = Date()
            for _ in 0..<calls { try body() }
            rounds.append(Date().timeIntervalSince(t) / Double(calls))
        } while try agreed(rounds.count < 3 || Date().timeIntervalSince(start) < seconds)
        return rounds.sorted()[rounds.count / 2]
    }
}

/// Starts this executable (or mpirun with it) with one configuration's thread settings.
private struct Launcher {
    let mpirun: String?
    let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]

    /// Rank 0's `RESULT` figures of a worker run; none, after a message, when it fails.
    func figures(_ arguments: [String], ranks: Int, threads: Int) -> [String: Double] {
        guard let output = run(arguments, ranks: ranks, threads: threads)?.output else { return [:] }
        var figures: [String: Double] = [:]
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3, f[0] == "RESULT", let v = Double(f[2]) { figures[String(f[1])] = v }
        }
        return figures
    }

    /// Wall seconds of `graft train recipes/bbc-minilm.yaml` into a temporary directory; nil when it fails.
    func trainSeconds(ranks: Int, threads: Int) -> Double? {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("graft-bench-dp-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        return run(["train", "recipes/bbc-minilm.yaml", "--output", output, "--overwrite"], ranks: ranks, threads: threads)?.seconds
    }

    /// Runs from the repository root (recipes name their assets relative to it) with stderr passed through.
    private func run(_ arguments: [String], ranks: Int, threads: Int) -> (output: String, seconds: Double)? {
        var environment = ProcessInfo.processInfo.environment
        let settings = ["OPENBLAS_NUM_THREADS": "\(threads)", "GRAFT_NUM_THREADS": "\(threads)",
                        "GRAFT_ASSETS": environment["GRAFT_ASSETS"] ?? repositoryRoot.appendingPathComponent(".cache/assets").path]
        environment.merge(settings) { $1 }
        let process = Process()
        process.environment = environment
        process.currentDirectoryURL = repositoryRoot
        if ranks > 1, let mpirun {
            process.executableURL = URL(fileURLWithPath: mpirun)
            process.arguments = ["--allow-run-as-root", "-np", "\(ranks)", "--bind-to", BenchDataParallel.binding]
                + settings.keys.sorted().flatMap { ["-x", $0] } + [executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let what = "\(arguments.prefix(4).joined(separator: " ")) on \(ranks) rank\(ranks > 1 ? "s" : "") × \(threads) thread\(threads > 1 ? "s" : "")"
        FileHandle.standardError.write(Data("measuring: \(what)\n".utf8))
        let pipe = Pipe()
        process.standardOutput = pipe
        let start = Date()
        do { try process.run() } catch {
            print("cannot start \(what): \(error)")
            return nil
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        guard process.terminationStatus == 0 else {
            print("\(what) failed (exit \(process.terminationStatus)); its rows are left out. Its output:\n\(output)")
            return nil
        }
        return (output, seconds)
    }
}

private func format(_ value: Double?, _ format: String = "%.2f") -> String {
    value.map { String(format: format, $0) } ?? "-"
}

private func reference(_ name: String, _ value: Double?, _ format: String = "%.2f") -> String {
    value.map { "\(name) " + String(format: format, $0) } ?? ""
}

private func ratio(_ value: Double?, _ reference: Double?) -> String {
    guard let value, let reference else { return "-" }
    return String(format: "%.2f×", value / reference)
}

private func goal(_ value: Double?, _ reference: Double?, atLeast target: Double) -> String {
    guard let value, let reference else { return "" }
    return String(format: "≥ %.2f× (%@)", target, value / reference >= target ? "met" : "missed")
}

private func kibName(_ kib: Int) -> String { kib % 1024 == 0 ? "\(kib / 1024) MiB" : "\(kib) KiB" }
