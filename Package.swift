// swift-tools-version:6.1
import PackageDescription

/// Kernel code is built with bounds checks off and for the host CPU: hand-written loops run about twice as fast.
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
    .unsafeFlags(["-Xcc", "-march=native", "-target-cpu", "native"]),
]

let package = Package(
    name: "Graft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "graft", targets: ["graft"]),
        .library(name: "GraftCore", targets: ["GraftCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "pkg-config"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin", "pkg-config"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev", "pkg-config"])]),
        .target(name: "GraftCore", dependencies: ["CBLAS"], swiftSettings: kernelFlags),
        .target(name: "GraftNN", dependencies: ["GraftCore"], swiftSettings: kernelFlags),
        .target(name: "GraftIO", dependencies: ["GraftCore"], swiftSettings: kernelFlags),
        .target(name: "GraftOptim", dependencies: ["GraftNN"], swiftSettings: kernelFlags),
        .target(name: "GraftTrain", dependencies: ["GraftOptim", "GraftNN", "GraftIO", "GraftCore"], swiftSettings: kernelFlags),
        .target(name: "GraftDistributed", dependencies: ["CMPI", "GraftCore"]),
        .target(name: "GraftRecipe", dependencies: ["GraftTrain", "GraftData", "GraftIO", "GraftOptim", "GraftNN", "GraftCore"]),
        .target(name: "GraftData", dependencies: ["GraftCore", "CJPEG"], swiftSettings: kernelFlags),
        .executableTarget(name: "graft", dependencies: [
            "CBLAS", "GraftCore", "GraftNN", "GraftIO", "GraftData", "GraftOptim", "GraftTrain", "GraftRecipe", "GraftDistributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: kernelFlags),
        .executableTarget(name: "graft-rank-tests", dependencies: ["GraftCore", "GraftDistributed"],
                          path: "Tests/RankTests"),
        .testTarget(name: "GraftCoreTests", dependencies: ["GraftCore"], exclude: ["Fixtures"],
                    swiftSettings: kernelFlags),
        .testTarget(name: "GraftDistributedTests", dependencies: ["GraftDistributed"]),
        .testTarget(name: "GraftNNTests", dependencies: ["GraftNN", "GraftIO", "GraftData"], exclude: ["Fixtures"],
                    swiftSettings: kernelFlags),
        .testTarget(name: "GraftOptimTests", dependencies: ["GraftOptim"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain"]),
        .testTarget(name: "GraftIOTests", dependencies: ["GraftIO"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftDataTests", dependencies: ["GraftData"], exclude: ["Fixtures"]),
        .testTarget(name: "GraftRecipeTests", dependencies: ["GraftRecipe"]),
    ]
)
