// swift-tools-version:6.0
import PackageDescription

// A small core of library modules (one per concern) and eight thin executables.
// C libraries come in as system-library modules: OpenBLAS (math), libarchive (tarballs);
// SQLite comes through GRDB.

// The engine's elementwise loops (LSTM gates, CRF) vectorise 8 wide with AVX2 and FMA: 12% less
// inference time. Every x86-64 server CPU since 2013 (Haswell) has them.
#if arch(x86_64)
let engineFlags = ["-Ounchecked", "-target-cpu", "haswell"]
#else
let engineFlags = ["-Ounchecked"]
#endif

let package = Package(
    name: "ner",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ner-queue", targets: ["ner-queue"]),
        .executable(name: "ner-dispatch", targets: ["ner-dispatch"]),
        .executable(name: "ner-train", targets: ["ner-train"]),
        .executable(name: "ner-pack", targets: ["ner-pack"]),
        .executable(name: "ner-register", targets: ["ner-register"]),
        .executable(name: "ner-infer", targets: ["ner-infer"]),
        .executable(name: "ner-serve", targets: ["ner-serve"]),
        .executable(name: "ner-console", targets: ["ner-console"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),

        // Core library modules.
        .target(name: "NERCore", dependencies: [
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NERCLI", dependencies: [
            "NERCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NERRegistry", dependencies: [
            "NERCore", "NERArtifact",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .target(name: "NERArtifact", dependencies: [
            "NERCore", "CArchive",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Bayesian search over hyper-parameters (docs/sweeps.md): a Gaussian process on OpenBLAS/LAPACK.
        .target(name: "NERSearch", dependencies: ["NERCore", "CBLAS"]),
        .target(name: "NERQueue", dependencies: [
            "NERCore", "NERRegistry", "NERSearch",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NERDispatch", dependencies: [
            "NERCore", "NERQueue", "NERRegistry",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NERServer", dependencies: [
            "NERCore", "NEREngine", "NERText", "NERModelStore", "NERRegistry",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The web console (docs/console.md): its pages are compiled in (Assets.swift).
        .target(name: "NERConsole", dependencies: [
            "NERCore", "NERQueue", "NERDispatch", "NERRegistry", "NERModelStore", "NEREngine", "NERText",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .target(name: "NERModelStore", dependencies: ["NERCore", "NERRegistry", "NERArtifact"]),
        .target(name: "NERInference", dependencies: [
            "NERCore", "NEREngine", "NERText",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NERText", dependencies: ["NERCore"]),
        .target(name: "NEREngine", dependencies: ["NERText", "NERCore", "CBLAS"],
                swiftSettings: [.unsafeFlags(engineFlags, .when(configuration: .release))]),

        // Executables: argument parsing and a call into the core.
        .executableTarget(name: "ner-queue", dependencies: ["NERCLI", "NERCore", "NERQueue", "NERRegistry", "NERDispatch"]),
        .executableTarget(name: "ner-dispatch", dependencies: ["NERCLI", "NERCore", "NERQueue", "NERDispatch", "NERRegistry"]),
        .executableTarget(name: "ner-train", dependencies: ["NERCLI", "NERCore", "NEREngine", "NERModelStore", "NERText"]),
        .executableTarget(name: "ner-pack", dependencies: ["NERCLI", "NERCore", "NERArtifact", "NEREngine"]),
        .executableTarget(name: "ner-register", dependencies: ["NERCLI", "NERCore", "NERRegistry", "NERArtifact"]),
        .executableTarget(name: "ner-infer", dependencies: ["NERCLI", "NERCore", "NEREngine", "NERInference", "NERModelStore"]),
        .executableTarget(name: "ner-serve", dependencies: ["NERCLI", "NERCore", "NERModelStore", "NERServer"]),
        .executableTarget(name: "ner-console", dependencies: ["NERCLI", "NERCore", "NERConsole", "NERRegistry"]),

        // Fuzzing (docs/fuzzing.md): the targets, and a driver that is libFuzzer's under `make fuzz`
        // and replays files otherwise.
        .target(name: "NERFuzz", dependencies: ["NERCore", "NERQueue", "NERText", "NEREngine", "NERArtifact", "NERServer"],
                path: "fuzz/Targets"),
        .executableTarget(name: "ner-fuzz", dependencies: ["NERFuzz"], path: "fuzz/Driver"),

        // The man page generator `make install` runs on each tool (docs/contributing.md).
        .executableTarget(name: "gen-manpage"),

        // Tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NERCoreTests", dependencies: ["TestSupport", "NERCore"]),
        .testTarget(name: "NERQueueTests", dependencies: ["TestSupport", "NERCore", "NERQueue"]),
        .testTarget(name: "NERSearchTests", dependencies: ["NERCore", "NERSearch"]),
        .testTarget(name: "NERRegistryTests", dependencies: [
            "TestSupport", "NERRegistry", "NERCore", "NERArtifact", "ner-register",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "NERArtifactTests", dependencies: ["TestSupport", "NERArtifact", "NERCore", "CArchive", "ner-pack", "ner-infer"]),
        .testTarget(name: "NERTextTests", dependencies: ["TestSupport", "NERText", "NERCore", "ner-infer"]),
        .testTarget(name: "NEREngineTests", dependencies: ["TestSupport", "NEREngine", "NERText", "ner-train", "ner-infer", "ner-pack"]),
        .testTarget(name: "NERServerTests", dependencies: [
            "TestSupport", "NERServer", "NERCore", "NERArtifact", "ner-serve", "ner-train", "ner-pack", "ner-register", "ner-infer",
        ]),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["NERFuzz"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "TestSupport", "NERCore", "NERRegistry",
            "ner-queue", "ner-dispatch", "ner-train", "ner-pack", "ner-register", "ner-infer", "ner-serve", "ner-console",
            "gen-manpage",
        ]),
        .testTarget(name: "NERConsoleTests", dependencies: [
            "TestSupport", "NERCore", "NERRegistry",
            "ner-console", "ner-queue", "ner-dispatch", "ner-train", "ner-pack", "ner-register", "ner-infer",
        ]),
    ],
    swiftLanguageModes: [.v5]
)
