import ArgumentParser
import NERCLI
import NERCore

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ner-pack", abstract: "Not built yet.",
                                                    version: Toolchain.version)
    @OptionGroup var common: CommonOptions
    func run() throws {
        try runTool("ner-pack", common) { _ in throw ToolError.unavailable("ner-pack is not built yet") }
    }
}
Tool.main()
