import ArgumentParser
import NERCLI
import NERCore

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ner-dispatch", abstract: "Not built yet.",
                                                    version: Toolchain.version)
    @OptionGroup var common: CommonOptions
    func run() throws {
        try runTool("ner-dispatch", common) { _ in throw ToolError.unavailable("ner-dispatch is not built yet") }
    }
}
Tool.main()
