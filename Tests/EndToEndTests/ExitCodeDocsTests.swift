import Foundation
import NERCore
import Testing
import TestSupport

/// Every exit code a tool may end with is in each tool's --help and in docs/exit-codes.md.
@Suite struct ExitCodeDocsTests {
    static let tools = ["ner-queue", "ner-dispatch", "ner-train", "ner-pack", "ner-register", "ner-infer", "ner-serve", "ner-console"]

    @Test func everyToolsHelpListsEveryCode() throws {
        for tool in Self.tools {
            let help = try run(tool, ["--help"])
            #expect(help.status == 0)
            for code in ExitStatus.allCases {
                let line = "  " + String(code.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0) + code.meaning
                #expect(help.stdout.contains(line + "\n"),
                        "\(tool) --help lacks exit \(code.rawValue)")
            }
        }
    }

    @Test func docsListEveryCode() throws {
        let doc = try String(contentsOfFile: TestTools.repoRoot + "/docs/exit-codes.md", encoding: .utf8)
        for code in ExitStatus.allCases {
            #expect(doc.contains("\n| \(code.rawValue) |"), "docs/exit-codes.md lacks exit \(code.rawValue)")
        }
        let readme = try String(contentsOfFile: TestTools.repoRoot + "/README.md", encoding: .utf8)
        #expect(readme.contains("docs/exit-codes.md"))
    }
}
