import Foundation
import NERArtifact
import NERCore
import TestSupport
import Testing

@Suite struct PackTests {
    @Test func packVerifyUnpackRoundTripIsByteIdentical() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp)
        let store = tmp.file("artifacts")

        let packed = try Artifact.pack(modelDir: dir, modelId: "conll-1234", name: "conll", into: store)
        let ext = Artifact.zstdAvailable ? ".tar.zst" : ".tar.gz"
        #expect(packed.path == store + "/conll-1234" + ext)
        #expect(packed.bytes == (try FileManager.default.attributesOfItem(atPath: packed.path)[.size] as? NSNumber)?.int64Value)
        #expect(packed.sha256 == (try Artifact.sha256(ofFile: packed.path)))
        #expect(packed.manifest.modelId == "conll-1234")
        #expect(packed.manifest.name == "conll")
        #expect(packed.manifest.formatVersion == 1)
        #expect(packed.manifest.toolchainVersion == Toolchain.version)
        #expect(Timestamp.parse(packed.manifest.createdAt) != nil)
        #expect(packed.manifest.files.map(\.path) == ["model.json", "sub/vocab.txt", "weights.bin"])
        let weights = try #require(packed.manifest.files.first { $0.path == "weights.bin" })
        #expect(weights.size == 3 << 20 + 17)
        #expect(weights.sha256 == (try Artifact.sha256(ofFile: dir + "/weights.bin")))

        #expect(try Artifact.verify(path: packed.path) == packed.manifest)
        let inspected = try Artifact.inspect(path: packed.path)
        #expect(inspected.sha256 == packed.sha256)
        #expect(inspected.bytes == packed.bytes)

        let dest = tmp.file("out/unpacked")
        #expect(try Artifact.unpack(path: packed.path, into: dest) == packed.manifest)
        for f in ["model.json", "sub/vocab.txt", "weights.bin"] {
            #expect(FileManager.default.contentsEqual(atPath: dir + "/" + f, andPath: dest + "/" + f), "\(f)")
        }
        #expect(listing(dest) == ["MANIFEST.json", "model.json", "sub", "weights.bin"])
        #expect(listing(tmp.file("out")) == ["unpacked"])
        #expect(listing(store) == ["conll-1234" + ext])
    }

    @Test func gzipCompressionWritesTarGz() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 1000)
        let packed = try Artifact.pack(modelDir: dir, modelId: "g-1", name: nil, into: tmp.file("a"), compression: .gzip)
        #expect(packed.path.hasSuffix("/g-1.tar.gz"))
        let magic = try Data(contentsOf: URL(fileURLWithPath: packed.path)).prefix(2)
        #expect(Array(magic) == [0x1F, 0x8B])
        #expect(try Artifact.verify(path: packed.path).files.count == 3)
    }

    @Test func repackingTheSameIdIsIdempotentAndDifferentContentIsRefused() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 5000)
        let store = tmp.file("artifacts")
        let first = try Artifact.pack(modelDir: dir, modelId: "m-1", name: "m", into: store)
        let again = try Artifact.pack(modelDir: dir, modelId: "m-1", name: "m", into: store)
        #expect(again.path == first.path)
        #expect(again.sha256 == first.sha256)
        #expect(again.manifest == first.manifest)
        // Asking for gzip does not create a second tarball for the same id.
        let gz = try Artifact.pack(modelDir: dir, modelId: "m-1", name: "m", into: store, compression: .gzip)
        #expect(gz.path == first.path)

        FileManager.default.createFile(atPath: dir + "/model.json", contents: Data(#"{"format":"changed"}"#.utf8))
        let e = #expect(throws: ToolError.self) {
            try Artifact.pack(modelDir: dir, modelId: "m-1", name: "m", into: store)
        }
        #expect(e?.status == .failure)
        #expect(e?.message.contains("already exists with different content") == true)
        #expect(try Artifact.sha256(ofFile: first.path) == first.sha256)
        #expect(listing(store) == [(first.path as NSString).lastPathComponent])
    }

    /// libarchive 3.6 crashed on a UTF-8 entry name in the default C locale.
    @Test func nonASCIIFileNamesRoundTrip() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = tmp.file("m")
        tmp.write("m/données.txt", "a\n")
        tmp.write("m/sub dir/日本.bin", "b\n")
        let packed = try Artifact.pack(modelDir: dir, modelId: "uni-1", name: nil, into: tmp.file("a"))
        #expect(packed.manifest.files.map(\.path) == ["données.txt", "sub dir/日本.bin"])
        #expect(try Artifact.verify(path: packed.path) == packed.manifest)
        let dest = tmp.file("u")
        _ = try Artifact.unpack(path: packed.path, into: dest)
        #expect(try String(contentsOfFile: dest + "/sub dir/日本.bin", encoding: .utf8) == "b\n")
        #expect(try String(contentsOfFile: dest + "/données.txt", encoding: .utf8) == "a\n")
    }

    @Test func racingPackersOfOneIdAgreeOnOneTarball() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 256 << 10)
        let store = tmp.file("artifacts")
        let results = Locked<[Result<String, Error>]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let r = Result { try Artifact.pack(modelDir: dir, modelId: "race-1", name: nil, into: store).sha256 }
            results.withLock { $0.append(r) }
        }
        let shas = try results.withLock { $0 }.map { try $0.get() }
        #expect(shas.count == 4)
        #expect(Set(shas).count == 1)
        #expect(listing(store).count == 1)
        #expect(try Artifact.sha256(ofFile: Artifact.existing(modelId: "race-1", in: store)!) == shas[0])
    }

    @Test func noTempFilesRemainAfterAFailureMidway() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 2 << 20)
        let store = tmp.file("artifacts")
        // Sorted after weights.bin, so the tarball is half written when the fifo is reached.
        #expect(mkfifo(dir + "/zz.fifo", 0o644) == 0)
        let e = #expect(throws: ToolError.self) {
            try Artifact.pack(modelDir: dir, modelId: "f-1", name: nil, into: store)
        }
        #expect(e?.status == .dataError)
        #expect(e?.message.contains("zz.fifo: is a fifo") == true)
        #expect(listing(store) == [])
    }

    @Test func tempsOfKilledPackersAreSweptOnceStale() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 100)
        let store = tmp.file("artifacts")
        let stale = tmp.write("artifacts/.dead-1.tar.zst.tmp-99999-1", "half a tarball")
        tmp.write("artifacts/.busy-1.tar.zst.tmp-99999-2", "being written")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3 * 24 * 3600)],
                                              ofItemAtPath: stale)
        let packed = try Artifact.pack(modelDir: dir, modelId: "k-1", name: nil, into: store)
        #expect(listing(store) == [".busy-1.tar.zst.tmp-99999-2", (packed.path as NSString).lastPathComponent])
    }

    @Test func symlinkInModelFolderIsRefused() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 100)
        try FileManager.default.createSymbolicLink(atPath: dir + "/sub/link", withDestinationPath: "/etc/passwd")
        let store = tmp.file("artifacts")
        let e = #expect(throws: ToolError.self) {
            try Artifact.pack(modelDir: dir, modelId: "s-1", name: nil, into: store)
        }
        #expect(e?.status == .dataError)
        #expect(e?.message.contains("sub/link: is a symlink") == true)
        #expect(listing(store) == [])
    }

    @Test func vanishedModelFolderIsMissingInputAndLeavesNothing() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 100)
        let store = tmp.file("artifacts")
        try FileManager.default.removeItem(atPath: dir)
        let e = #expect(throws: ToolError.self) {
            try Artifact.pack(modelDir: dir, modelId: "v-1", name: nil, into: store)
        }
        #expect(e?.status == .noInput)
        #expect(listing(store) == [])
    }

    @Test func badModelIdsAreRefused() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 100)
        for id in ["", "../x", "a/b", ".hidden", "-flag", "sp ace"] {
            #expect(throws: ToolError.self, "\(id)") {
                try Artifact.pack(modelDir: dir, modelId: id, name: nil, into: tmp.file("artifacts"))
            }
        }
        #expect(listing(tmp.file("artifacts")) == [])
    }

    @Test func repackingAnUnpackedArtifactKeepsTheFiles() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 4096)
        let first = try Artifact.pack(modelDir: dir, modelId: "r-1", name: "r", into: tmp.file("a"))
        let unpacked = tmp.file("u")
        _ = try Artifact.unpack(path: first.path, into: unpacked)
        let second = try Artifact.pack(modelDir: unpacked, modelId: "r-2", name: "r", into: tmp.file("a"))
        #expect(second.manifest.files == first.manifest.files)
    }
}

@Suite struct VerifyTests {
    /// A real artifact, its model folder and its manifest.
    func packed(_ tmp: TempDir) throws -> (dir: String, manifest: Manifest) {
        let dir = makeModelDir(tmp, weightsBytes: 64 << 10)
        let r = try Artifact.pack(modelDir: dir, modelId: "t-1", name: "t", into: tmp.file("artifacts"))
        return (dir, r.manifest)
    }

    func verifyError(_ path: String) -> ToolError? {
        #expect(throws: ToolError.self) { try Artifact.verify(path: path) }
    }

    @Test func craftedCopyOfAGoodArtifactVerifies() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let path = tmp.file("copy.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest))
        #expect(try Artifact.verify(path: path) == manifest)
    }

    @Test func tamperedFileIsNamed() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let path = tmp.file("tampered.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, change: ["weights.bin": { d in
            var d = d
            d[1000] ^= 0x01
            return d
        }]))
        let e = verifyError(path)
        #expect(e?.status == .dataError)
        #expect(e?.message == "\(path): weights.bin: sha256 mismatch")
    }

    @Test func resizedFileIsNamed() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let path = tmp.file("resized.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, change: ["sub/vocab.txt": { $0 + Data("x".utf8) }]))
        let e = verifyError(path)
        #expect(e?.status == .dataError)
        #expect(e?.message.hasPrefix("\(path): sub/vocab.txt: size mismatch") == true)
    }

    @Test func missingFileIsNamed() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let path = tmp.file("missing.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, skipping: ["sub/vocab.txt"]))
        let e = verifyError(path)
        #expect(e?.status == .dataError)
        #expect(e?.message == "\(path): sub/vocab.txt: missing")
    }

    @Test func extraFileIsNamed() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let path = tmp.file("extra.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, extra: [.file("extra.txt", Data("hi".utf8))]))
        let e = verifyError(path)
        #expect(e?.status == .dataError)
        #expect(e?.message == "\(path): extra.txt: not in manifest")
    }

    @Test func missingManifestTruncationAndGarbageAreDataErrors() throws {
        let tmp = TempDir("ner-artifact")
        defer { tmp.remove() }
        let (dir, manifest) = try packed(tmp)
        let noManifest = tmp.file("nomanifest.tar.gz")
        craftTarball(noManifest, Array(try entries(of: dir, manifest: manifest).dropLast()))
        #expect(verifyError(noManifest)?.message == "\(noManifest): MANIFEST.json missing; not an artifact")

        let good = try #require(Artifact.existing(modelId: "t-1", in: tmp.file("artifacts")))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = tmp.file("truncated.tar.zst")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(verifyError(truncated)?.status == .dataError)

        let garbage = tmp.file("garbage.tar.zst")
        try Data("this is not a tarball\n".utf8).write(to: URL(fileURLWithPath: garbage))
        #expect(verifyError(garbage)?.status == .dataError)

        #expect(verifyError(tmp.file("nope.tar.zst"))?.status == .noInput)
    }
}

@Suite struct UnpackSafetyTests {
    /// Crafts a tarball holding one good file, then `hostile`, then a manifest that lists the hostile
    /// entry too, so the only thing wrong is the entry itself; unpack must refuse it by name and leave
    /// nothing at or beside the destination.
    func expectRefused(_ hostile: CraftedEntry, named entry: String, reason: String) throws {
        let tmp = TempDir("ner-unpack")
        defer { tmp.remove() }
        let good = Data("ok\n".utf8)
        let goodFile = tmp.write("src/good.txt", "ok\n")
        let sum = try Artifact.sha256(ofFile: goodFile)
        let manifest = Manifest(modelId: "h-1", name: nil, files: [
            ManifestFile(path: "good.txt", size: Int64(good.count), sha256: sum),
            ManifestFile(path: entry, size: Int64(good.count), sha256: sum),
        ])
        let path = tmp.file("hostile.tar.gz")
        craftTarball(path, [.file("good.txt", good), hostile, .file(Manifest.fileName, try manifest.encoded())])

        let parent = tmp.file("dest-parent")
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let e = #expect(throws: ToolError.self) { try Artifact.unpack(path: path, into: parent + "/model") }
        #expect(e?.status == .dataError)
        // Refused as an entry, or earlier as a path its manifest lists ("PATH: MANIFEST.json: ENTRY: ...").
        let message = e?.message ?? ""
        #expect(message.hasPrefix("\(path): ") && message.hasSuffix("\(entry): \(reason)"), "\(message)")
        #expect(listing(parent) == [])
        #expect(!fileExists(tmp.file("x")))
        #expect(throws: ToolError.self) { try Artifact.verify(path: path) }
    }

    @Test func dotDotIsRefused() throws {
        try expectRefused(.file("../x", Data("ok\n".utf8)), named: "../x", reason: "'..' in path refused")
    }

    @Test func nestedDotDotIsRefused() throws {
        try expectRefused(.file("sub/../../x", Data("ok\n".utf8)), named: "sub/../../x", reason: "'..' in path refused")
    }

    @Test func absolutePathIsRefused() throws {
        try expectRefused(.file("/etc/x", Data("ok\n".utf8)), named: "/etc/x", reason: "absolute path refused")
    }

    @Test func symlinkOutIsRefused() throws {
        try expectRefused(.symlink("link", target: "/etc/passwd"), named: "link", reason: "symlink refused")
    }

    @Test func hardlinkIsRefused() throws {
        try expectRefused(.hardlink("hard", target: "good.txt"), named: "hard", reason: "hardlink refused")
    }

    @Test func fileNotInManifestIsRefusedAndNothingIsLeft() throws {
        let tmp = TempDir("ner-unpack")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 1000)
        let manifest = try Artifact.pack(modelDir: dir, modelId: "e-1", name: nil, into: tmp.file("a")).manifest
        let path = tmp.file("extra.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, extra: [.file("evil.sh", Data("rm -rf /\n".utf8))]))
        let parent = tmp.file("p")
        let e = #expect(throws: ToolError.self) { try Artifact.unpack(path: path, into: parent + "/m") }
        #expect(e?.message == "\(path): evil.sh: not in manifest")
        #expect(listing(parent) == [])
    }

    @Test func existingDestinationIsRefused() throws {
        let tmp = TempDir("ner-unpack")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 1000)
        let packed = try Artifact.pack(modelDir: dir, modelId: "d-1", name: nil, into: tmp.file("a"))
        let dest = tmp.file("dest")
        try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
        #expect(throws: ToolError.self) { try Artifact.unpack(path: packed.path, into: dest) }
        #expect(listing(dest) == [])
        #expect(listing(tmp.path).filter { $0.hasPrefix(".") } == [])
    }
}

/// The training state ner-train keeps for --resume is several times the model's size; an artifact
/// holds what serves, not what resumes.
@Suite struct TrainingStateTests {
    @Test func checkpointFolderIsNotPacked() throws {
        let t = TempDir("ckpt"); defer { t.remove() }
        t.write("model/model.json", "{\"id\":\"m-1\"}")
        t.write("model/weights.bin", "weights")
        t.write("model/checkpoint/state.bin", String(repeating: "x", count: 10_000))
        t.write("model/checkpoint/state.json", "{}")
        let packed = try Artifact.pack(modelDir: t.file("model"), modelId: "m-1", name: "m", into: t.file("artifacts"))
        #expect(packed.manifest.files.map(\.path) == ["model.json", "weights.bin"])
        let back = try Artifact.unpack(path: packed.path, into: t.file("unpacked"))
        #expect(back.files.count == 2)
        #expect(!fileExists(t.file("unpacked/checkpoint")))
    }
}
