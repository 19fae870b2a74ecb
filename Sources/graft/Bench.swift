import ArgumentParser
import CBLAS
import Foundation
import GraftCore
import GraftNN
import GraftOptim

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, printed as ratios measured side by side in one run.", subcommands: [BenchCompare.self, BenchCore.self, BenchMiniLM.self, BenchFinetune.self, BenchDataParallel.self])
}

/// The repository root (benchmarks find launch/ scripts and the default asset cache there).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// PyTorch's figures from one of launch/'s benchmark scripts (lines `RESULT key value`), or none, with a message,
/// where PyTorch is not installed or the script fails.
func torchFigures(script: String, arguments: [String], python: String?) -> [String: Double] {
    let python = python ?? repositoryRoot.appendingPathComponent(".cache/torch-venv/bin/python").path
    guard FileManager.default.isExecutableFile(atPath: python) else {
        print("PyTorch: not installed (\(python) missing; run launch/torch-env.sh); no side-by-side figures.")
        return [:]
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [repositoryRoot.appendingPathComponent("launch/\(script)").path] + arguments
    let output = Pipe(), notes = Pipe()
    process.standardOutput = output
    process.standardError = notes
    do { try process.run() } catch {
        print("PyTorch: cannot run \(python): \(error); no side-by-side figures.")
        return [:]
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    for line in String(decoding: notes.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n") {
        print("PyTorch: \(line)")
    }
    guard process.terminationStatus == 0 else {
        print("PyTorch: \(script) failed (exit \(process.terminationStatus)); no side-by-side figures.")
        return [:]
    }
    var figures: [String: Double] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        if f.count == 3, f[0] == "RESULT", let v = Double(f[2]) { figures[String(f[1])] = v }
    }
    return figures
}

/// Columns padded to their widest cell; the first left-aligned, the rest right-aligned.
func printTable(_ rows: [[String]]) {
    let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max()! }
    for row in rows {
        print(row.indices.map { c in
            let pad = String(repeating: " ", count: widths[c] - row[c].count)
            return c == 0 ? row[c] + pad : pad + row[c]
        }.joined(separator: "  "))
    }
}

/// Median seconds per call of `body`, over timed rounds after a warm-up.
func secondsPerCall(minimum: Double = 0.25, _ body: () -> Void) -> Double {
    body()
    var calls = 1
    while true {
        let t = Date()
        for _ in 0..<calls { body() }
        if Date().timeIntervalSince(t) > 0.05 { break }
        calls *= 2
    }
    var rounds: [Double] = []
    let start = Date()
    while rounds.count < 5 || Date().timeIntervalSince(start) < minimum {
        let t = Date()
        for _ in 0..<calls { body() }
        rounds.append(Date().timeIntervalSince(t) / Double(calls))
    }
    return rounds.sorted()[rounds.count / 2]
}

/// The core workloads: GEMM, conv2d, element-wise ops and an MLP training step, beside raw sgemm and PyTorch.
struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "core", abstract: "Tensor-core throughput.")

    @Option(help: "Threads for OpenBLAS (and PyTorch); Graft's own kernels use every core.") var threads: Int = 2
    @Option(help: "Python with PyTorch for side-by-side figures (default: the venv launch/torch-env.sh makes).")
    var torchPython: String?
    @Flag(help: "Skip the PyTorch comparison.") var noTorch = false

    func run() throws {
        openblas_set_num_threads(Int32(threads))
        var rows: [(key: String, label: String, unit: String, graft: Double, reference: Double?, refName: String)] = []
        var rng = RandomGenerator(seed: 1)

        for n in [256, 512, 1024, 2048] {
            let a = Tensor.randomNormal([n, n], using: &rng), b = Tensor.randomNormal([n, n], using: &rng)
            let c = Storage(count: n * n)
            let flops = 2 * Double(n * n * n)
            let raw = flops / secondsPerCall {
                GEMMLibrary.current.sgemm(transA: false, transB: false, m: n, n: n, k: n, a.pointer, lda: n, b.pointer,
                                          ldb: n, beta: 0, c.pointer, ldc: n)
            } / 1e9
            let graft = flops / secondsPerCall { _ = a.matmul(b) } / 1e9
            rows.append(("matmul_\(n)", "matmul \(n)×\(n)", "GF/s", graft, raw, "sgemm"))
        }

        let conv = convolutionFigures(using: &rng)
        rows.append(("conv_fwdbwd", "conv2d 3×3 64→64 32×32 b32 fwd+bwd", "GF/s", conv.graft, conv.sgemm, "sgemm same GEMM"))

        let n = 1 << 22
        let x = Tensor.randomNormal([n], using: &rng), y = Tensor.randomNormal([n], using: &rng)
        let bytes = Double(n * 4)
        rows.append(("add_gbs", "add 4M floats", "GB/s", 3 * bytes / secondsPerCall { _ = x + y } / 1e9, nil, ""))
        rows.append(("exp_gbs", "exp 4M floats", "GB/s", 2 * bytes / secondsPerCall { _ = x.exp() } / 1e9, nil, ""))
        rows.append(("relu_gbs", "relu 4M floats", "GB/s", 2 * bytes / secondsPerCall { _ = x.relu() } / 1e9, nil, ""))

        rows.append(("mlp_steps", "MLP 784-512-512-10 b128 SGD step", "steps/s", 1 / (try mlpStepSeconds(using: &rng)), nil, ""))

        let torch = noTorch ? [:] : torchFigures(script: "bench_core_torch.py", arguments: ["--threads", "\(threads)"], python: torchPython)
        let table = [["workload", "Graft", "unit", "reference", "ratio", "PyTorch", "ratio"]] + rows.map { r in
            let t = torch[r.key]
            return [r.label, String(format: "%.1f", r.graft), r.unit,
                    r.reference.map { String(format: "%.1f %@", $0, r.refName) } ?? "-",
                    r.reference.map { String(format: "%.2f×", r.graft / $0) } ?? "-",
                    t.map { String(format: "%.1f", $0) } ?? "-",
                    t.map { String(format: "%.2f×", r.graft / $0) } ?? "-"]
        }
        printTable(table)
        print("ratios are Graft ÷ reference and Graft ÷ PyTorch (above 1: Graft is faster); threads: \(threads).")
    }

    private func mlpStepSeconds(using rng: inout RandomGenerator) throws -> Double {
        let model = MLP(sizes: [784, 512, 512, 10], using: &rng)
        let sgd = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                   options: GroupOptions(learningRate: 0.01))])
        let x = Tensor.randomUniform([128, 784], using: &rng)
        let labels = (0..<128).map { _ in Int(rng.next() % 10) }
        return secondsPerCall(minimum: 1) {
            sgd.zeroGradients()
            Tensor.crossEntropy(model(x), targets: labels).backward()
            sgd.step()
        }
    }

}
