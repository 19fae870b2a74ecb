import ArgumentParser
import GraftCore
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Graft's command line: a thin layer over the library's configuration types.
struct Graft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Transfer learning in Swift, data-parallel over MPI.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Compare.self, DataEfficiency.self, MetaTrain.self, MetaTestCommand.self, Continual.self, Bench.self, InspectCommand.self])
}

/// OpenBLAS reads OPENBLAS_THREAD_TIMEOUT and OPENBLAS_CORETYPE once, when it loads. The default timeout keeps an
/// idle worker spinning for about 0.1 s after each GEMM; on a 2-core machine that spinning worker sometimes shares a
/// core with the main thread for the whole run, and every training step then takes 1.5× as long (seen in 3 of 6
/// runs). Workers that sleep at once cost a few microseconds per GEMM instead. The core type follows
/// `BLASKernels.coreTypeChange()`: an inherited one that holds an AVX-512 CPU to AVX2 kernels is dropped, and
/// `GRAFT_BLAS_CORETYPE` chooses one. Unless the user chose the timeout, set them and restart once.
func settleBLASThreadPolicy() {
    #if os(Linux)
    var restart = false
    if getenv("OPENBLAS_THREAD_TIMEOUT") == nil {
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        restart = true
    }
    switch BLASKernels.coreTypeChange() {
    case .set(let core): setenv("OPENBLAS_CORETYPE", core, 1); restart = true
    case .unset:
        // Said once, by the first rank (or the only process): a variable the environment set is not followed.
        let launchers: [String] = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"]
        let rank = launchers.lazy.compactMap { name in getenv(name).map { String(cString: $0) } }.first
        if rank == nil || rank == "0" {
            let inherited = String(cString: getenv("OPENBLAS_CORETYPE"))
            fputs("graft: OPENBLAS_CORETYPE=\(inherited) would hold this AVX-512 CPU to AVX2 kernels; OpenBLAS chooses for "
                  + "the CPU instead (GRAFT_BLAS_CORETYPE=\(inherited) keeps them)\n", stderr)
        }
        unsetenv("OPENBLAS_CORETYPE")
        restart = true
    case nil: break
    }
    if restart {
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with OpenBLAS's defaults.
    }
    if let chosen = getenv("GRAFT_BLAS_CORETYPE").map({ String(cString: $0) }), !chosen.isEmpty,
       chosen.lowercased() != BLASKernels.coreName.lowercased() {
        fputs("error: GRAFT_BLAS_CORETYPE=\(chosen): OpenBLAS has no such kernel set for this CPU (it runs \(BLASKernels.coreName))\n", stderr)
        exit(2)
    }
    #endif
}

settleBLASThreadPolicy()
// A bad GRAFT_GEMM is said here in one line rather than at the first matrix product.
do { _ = try GEMMLibrary.choose(setting: getenv("GRAFT_GEMM").map { String(cString: $0) }) } catch {
    fputs("error: \(error)\n", stderr)
    exit(2)
}
// Progress lines go out as they are printed, also to a file or through mpirun, which forwards ranks' output.
setvbuf(stdout, nil, _IOLBF, 0)
Graft.main()
