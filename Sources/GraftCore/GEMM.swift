import CBLAS
import Foundation
import Synchronization

/// The library that runs Graft's fp32 matrix products. OpenBLAS is linked; oneDNN's sgemm is loaded at run time
/// when its shared library is installed (Debian `libdnnl2`), so the build needs `libopenblas-dev` alone. On the
/// 2-vCPU Zen 5 EPYC here oneDNN's sgemm ran the MLP's and MiniLM-L6's training shapes 1.0–1.2× OpenBLAS's speed
/// on one thread and 1.0–1.7× on two (`launch/gemm_libraries.c`).
public enum GEMMLibrary: String, Sendable, CaseIterable {
    case openBLAS = "openblas"
    case oneDNN = "onednn"

    /// The library in use: `GRAFT_GEMM` (`openblas` or `onednn`) if set, else oneDNN when it loads, else OpenBLAS.
    /// A bad `GRAFT_GEMM` stops the process; the `graft` command checks it first (`choose`) to say so in one line.
    public static let current: GEMMLibrary = {
        do { return try choose(setting: ProcessInfo.processInfo.environment["GRAFT_GEMM"]) } catch {
            fatalError("\(error)")
        }
    }()

    /// The library `GRAFT_GEMM=setting` asks for (nil or empty: the fastest available).
    public static func choose(setting: String?) throws -> GEMMLibrary {
        guard let setting, !setting.isEmpty else { return OneDNN.loaded == nil ? .openBLAS : .oneDNN }
        guard let library = GEMMLibrary(rawValue: setting.lowercased()) else {
            throw GEMMLibraryError("GRAFT_GEMM=\(setting): expected one of " +
                                   allCases.map(\.rawValue).joined(separator: ", "))
        }
        if library == .oneDNN && OneDNN.loaded == nil {
            throw GEMMLibraryError("GRAFT_GEMM=onednn: \(OneDNN.libraryNames.joined(separator: " or ")) " +
                                   "did not load (apt-get install libdnnl2)")
        }
        return library
    }

    /// A one-line description for benchmark headers: the library and its version.
    public var description: String {
        switch self {
        case .openBLAS: return "OpenBLAS"
        case .oneDNN: return "oneDNN \(OneDNN.loaded?.version ?? "")"
        }
    }
}

public struct GEMMLibraryError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension GEMMLibrary {
    /// c = alpha · op(a) · op(b) + beta · c in fp32, row-major with cblas_sgemm's arguments, through this library on
    /// as many threads as OpenBLAS is set to (one inside `withSingleThreadedBLAS`).
    @inline(__always)
    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, _ a: UnsafePointer<Float>,
                      lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>,
                      ldc: Int) {
        switch self {
        case .openBLAS:
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .oneDNN:
            guard let dnnl = OneDNN.loaded else { preconditionFailure("oneDNN is not loaded") }
            dnnl.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
                       beta: beta, c, ldc: ldc)
        }
    }
}

/// `GEMMLibrary.current.sgemm`: every fp32 matrix product in Graft goes through here.
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
           _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    GEMMRecording.record(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, beta: beta)
    GEMMLibrary.current.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
                              beta: beta, c, ldc: ldc)
}

/// oneDNN's `dnnl_sgemm`, found with dlopen. Its Debian build threads with OpenMP, whose thread count is set per
/// calling thread, so each call first sets it to OpenBLAS's. OpenMP's threads spin after each product before they
/// sleep, without yielding the core, and on two cores that spin took the core from Graft's own workers and
/// OpenBLAS's: unless `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is set, libgomp loads with a spin of
/// `OneDNN.spinCount` iterations (tens of microseconds), and the variable is removed again so that child
/// processes do not inherit it.
struct OneDNN: @unchecked Sendable {
    private typealias SGEMM = @convention(c) (CChar, CChar, Int64, Int64, Int64, Float, UnsafePointer<Float>?, Int64,
                                              UnsafePointer<Float>?, Int64, Float, UnsafeMutablePointer<Float>?,
                                              Int64) -> Int32
    private typealias SetThreads = @convention(c) (Int32) -> Void
    private typealias Version = @convention(c) () -> UnsafePointer<Int32>?

    private let multiply: SGEMM
    private let setThreads: SetThreads
    let version: String

    static let libraryNames = ["libdnnl.so.3", "libdnnl.so.2"]
    static let spinCount = "3000"

    /// The library, or nil when none of `libraryNames` loads or lacks a symbol.
    static let loaded: OneDNN? = {
        let environment = ProcessInfo.processInfo.environment
        let setSpin = environment["GOMP_SPINCOUNT"] == nil && environment["OMP_WAIT_POLICY"] == nil
        if setSpin { setenv("GOMP_SPINCOUNT", spinCount, 1) }
        defer { if setSpin { unsetenv("GOMP_SPINCOUNT") } }
        for name in libraryNames {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            // dlsym on the handle also searches the libraries it depends on (libgomp for omp_set_num_threads).
            guard let multiply = dlsym(handle, "dnnl_sgemm"), let threads = dlsym(handle, "omp_set_num_threads"),
                  let version = dlsym(handle, "dnnl_version") else { continue }
            // dnnl_version returns {major, minor, patch, hash}.
            let parts = unsafeBitCast(version, to: Version.self)().map { "\($0[0]).\($0[1]).\($0[2])" } ?? "?"
            return OneDNN(multiply: unsafeBitCast(multiply, to: SGEMM.self),
                          setThreads: unsafeBitCast(threads, to: SetThreads.self), version: parts)
        }
        return nil
    }()

    @inline(__always)
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, _ a: UnsafePointer<Float>, lda: Int,
               _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int,
               threads: Int32 = openblas_get_num_threads()) {
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            // c = beta · c, as BLAS defines it; dnnl_sgemm leaves c as it was when k is 0 (a rank without rows).
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        setThreads(threads)
        let flag = { (transposed: Bool) in CChar(UInt8(ascii: transposed ? "T" : "N")) }
        let status = multiply(flag(transA), flag(transB), Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda),
                              b, Int64(ldb), beta, c, Int64(ldc))
        precondition(status == 0, "dnnl_sgemm failed (status \(status)) on \(m)×\(n)×\(k)")
    }
}

/// One fp32 product's shape as Graft called it: what a benchmark needs to time a step's products on their own.
public struct GEMMProduct: Hashable, Sendable {
    public let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    /// Added into c (beta ≠ 0) rather than written.
    public let accumulates: Bool
    /// Called with BLAS held to one thread while Graft's threads share the products out (attention's heads,
    /// Winograd's images).
    public let shared: Bool

    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
}

/// The products a piece of code makes (`GEMMRecording.products { step() }`), and the same products replayed alone
/// on buffers of their sizes: how fast the step's own GEMMs run with nothing else around them.
public enum GEMMRecording {
    private static let active = Atomic<Bool>(false)
    private static let log = Mutex<[GEMMProduct]>([])

    /// The products `body` makes, in order (those of shared-out lanes in the order they ran).
    public static func products(of body: () -> Void) -> [GEMMProduct] {
        log.withLock { $0 = [] }
        active.store(true, ordering: .sequentiallyConsistent)
        body()
        active.store(false, ordering: .sequentiallyConsistent)
        return log.withLock { $0 }
    }

    @inline(__always)
    static func record(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, beta: Float) {
        guard active.load(ordering: .relaxed) else { return }
        let product = GEMMProduct(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                                  accumulates: beta != 0,
                                  shared: kernelThreads > 1 && openblas_get_num_threads() == 1)
        log.withLock { $0.append(product) }
    }

    /// A call that runs `products` through `library` in order, each on random operands of its size, the runs of
    /// shared products spread over Graft's threads again with BLAS held to one thread.
    public static func replay(_ products: [GEMMProduct], library: GEMMLibrary) -> () -> Void {
        let rows = { (p: GEMMProduct) in (a: p.transA ? p.k : p.m, b: p.transB ? p.n : p.k) }
        let sizeA = products.map { rows($0).a * $0.lda }.max() ?? 0
        let sizeB = products.map { rows($0).b * $0.ldb }.max() ?? 0
        let sizeC = products.map { $0.m * $0.ldc }.max() ?? 0
        let lanes = kernelThreads
        var rng = RandomGenerator(seed: 3)
        let a = Tensor.randomNormal([Swift.max(sizeA, 1)], using: &rng), b = Tensor.randomNormal([Swift.max(sizeB, 1)],
                                                                                                 using: &rng)
        let c = Storage(count: Swift.max(sizeC, 1) * lanes)
        // Consecutive products with the same `shared` flag, run together.
        var runs: [ArraySlice<GEMMProduct>] = []
        var start = 0
        for i in products.indices where i + 1 == products.count || products[i + 1].shared != products[start].shared {
            runs.append(products[start...i])
            start = i + 1
        }
        let run = { (p: GEMMProduct, c: UnsafeMutablePointer<Float>) in
            library.sgemm(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, a.pointer, lda: p.lda,
                          b.pointer, ldb: p.ldb, beta: p.accumulates ? 1 : 0, c, ldc: p.ldc)
        }
        return {
            for products in runs {
                guard products.first!.shared else {
                    for p in products { run(p, c.pointer) }
                    continue
                }
                let list = Array(products)
                withSingleThreadedBLAS {
                    runLanes(lanes) { lane in
                        for i in stride(from: lane, to: list.count, by: lanes) { run(list[i], c.pointer + lane * sizeC) }
                    }
                }
            }
        }
    }
}
