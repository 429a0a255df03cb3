import ArgumentParser
import NERCLI
import NERCore

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ner-train", abstract: "Not built yet.",
                                                    version: Toolchain.version)
    @OptionGroup var common: CommonOptions
    func run() throws {
        try runTool("ner-train", common) { _ in throw ToolError.unavailable("ner-train is not built yet") }
    }
}
Tool.main()
