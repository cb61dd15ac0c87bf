// swift-tools-version: 6.1
// Lanes' benchmarks: a package of their own, so the engine never pulls in the
// benchmark package. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "LanesBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Lanes", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "LanesBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LanesPacket", package: "Lanes"),
                .product(name: "LanesCore", package: "Lanes"),
                .product(name: "LanesEngine", package: "Lanes"),
            ],
            path: "Benchmarks/LanesBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
