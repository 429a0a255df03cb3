import ArgumentParser
import NERCLI
import NERCore

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ner-queue", abstract: "Not built yet.",
                                                    version: Toolchain.version)
    @OptionGroup var common: CommonOptions
    func run() throws {
        try runTool("ner-queue", common) { _ in throw ToolError.unavailable("ner-queue is not built yet") }
    }
}
Tool.main()
