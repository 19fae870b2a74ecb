// swift-tools-version:6.1
import PackageDescription

/// Kernel code is built with bounds checks off and for one CPU: hand-written loops run about twice as fast. That CPU is
/// the build machine's (`native`) unless the build's environment names another. A native binary dies with an illegal
/// instruction on a CPU that lacks any of the build machine's extensions, so for compute nodes that differ from the
/// build node, build with `GRAFT_PORTABLE=1` (x86-64-v2 on x86-64: SSE4.2, no AVX; on Arm64 the compiler's default,
/// which every 64-bit Arm CPU runs) or `GRAFT_CPU=NAME` (an LLVM CPU name: `x86-64-v3`, `znver3`, `sapphirerapids`,
/// `neoverse-v1`, …; it wins over `GRAFT_PORTABLE`).
let kernelFlags: [SwiftSetting] = {
    let release = SwiftSetting.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))
    let environment = Context.environment
    let cpu: String?
    if let name = environment["GRAFT_CPU"], !name.isEmpty {
        cpu = name
    } else if let portable = environment["GRAFT_PORTABLE"], !portable.isEmpty, portable != "0" {
        #if arch(x86_64)
        cpu = "x86-64-v2"
        #else
        cpu = nil
        #endif
    } else {
        cpu = "native"
    }
    guard let cpu else { return [release] }
    #if arch(x86_64)
    // swiftc takes its CPU and features from clang's -march; the x86-64-vN levels exist only there (as -target-cpu,
    // which names a CPU model, they are rejected).
    var cpuFlags = ["-Xcc", "-march=\(cpu)"]
    if !cpu.hasPrefix("x86-64-v") { cpuFlags += ["-target-cpu", cpu] }
    #else
    // clang names an Arm CPU with -mcpu; its -march takes an architecture level (armv8.2-a).
    let cpuFlags = ["-Xcc", cpu == "native" ? "-march=native" : "-mcpu=\(cpu)", "-target-cpu", cpu]
    #endif
    return [release, .unsafeFlags(cpuFlags)]
}()

let package = Package(
    name: "Graft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "graft", targets: ["graft"]),
        // Every public module, so that another package can depend on Graft (see examples/FineTune).
        .library(name: "GraftCore", targets: ["GraftCore"]),
        .library(name: "GraftNN", targets: ["GraftNN"]),
        .library(name: "GraftIO", targets: ["GraftIO"]),
        .library(name: "GraftData", targets: ["GraftData"]),
        .library(name: "GraftOptim", targets: ["GraftOptim"]),
        .library(name: "GraftDistributed", targets: ["GraftDistributed"]),
        .library(name: "GraftTrain", targets: ["GraftTrain"]),
        .library(name: "GraftRecipe", targets: ["GraftRecipe"]),
        .library(name: "GraftMeta", targets: ["GraftMeta"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Recipes are read with Yams (libyaml underneath); GraftIO turns its node tree into YAMLNode.
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "pkg-config"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin", "pkg-config"])]),
        // libjpeg-turbo (Debian libjpeg62-turbo-dev) behind a small C decoder that can setjmp around its errors.
        .target(name: "CJPEGDecode", linkerSettings: [.linkedLibrary("jpeg")]),
        // libpng (Debian libpng-dev) behind a small C decoder that can setjmp around its errors, as for JPEG.
        .target(name: "CPNGDecode", linkerSettings: [.linkedLibrary("png16")]),
        // zlib (Debian zlib1g-dev): gzip-compressed IDX files.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // bfloat16 GEMM for AVX-512 BF16 CPUs, built for any x86-64 (the kernel carries its own target attribute
        // and runs only after a run-time check); elsewhere it reports no hardware.
        .target(name: "CGraftBF16"),
        .target(name: "GraftCore", dependencies: ["CBLAS", "CGraftBF16"], swiftSettings: kernelFlags),
        .target(name: "GraftNN", dependencies: ["GraftCore"], swiftSettings: kernelFlags),
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),
        .target(name: "GraftIO", dependencies: ["GraftCore", "CSystem", .product(name: "Yams", package: "Yams")],
                swiftSettings: kernelFlags),
        .target(name: "GraftOptim", dependencies: ["GraftNN"], swiftSettings: kernelFlags),
        .target(name: "GraftTrain", dependencies: ["GraftOptim", "GraftNN", "GraftIO", "GraftData", "GraftDistributed", "GraftCore"],
                swiftSettings: kernelFlags),
        .target(name: "GraftDistributed", dependencies: ["CMPI", "GraftCore"]),
        .target(name: "GraftRecipe", dependencies: ["GraftTrain", "GraftData", "GraftDistributed", "GraftIO", "GraftOptim", "GraftNN", "GraftCore", "GraftMeta"]),
        .systemLibrary(name: "CFreeType", path: "Sources/CFreeType", pkgConfig: "freetype2",
                       providers: [.apt(["libfreetype-dev", "pkg-config"])]),
        .target(name: "GraftData", dependencies: ["GraftCore", "CJPEGDecode", "CPNGDecode", "CZlib", "CFreeType"], swiftSettings: kernelFlags),
        .target(name: "GraftMeta", dependencies: ["GraftCore", "GraftNN", "GraftOptim", "GraftData"], swiftSettings: kernelFlags),
        .executableTarget(name: "graft", dependencies: [
            "CBLAS", "GraftCore", "GraftNN", "GraftIO", "GraftData", "GraftOptim", "GraftTrain", "GraftRecipe", "GraftDistributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: kernelFlags),
        .executableTarget(name: "graft-rank-tests", dependencies: ["GraftCore", "GraftDistributed"],
                          path: "Tests/RankTests"),
        .testTarget(name: "GraftCoreTests", dependencies: ["GraftCore", "GraftNN", "CGraftBF16"], exclude: ["Fixtures"],
                    swiftSettings: kernelFlags),
        .testTarget(name: "GraftDistributedTests", dependencies: ["GraftDistributed"]),
        .testTarget(name: "GraftNNTests", dependencies: ["GraftNN", "GraftIO", "GraftData"], exclude: ["Fixtures"],
                    swiftSettings: kernelFlags),
        .testTarget(name: "GraftOptimTests", dependencies: ["GraftOptim"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain", "GraftData", "GraftDistributed"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftIOTests", dependencies: ["GraftIO"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftDataTests", dependencies: ["GraftData"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftRecipeTests", dependencies: ["GraftRecipe", "GraftTrain", "GraftDistributed", "GraftNN", "GraftData", "GraftMeta"]),
        .testTarget(name: "GraftMetaTests", dependencies: ["GraftMeta", "GraftCore", "GraftNN", "GraftOptim", "GraftData"]),
    ]
)
