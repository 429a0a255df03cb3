import Foundation
import NERArtifact
import NERCore
import TestSupport
import Testing

/// A tarball whose weights.bin entry is far larger than its manifest says (64 MiB of zeros that
/// compress to almost nothing, where the manifest lists 3 MiB): unpacking stops at the listed size,
/// never writing past it, whether MANIFEST.json comes first (as this toolchain writes it) or last
/// (as older tarballs have it). Each tool runs under a file-size limit (`ulimit -f`) a little above
/// the largest listed file, so a write past it kills the tool (SIGXFSZ) instead of exiting 65.
@Suite struct UnpackLimitTests {
    static let bombBytes = 64 << 20

    func bomb(_ tmp: TempDir, manifestFirst: Bool) throws -> (path: String, largest: Int64) {
        let dir = makeModelDir(tmp)
        let packed = try Artifact.pack(modelDir: dir, modelId: "bomb-1", name: "bomb", into: tmp.file("artifacts"), compression: .gzip)
        let files: [CraftedEntry] = try packed.manifest.files.map { f in
            f.path == "weights.bin" ? .zeros(f.path, size: Self.bombBytes)
                : .file(f.path, try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.path)))
        }
        let manifest = CraftedEntry.file(Manifest.fileName, try packed.manifest.encoded())
        let path = tmp.file(manifestFirst ? "bomb-first.tar.gz" : "bomb-last.tar.gz")
        craftTarball(path, manifestFirst ? [manifest] + files : files + [manifest])
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).intValue
        #expect(size < 1 << 20, "the bomb should be small: \(size) bytes")
        return (path, packed.manifest.files.map(\.size).max()!)
    }

    /// Runs a tool with its file-size limit at `limit` bytes (rounded up to bash's 1 KiB blocks).
    func runLimited(_ limit: Int64, _ tool: String, _ args: [String]) throws -> RunResult {
        let blocks = (limit + 1023) / 1024
        return try run("/bin/bash", ["-c", "ulimit -f \(blocks) && exec \"$0\" \"$@\"", TestTools.path(tool)] + args)
    }

    @Test(arguments: [true, false])
    func unpackStopsAtTheManifestSize(manifestFirst: Bool) throws {
        let tmp = TempDir("ner-bomb")
        defer { tmp.remove() }
        let (path, largest) = try bomb(tmp, manifestFirst: manifestFirst)
        let limit = largest + (256 << 10)

        let r = try runLimited(limit, "ner-pack", ["--unpack", path, "--into", tmp.file("out/dest")])
        #expect(r.status == 65, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr == "ner-pack: error: \(path): weights.bin: size mismatch (manifest says \(largest) bytes, the entry holds \(Self.bombBytes))\n"
                || r.stderr == "ner-pack: error: \(path): weights.bin: size mismatch (manifest says \(largest) bytes, the entry holds more)\n",
                "\(r.stderr)")
        #expect(listing(tmp.file("out")) == [], "nothing is left behind")

        let infer = try runLimited(limit, "ner-infer", ["--model", path, "--home", tmp.file("home"), "--quiet"])
        #expect(infer.status == 65, "exit \(infer.status): \(infer.stderr)")
        #expect(infer.stderr.contains("weights.bin: size mismatch"), "\(infer.stderr)")
    }

    @Test func packedTarballsListTheManifestFirst() throws {
        let tmp = TempDir("ner-bomb")
        defer { tmp.remove() }
        let packed = try Artifact.pack(modelDir: makeModelDir(tmp), modelId: "order-1", name: "order", into: tmp.file("artifacts"))
        let listed = try run("/usr/bin/tar", ["-tf", packed.path])
        try #require(listed.status == 0, "tar cannot list \(packed.path): \(listed.stderr)")
        #expect(listed.lines == [Manifest.fileName, "model.json", "sub/vocab.txt", "weights.bin"])
    }
}
