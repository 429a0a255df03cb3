import ArgumentParser
import NERCLI
import NERCore

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ner-register", abstract: "Not built yet.",
                                                    version: Toolchain.version)
    @OptionGroup var common: CommonOptions
    func run() throws {
        try runTool("ner-register", common) { _ in throw ToolError.unavailable("ner-register is not built yet") }
    }
}
Tool.main()
