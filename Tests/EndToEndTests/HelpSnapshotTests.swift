import Foundation
import NERCore
import Testing
import TestSupport

/// The eight tools and every subcommand their parsers list (`ner-register promote`, ...), as the
/// argument words that name them.
enum ToolCommands {
    static let tools = ["ner-queue", "ner-dispatch", "ner-train", "ner-pack", "ner-register", "ner-infer", "ner-serve", "ner-console"]

    /// Each tool, then its subcommands, depth first, from `--experimental-dump-help`; the parser's
    /// own `help` subcommand, which `--help` does not list either, is left out.
    static let all: [[String]] = {
        var commands: [[String]] = []
        func walk(_ command: JSON, _ path: [String]) {
            commands.append(path)
            for sub in command["subcommands"]?.arrayValue ?? [] {
                guard let name = sub["commandName"]?.stringValue, name != "help",
                      sub["shouldDisplay"]?.boolValue ?? true else { continue }
                walk(sub, path + [name])
            }
        }
        for tool in tools {
            guard let r = try? run(tool, ["--experimental-dump-help"]), r.status == 0,
                  let info = try? JSON.parse(r.stdout), let command = info["command"] else {
                commands.append([tool])  // its --help is checked still
                continue
            }
            walk(command, [tool])
        }
        return commands
    }()

    /// `--help` of a command at a fixed width (the parser reads COLUMNS), so the text does not
    /// depend on the terminal.
    static func help(_ command: [String]) throws -> RunResult {
        try run(command[0], Array(command.dropFirst()) + ["--help"], env: ["COLUMNS": "80", "LINES": "24"])
    }
}

/// `--help` of every tool and subcommand against the golden files in Tests/Golden/help, so that a
/// change of a help text is a reviewed diff. `NER_UPDATE_GOLDEN=1` rewrites them
/// (docs/contributing.md).
@Suite struct HelpSnapshotTests {
    static let folder = TestTools.repoRoot + "/Tests/Golden/help"
    static let update = ProcessInfo.processInfo.environment["NER_UPDATE_GOLDEN"] == "1"
    static let regenerate = "NER_UPDATE_GOLDEN=1 swift test -c release --disable-testable-imports --filter HelpSnapshotTests"

    static func file(_ command: [String]) -> String { folder + "/" + command.joined(separator: "-") + ".txt" }

    @Test func theParserListsEveryToolAndTheRegistrySubcommands() {
        #expect(Set(ToolCommands.all.map { $0[0] }) == Set(ToolCommands.tools))
        let registry = ToolCommands.all.filter { $0.count == 2 && $0[0] == "ner-register" }.map { $0[1] }
        #expect(registry.contains("promote") && registry.contains("register") && registry.count >= 10, "\(registry)")
    }

    @Test(arguments: ToolCommands.all)
    func helpMatchesItsGoldenFile(_ command: [String]) throws {
        let r = try ToolCommands.help(command)
        #expect(r.status == 0, "\(command.joined(separator: " ")) --help: \(r.stderr)")
        let path = Self.file(command)
        let golden = try? String(contentsOfFile: path, encoding: .utf8)
        if golden == r.stdout { return }
        if Self.update {
            try FileManager.default.createDirectory(atPath: Self.folder, withIntermediateDirectories: true)
            try r.stdout.write(toFile: path, atomically: true, encoding: .utf8)
            print("HelpSnapshotTests: wrote \(path)")
            return
        }
        let name = "`\(command.joined(separator: " ")) --help`"
        guard golden != nil else {
            Issue.record("\(name) has no golden file \(path); write it with\n  \(Self.regenerate)")
            return
        }
        Issue.record("""
            \(name) differs from \(path):
            \(try unifiedDiff(path, r.stdout))
            If the change is meant, regenerate the golden files and review their diff:
              \(Self.regenerate)
            """)
    }

    /// A golden file no command has any more (a subcommand renamed or removed) fails too; the
    /// update removes it.
    @Test func everyGoldenFileBelongsToACommand() throws {
        let expected = Set(ToolCommands.all.map { Self.file($0) })
        let present = ((try? FileManager.default.contentsOfDirectory(atPath: Self.folder)) ?? [])
            .filter { $0.hasSuffix(".txt") }.map { Self.folder + "/" + $0 }
        for path in present where !expected.contains(path) {
            if Self.update {
                try FileManager.default.removeItem(atPath: path)
                print("HelpSnapshotTests: removed \(path)")
            } else {
                Issue.record("\(path) belongs to no command; remove it, or run\n  \(Self.regenerate)")
            }
        }
    }

    /// `diff -u` of the golden file against the actual text.
    func unifiedDiff(_ golden: String, _ actual: String) throws -> String {
        let t = TempDir("ner-help-diff"); defer { t.remove() }
        let name = (golden as NSString).lastPathComponent
        let actualFile = t.write(name, actual)
        let d = try run("/usr/bin/diff", ["-u", "--label", "golden/" + name, "--label", "actual/" + name, golden, actualFile])
        return d.stdout.isEmpty ? d.stderr : d.stdout
    }
}
