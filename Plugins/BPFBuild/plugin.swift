// Compiles bpf/*.bpf.c with clang -target bpf at `swift build` time and embeds
// each object in the target as base64 text, so the `lanes` binary carries its
// XDP programs and needs no path to find them. Generated objects never reach git.
import Foundation
import PackagePlugin

@main
struct BPFBuild: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let bpfDir = context.package.directoryURL.appending(path: "bpf")
        let script = bpfDir.appending(path: "embed.sh")
        let files = try FileManager.default.contentsOfDirectory(atPath: bpfDir.path)
        let sources = files.filter { $0.hasSuffix(".bpf.c") }.sorted()
        // The headers they include (lanes_shared.h): a change rebuilds every object.
        let headers = files.filter { $0.hasSuffix(".h") }.sorted().map { bpfDir.appending(path: $0) }
        return sources.map { name in
            let stem = String(name.dropLast(".bpf.c".count))
            let input = bpfDir.appending(path: name)
            let output = context.pluginWorkDirectoryURL.appending(path: "BPF_\(stem).swift")
            return .buildCommand(
                displayName: "Compiling XDP program \(name)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, input.path, output.path, stem],
                inputFiles: [script, input] + headers,
                outputFiles: [output])
        }
    }
}
