import ArgumentParser
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

/// OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when it loads. Its default keeps an idle worker spinning for
/// about 0.1 s after each GEMM; on a 2-core machine that spinning worker sometimes shares a core with the main
/// thread for the whole run, and every training step then takes 1.5× as long (seen in 3 of 6 runs). Workers that
/// sleep at once cost a few microseconds per GEMM instead. Unless the user chose a value, set it and restart once.
func settleBLASThreadPolicy() {
    #if os(Linux)
    guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // exec failed: carry on with OpenBLAS's default.
    #endif
}

settleBLASThreadPolicy()
// Progress lines go out as they are printed, also to a file or through mpirun, which forwards ranks' output.
setvbuf(stdout, nil, _IOLBF, 0)
Graft.main()
