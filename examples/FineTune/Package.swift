// swift-tools-version:6.1
// Fine-tuning from Swift code with Graft as a dependency; launch/test-example.sh builds it from a copy outside the
// repository, pointing the path below at the checkout.
import PackageDescription

let package = Package(
    name: "FineTune",
    dependencies: [.package(name: "Graft", path: "../..")],
    targets: [
        .executableTarget(name: "FineTune", dependencies: [
            .product(name: "GraftData", package: "Graft"), .product(name: "GraftNN", package: "Graft"),
            .product(name: "GraftTrain", package: "Graft"),
        ]),
    ]
)
