import Foundation
import GraftCore

extension BenchCompare {
    /// The table: one line per workload and thread count, Graft's and PyTorch's median milliseconds and the speed
    /// ratio (PyTorch's time ÷ Graft's: above 1 Graft is faster), then GF/s of the sgemm row, each GEMM-bound
    /// workload's GF/s against it and against the sgemm rounds timed in alternation with that workload, and the
    /// training workloads below the 1.2× target.
    func printComparison(_ rows: [Row]) {
        let labels = Dictionary(uniqueKeysWithValues: BenchWorkload.all.map { ($0.key, $0) })
        var table = [["workload", "threads", "Graft ms", "PyTorch ms", "Graft ÷ PyTorch", "new buffers"]]
        for workload in BenchWorkload.all {
            for row in rows where row.key == workload.key {
                table.append([workload.label, "\(row.threads)", milliseconds(row.graft), row.torch.map(milliseconds) ?? "-",
                              row.torch.map { String(format: "%.2f×", $0 / row.graft) } ?? "-",
                              "\(row.newBuffers)"])
            }
        }
        printTable(table)
        print("ratio = PyTorch time ÷ Graft time (above 1: Graft is faster); medians of \(quick ? 1 : repetitions) "
              + "interleaved round(s) per side.")
        print("new buffers = tensor buffers one more call took from the system rather than from Graft's pool.")
        let flops = 2.0 * 1024 * 1024 * 1024
        let sgemmRows = [("sgemm", GEMMLibrary.current.description), ("sgemm_openblas", "OpenBLAS")]
        for (key, library) in sgemmRows {
            for row in rows where row.key == key {
                print(String(format: "sgemm 1024², %d thread(s): %@ %.1f GF/s, PyTorch %@", row.threads, library,
                             flops / row.graft / 1e9,
                             row.torch.map { String(format: "%.1f GF/s", flops / $0 / 1e9) } ?? "-"))
            }
        }
        // The best sgemm rate of the run at each thread count, through either library.
        let sgemmRate = Dictionary(rows.filter { row in sgemmRows.contains { $0.0 == row.key } }
                                       .map { ($0.threads, flops / $0.graft) }, uniquingKeysWith: max)
        for workload in BenchWorkload.all {
            guard let work = workload.gemmFlops else { continue }
            for row in rows where row.key == workload.key {
                guard let best = sgemmRate[row.threads] else { continue }
                let rate = work / row.graft
                let paired = row.pairedSgemm.map { seconds in
                    let sgemm = flops / seconds
                    return String(format: "; %.0f %% of the %.1f sgemm reached in rounds alternating with it",
                                  100 * rate / sgemm, sgemm / 1e9)
                } ?? ""
                let own = row.ownProducts.map { seconds in
                    String(format: "; its own products alone %.1f GF/s (%.0f %% of sgemm's), the step %.0f %% of that",
                           work / seconds / 1e9, 100 * work / seconds / best, 100 * seconds / row.graft)
                } ?? ""
                print(String(format: "GEMM-bound: %@, %d thread(s): %.1f GF/s, %.0f %% of sgemm's %.1f%@%@", workload.key,
                             row.threads, rate / 1e9, 100 * rate / best, best / 1e9, paired, own))
            }
        }
        let behind = rows.filter { row in
            labels[row.key]?.training == true && row.torch.map { $0 / row.graft < 1.2 } == true
        }
        if !behind.isEmpty {
            print("training steps below the 1.2× target: " + behind.map { row in
                String(format: "%@ at %d thread(s) %.2f×", row.key, row.threads, row.torch! / row.graft)
            }.joined(separator: ", "))
        }
    }

    private func milliseconds(_ seconds: Double) -> String {
        String(format: seconds < 0.01 ? "%.3f" : "%.1f", seconds * 1000)
    }

    /// /proc/cpuinfo's first `model name`, or "unknown CPU" off Linux.
    func cpuModel() -> String {
        cpuInfoField("model name") ?? "unknown CPU"
    }

    /// The vector extensions that matter to the kernels, as /proc/cpuinfo lists them.
    func cpuFeatures() -> String {
        let flags = Set((cpuInfoField("flags") ?? "").split(separator: " ").map(String.init))
        let found = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "sve"].filter(flags.contains)
        return found.isEmpty ? "no AVX2/AVX-512/NEON flags listed" : found.joined(separator: " ")
    }

    private func cpuInfoField(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// /proc/loadavg's 1, 5 and 15-minute figures, or "unknown".
    func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}
