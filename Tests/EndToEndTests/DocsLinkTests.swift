import Foundation
import Testing
import TestSupport

/// The README and docs/ link to each other by relative paths: every such link names a file that
/// exists, so moving a page cannot leave a dead link behind.
@Suite struct DocsLinkTests {
    @Test func everyRelativeLinkNamesAFileThatExists() throws {
        let root = TestTools.repoRoot
        let docs = try FileManager.default.contentsOfDirectory(atPath: root + "/docs").filter { $0.hasSuffix(".md") }
        let pages = ["README.md", "examples/data/README.md"] + docs.map { "docs/" + $0 }
        var checked = 0
        for page in pages {
            let text = try String(contentsOfFile: root + "/" + page, encoding: .utf8)
            let folder = (page as NSString).deletingLastPathComponent
            let links = text.matches(of: try Regex(#"\]\(([^)#:\s]+)(#[^)]*)?\)"#)).compactMap { $0.output[1].substring.map(String.init) }
            for link in links {
                let path = ((folder.isEmpty ? root : root + "/" + folder) + "/" + link as NSString).standardizingPath
                #expect(FileManager.default.fileExists(atPath: path), "\(page) links to \(link), which does not exist")
                checked += 1
            }
        }
        #expect(checked >= 10, "only \(checked) links found: the pattern no longer matches the pages")
    }
}
