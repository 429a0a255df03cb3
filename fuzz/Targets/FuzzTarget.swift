import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets (docs/fuzzing.md): each takes one input's bytes and feeds them to a parser of
/// untrusted input. A thrown error is a correct refusal; a trap, a crash, a hang or a broken invariant
/// (reported with `fatalError`) is a finding. The fuzzer driver and the corpus regression test both
/// call `run`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case conll, ndjson, tokenizer, model, tarball, http

    public func run(_ data: [UInt8]) {
        switch self {
        case .conll: CoNLLTarget.run(data)
        case .ndjson: NDJSONTarget.run(data)
        case .tokenizer: TokenizerTarget.run(data)
        case .model: ModelTarget.run(data)
        case .tarball: TarballTarget.run(data)
        case .http: HTTPTarget.run(data)
        }
    }

    /// The folder holding the committed corpora and the tiny model (`fuzz/` in the checkout).
    public static let fuzzRoot: String = {
        if let dir = ProcessInfo.processInfo.environment["NER_FUZZ_ROOT"], !dir.isEmpty { return dir }
        return ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }()
}

/// A scratch folder for this process, for targets whose parser reads files; in RAM where there is one.
enum Scratch {
    static let dir: String = {
        let base = isDirectory("/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = base + "/ner-fuzz-\(getpid())"
        mkdir(dir, 0o700)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.dir) }
        return dir
    }()

    /// Writes `bytes` to `name` in the scratch folder and returns its path.
    static func write(_ bytes: some Collection<UInt8>, to name: String) -> String {
        let path = dir + "/" + name
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            fatalError("cannot write the scratch file \(path)")
        }
        return path
    }

    private static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}
