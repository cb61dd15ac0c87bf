// swift-tools-version: 6.0
// Lanes: a user-space packet I/O engine over AF_XDP.
//
// Modules, ordered by distance from the OS (arrows point down the list only):
//   lanes (CLI) -> LanesEngine (lane loop, apps) and LanesLab (testbed, experiments)
//   -> LanesXDP (UMEM, AF_XDP sockets and typed views of their rings, XDP program,
//      ethtool, netlink, netns, threads, atomics on shared words)
//   -> CLanes (libxdp, libbpf, libnuma, linux headers, shims)
//   LanesReport (the one end-of-run report every command prints and the lab reads)
//   sits between LanesEngine/LanesLab and LanesXDP.
// LanesEngine imports no C module: every ring verb, kick and atomic it uses is a
// LanesXDP inlinable (the release build inlines them into the lane loop).
// LanesLab drives the engine through `lanes` child processes, one per namespace
// (a process enters one network namespace, and its sysfs and BPF views with it;
// the generator, the dut and the receiver each need their own; threads could
// enter network namespaces one by one, but not the mount namespace that sysfs
// and bpffs come from), started by one typed launcher (LanesCommand, spelling
// values as the CLI's own parsers read them). So it depends on LanesXDP
// (namespaces, sysfs, errors) and the pure LanesCore (rates, lists, frame
// sizes), never on LanesEngine.
//   LanesPacket and LanesCore are pure Swift: no C import, no root, no project imports.
import PackageDescription

let optimize: [SwiftSetting] = []

let package = Package(
    name: "Lanes",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lanes", targets: ["lanes"]),
        .library(name: "LanesPacket", targets: ["LanesPacket"]),
        .library(name: "LanesCore", targets: ["LanesCore"]),
        .library(name: "LanesXDP", targets: ["LanesXDP"]),
        .library(name: "LanesEngine", targets: ["LanesEngine"]),
        .library(name: "LanesReport", targets: ["LanesReport"]),
        .library(name: "LanesLab", targets: ["LanesLab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CLanes", path: "Sources/CLanes", pkgConfig: "libxdp",
                       providers: [.apt(["libxdp-dev", "libbpf-dev", "libnuma-dev"])]),
        .plugin(name: "BPFBuild", capability: .buildTool(), path: "Plugins/BPFBuild"),
        .target(name: "LanesPacket"),
        .target(name: "LanesCore"),
        .target(name: "LanesXDP", dependencies: ["CLanes", "LanesCore", "LanesPacket"],
                swiftSettings: optimize, plugins: ["BPFBuild"]),
        .target(name: "LanesReport", dependencies: ["LanesXDP", "LanesCore"]),
        .target(name: "LanesEngine", dependencies: ["LanesReport", "LanesXDP", "LanesCore", "LanesPacket"],
                swiftSettings: optimize),
        .target(name: "LanesLab", dependencies: ["LanesReport", "LanesXDP", "LanesCore"], swiftSettings: optimize),
        .executableTarget(name: "lanes", dependencies: [
            "LanesLab", "LanesEngine", "LanesReport", "LanesXDP", "LanesPacket", "LanesCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimize),
        .testTarget(name: "LanesPacketTests", dependencies: ["LanesPacket"]),
        .testTarget(name: "LanesCoreTests", dependencies: ["LanesCore"]),
        .testTarget(name: "LanesXDPTests", dependencies: ["CLanes", "LanesCore", "LanesXDP"]),
        .testTarget(name: "LanesEngineTests", dependencies: ["CLanes", "LanesEngine", "LanesReport", "LanesCore", "LanesPacket", "LanesXDP"]),
        .testTarget(name: "LanesIntegrationTests",
                    dependencies: ["LanesLab", "LanesReport", "LanesXDP", "LanesCore", "LanesPacket", "lanes"], exclude: ["fibdiff.py"]),
    ],
    swiftLanguageModes: [.v6]
)
