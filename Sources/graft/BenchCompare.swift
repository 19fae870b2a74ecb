import ArgumentParser
import CBLAS
import Foundation
import GraftCore

/// Every workload of the performance table, Graft beside PyTorch, at each thread count, as time ratios measured in
/// one run. Each thread count runs in a child process with `GRAFT_NUM_THREADS` and `OPENBLAS_NUM_THREADS` set, so
/// Graft's own kernels, OpenBLAS and PyTorch all use that many threads; within it, Graft's and PyTorch's timed
/// rounds alternate (A B A B …) so that background load hits both alike, and each figure is the median round.
struct BenchCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Graft ÷ PyTorch on every benchmark workload, at 1 and 2 threads.")

    @Option(help: "Comma-separated thread counts, each run in its own process.") var threads: String = "1,2"
    @Option(help: "Comma-separated workload keys (default: all of \(BenchWorkload.all.map(\.key).joined(separator: ","))).")
    var only: String?
    @Option(help: "Timed rounds per side and workload; figures are medians.") var repetitions: Int = 5
    @Option(help: "Each round repeats its call until it lasts at least this long (seconds).") var roundSeconds: Double = 0.3
    @Flag(help: "One round of one call per side: a check that every workload runs, not a measurement.") var quick = false
    @Option(help: "Python with PyTorch (default: the venv launch/torch-env.sh makes).") var torchPython: String?
    @Flag(help: "Graft's figures only.") var noTorch = false
    @Flag(help: .hidden) var child = false

    func validate() throws {
        guard let counts = threadCounts, !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--threads must be a comma-separated list of positive integers, got '\(threads)'")
        }
        guard repetitions >= 1, roundSeconds >= 0 else {
            throw ValidationError("--repetitions must be at least 1 and --round-seconds not negative")
        }
        let unknown = selectedKeys.filter { key in !BenchWorkload.all.contains { $0.key == key } }
        guard unknown.isEmpty, !selectedKeys.isEmpty else {
            throw ValidationError("--only: unknown workload \(unknown.joined(separator: ", ")); known: "
                                  + BenchWorkload.all.map(\.key).joined(separator: ", "))
        }
        if child && counts.count != 1 { throw ValidationError("a child run takes one thread count") }
    }

    private var threadCounts: [Int]? {
        let parts = threads.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    private var selectedKeys: [String] {
        only.map { $0.split(separator: ",").map(String.init) } ?? BenchWorkload.all.map(\.key)
    }

    func run() throws {
        if child { return try runChild(threads: threadCounts![0]) }
        print("CPU: \(cpuModel()) (\(ProcessInfo.processInfo.activeProcessorCount) online; \(cpuFeatures()))")
        print("BLAS: \(String(cString: openblas_get_config())) (core \(String(cString: openblas_get_corename())))")
        print("fp32 GEMM: \(GEMMLibrary.current.description) (GRAFT_GEMM: \(GEMMLibrary.allCases.map(\.rawValue).joined(separator: ", ")))")
        print("load average at start: \(loadAverage())")
        if noTorch { print("PyTorch: left out (--no-torch); Graft's figures only.") }
        var rows: [Row] = []
        for count in threadCounts! {
            rows += try childRows(threads: count)
        }
        print("load average at end: \(loadAverage())")
        printComparison(rows)
    }

    /// A thread count's child run that did not finish.
    struct BenchFailure: Error, CustomStringConvertible {
        let threads: Int, status: Int32
        var description: String { "the \(threads)-thread run failed (exit \(status))" }
    }

    /// One figure pair: median seconds per call for Graft and (when measured) PyTorch, the buffers one more
    /// Graft call took from the system rather than from its pool, and for GEMM-bound workloads the median of
    /// sgemm 1024² rounds timed in alternation with Graft's (the machine's speed drifts between workloads) and of
    /// the workload's own fp32 products replayed alone.
    struct Row {
        let key: String, threads: Int, graft: Double, torch: Double?, newBuffers: Int
        var pairedSgemm: Double? = nil, ownProducts: Double? = nil
    }

    /// Runs this command again for one thread count and collects its `ROW` lines; other lines are printed.
    private func childRows(threads count: Int) throws -> [Row] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0])
        var arguments = ["bench", "compare", "--child", "--threads", "\(count)", "--only", selectedKeys.joined(separator: ","),
                         "--repetitions", "\(repetitions)", "--round-seconds", "\(roundSeconds)"]
        if quick { arguments.append("--quick") }
        if noTorch { arguments.append("--no-torch") }
        if let torchPython { arguments += ["--torch-python", torchPython] }
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["GRAFT_NUM_THREADS"] = "\(count)"
        environment["OPENBLAS_NUM_THREADS"] = "\(count)"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var rows: [Row] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 8, f[0] == "ROW", let t = Int(f[2]), let g = Double(f[3]), let fresh = Int(f[5]) {
                rows.append(Row(key: String(f[1]), threads: t, graft: g, torch: Double(f[4]), newBuffers: fresh,
                                pairedSgemm: Double(f[6]), ownProducts: Double(f[7])))
            } else {
                print(line)
            }
        }
        guard process.terminationStatus == 0 else { throw BenchFailure(threads: count, status: process.terminationStatus) }
        return rows
    }

    /// Measures every selected workload at this process's thread count and prints
    /// `ROW key threads graft torch|- new sgemm|- products|-`: `new` the buffers one more call took from the system,
    /// `sgemm` the median of the sgemm 1024² rounds that alternate with a GEMM-bound workload's, `products` that of
    /// rounds of the workload's own fp32 products replayed alone.
    private func runChild(threads count: Int) throws {
        guard kernelThreads == count else {
            throw ValidationError("a child run needs GRAFT_NUM_THREADS=\(count) (Graft's kernels use \(kernelThreads))")
        }
        openblas_set_num_threads(Int32(count))
        let (rounds, seconds) = quick ? (1, 0.0) : (repetitions, roundSeconds)
        let torch = noTorch ? nil : BenchTorchWorker(python: torchPython, threads: count)
        defer { torch?.close() }
        for workload in BenchWorkload.all where selectedKeys.contains(workload.key) {
            var call = try workload.make()
            var graftRound = preparedRound(call, roundSeconds: seconds)
            let torchReady = torch?.prepare(workload.key, roundSeconds: seconds) ?? false
            let sgemmRound = workload.gemmFlops == nil ? nil : preparedRound(BenchWorkload.sgemm(GEMMLibrary.current),
                                                                            roundSeconds: seconds)
            let productsRound = workload.gemmFlops.flatMap { flops in
                ownProducts(of: call, flops: flops).map { preparedRound($0, roundSeconds: seconds) }
            }
            var graftTimes: [Double] = [], torchTimes: [Double] = [], sgemmTimes: [Double] = []
            var productsTimes: [Double] = []
            for _ in 0..<rounds {
                graftTimes.append(graftRound())
                if torchReady, let t = torch?.time(workload.key) { torchTimes.append(t) }
                if let sgemmRound { sgemmTimes.append(sgemmRound()) }
                if let productsRound { productsTimes.append(productsRound()) }
            }
            let before = Storage.freshAllocations
            call()
            let after = Storage.freshAllocations
            (call, graftRound) = ({}, { 0 })  // frees the model before the next workload is built
            if torchReady { torch?.release(workload.key) }
            let graft = median(graftTimes), reference = torchTimes.count == rounds ? median(torchTimes) : nil
            FileHandle.standardError.write(Data(String(
                format: "[%d thread%@] %@: Graft %.2f ms, PyTorch %@\n", count, count == 1 ? "" : "s", workload.key,
                graft * 1000, reference.map { String(format: "%.2f ms", $0 * 1000) } ?? "-").utf8))
            print("ROW \(workload.key) \(count) \(graft) \(reference.map { "\($0)" } ?? "-") "
                  + "\(after - before) \(sgemmTimes.isEmpty ? "-" : "\(median(sgemmTimes))") "
                  + "\(productsTimes.isEmpty ? "-" : "\(median(productsTimes))")")
        }
    }

    /// A call that replays the fp32 products one `call` makes, alone (`GEMMRecording`), or nil when they do not add
    /// up to the workload's GEMM flops (bf16 products bypass sgemm).
    private func ownProducts(of call: () -> Void, flops: Double) -> (() -> Void)? {
        let products = GEMMRecording.products(of: call)
        let recorded = products.reduce(0) { $0 + $1.flops }
        guard abs(recorded - flops) <= 0.01 * flops else { return nil }
        return GEMMRecording.replay(products, library: GEMMLibrary.current)
    }

    /// Warms `call` up (two calls) and returns one timed round: as many calls (a power of two) as make it last at
    /// least `roundSeconds`, giving seconds per call. PyTorch's worker sizes its rounds by the same rule.
    private func preparedRound(_ call: @escaping () -> Void, roundSeconds: Double) -> () -> Double {
        call()
        let once = Self.seconds(call, calls: 1)
        var calls = 1
        while Double(calls) * once < roundSeconds { calls *= 2 }
        return { Self.seconds(call, calls: calls) }
    }

    private static func seconds(_ call: () -> Void, calls: Int) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { call() }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(calls)
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
