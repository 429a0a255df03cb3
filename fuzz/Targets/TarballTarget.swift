import Foundation
import NERArtifact

/// A model tarball as `ner-register` verifies it; one that verifies is also unpacked, as the model
/// store does.
enum TarballTarget {
    static func run(_ data: [UInt8]) {
        let path = Scratch.write(data, to: "input.tar")
        guard (try? Artifact.inspect(path: path)) != nil else { return }
        let dest = Scratch.dir + "/unpacked"
        try? FileManager.default.removeItem(atPath: dest)
        _ = try? Artifact.unpack(path: path, into: dest)
        try? FileManager.default.removeItem(atPath: dest)
    }
}
