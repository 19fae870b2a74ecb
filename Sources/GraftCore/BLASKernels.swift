import CBLAS
import Foundation

/// Which of OpenBLAS's kernel sets runs. Debian's OpenBLAS is built for every x86-64 core type and picks one as it
/// loads, from the CPU (Cooperlake, AVX-512 with BF16, on a Zen 5 EPYC), unless `OPENBLAS_CORETYPE` names one. An
/// environment may set that variable for every program (these build machines set `OPENBLAS_CORETYPE=Haswell`), and
/// on an AVX-512 CPU the Haswell (AVX2) kernels run sgemm at about half speed (measured on the Zen 5 EPYC, 1024²,
/// one thread: 34 GF/s against 60–64). OpenBLAS reads the variable only as it loads, so the `graft` command fixes
/// its environment and restarts itself once; each node of a cluster decides for its own CPU.
public enum BLASKernels {
    /// The AVX-512 subsets OpenBLAS's SkylakeX and later kernels use.
    static let avx512Flags = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    /// OpenBLAS x86-64 kernel sets without AVX-512 that an AVX-512 CPU would otherwise be held to.
    static let avx2KernelSets: Set<String> = ["haswell", "zen", "sandybridge"]

    /// What the `graft` command does to OpenBLAS's environment before OpenBLAS loads.
    public enum CoreTypeChange: Equatable, Sendable {
        /// Set `OPENBLAS_CORETYPE` to this kernel set.
        case set(String)
        /// Remove an inherited `OPENBLAS_CORETYPE`, so that OpenBLAS chooses for the CPU itself.
        case unset
    }

    /// The change for `environment` on a CPU with `cpuFlags` (as /proc/cpuinfo names them), or nil for none.
    /// `GRAFT_BLAS_CORETYPE=NAME` sets `OPENBLAS_CORETYPE=NAME` (any name OpenBLAS knows; `Haswell` to compare the
    /// AVX2 kernels); otherwise an inherited `OPENBLAS_CORETYPE` that holds an AVX-512 CPU to AVX2 kernels is
    /// removed, and any other is kept.
    public static func coreTypeChange(environment: [String: String], cpuFlags: Set<String>) -> CoreTypeChange? {
        if let chosen = environment["GRAFT_BLAS_CORETYPE"], !chosen.isEmpty {
            return environment["OPENBLAS_CORETYPE"] == chosen ? nil : .set(chosen)
        }
        guard let inherited = environment["OPENBLAS_CORETYPE"], avx2KernelSets.contains(inherited.lowercased()),
              avx512Flags.allSatisfy(cpuFlags.contains) else { return nil }
        return .unset
    }

    /// The change for this process and CPU (see `coreTypeChange(environment:cpuFlags:)`).
    public static func coreTypeChange() -> CoreTypeChange? {
        coreTypeChange(environment: ProcessInfo.processInfo.environment, cpuFlags: cpuFlags())
    }

    /// OpenBLAS's name for the kernel set in use ("Haswell", "SkylakeX", "Cooperlake", …).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The running CPU's feature flags from /proc/cpuinfo; empty where there is none (then nothing is removed).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
