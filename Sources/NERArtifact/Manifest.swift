import Foundation
import NERCore

/// One model file as the manifest records it.
public struct ManifestFile: Codable, Equatable, Sendable {
    /// Relative path inside the model folder (`weights.bin`, `sub/x`).
    public var path: String
    public var size: Int64
    /// Lower-case hex.
    public var sha256: String

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// `MANIFEST.json`, the first entry of every artifact this toolchain writes (docs/artifacts.md).
public struct Manifest: Codable, Equatable, Sendable {
    /// The manifest layout this toolchain writes and reads.
    public static let currentFormatVersion = 1
    /// The manifest's name inside the tarball.
    public static let fileName = "MANIFEST.json"

    public var formatVersion: Int
    public var modelId: String
    public var name: String?
    public var toolchainVersion: String
    public var createdAt: String
    /// Sorted by path.
    public var files: [ManifestFile]

    enum CodingKeys: String, CodingKey {
        case name, files
        case formatVersion = "format_version", modelId = "model_id"
        case toolchainVersion = "toolchain_version", createdAt = "created_at"
    }

    public init(formatVersion: Int = Manifest.currentFormatVersion, modelId: String, name: String?,
                toolchainVersion: String = Toolchain.version, createdAt: String = Timestamp.now(),
                files: [ManifestFile]) {
        self.formatVersion = formatVersion
        self.modelId = modelId
        self.name = name
        self.toolchainVersion = toolchainVersion
        self.createdAt = createdAt
        self.files = files
    }

    /// Pretty, key-sorted JSON: the bytes stored in the tarball.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var d = try e.encode(self)
        d.append(0x0A)
        return d
    }

    /// Two manifests describe the same model content when they list the same files, byte for byte.
    public func sameContent(as other: Manifest) -> Bool {
        files == other.files
    }
}

/// A tarball in the artifact store and what it holds.
public struct PackResult: Sendable {
    /// Absolute path of the tarball.
    public var path: String
    /// sha256 hex of the whole tarball (the compressed bytes).
    public var sha256: String
    public var bytes: Int64
    public var manifest: Manifest

    public init(path: String, sha256: String, bytes: Int64, manifest: Manifest) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
        self.manifest = manifest
    }
}

public enum Compression: String, Sendable, CaseIterable {
    case zstd, gzip

    /// The file name extension of a tarball compressed this way.
    public var fileExtension: String {
        switch self {
        case .zstd: return ".tar.zst"
        case .gzip: return ".tar.gz"
        }
    }
}
