import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The programs the install tests run: make always; groff and man where installed.
enum Programs {
    static let make = ["/usr/bin/make", "/bin/make"].first(where: FileManager.default.isExecutableFile)
    static let groff = ["/usr/bin/groff"].first(where: FileManager.default.isExecutableFile)
    static let man = ["/usr/bin/man"].first(where: FileManager.default.isExecutableFile)
}

/// `make install`'s files, made by the Makefile's own recipe (`install-files`, what `install` runs
/// after building) from the tools under test: each tool, its man page and its bash, zsh and fish
/// completions, all generated from the tool's argument parser.
@Suite(.enabled(if: Programs.make != nil, "needs make"))
struct InstallTests {

    /// The long options a command's `--help` lists under OPTIONS (`--model`, `--quiet`, ...).
    static func options(_ help: String) -> [String] {
        var found: [String] = []
        var inOptions = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "OPTIONS:" { inOptions = true; continue }
            guard inOptions else { continue }
            if !line.isEmpty && !line.hasPrefix(" ") { break }
            guard line.hasPrefix("  -") else { continue }
            // The first column: the option's names and value, up to the gap before its text.
            let names = line.dropFirst(2).components(separatedBy: "  ")[0]
            for word in names.split(whereSeparator: { $0 == " " || $0 == "," }) where word.hasPrefix("--") {
                found.append(String(word))
            }
        }
        return found
    }

    /// A man page as a reader sees it (groff's plain UTF-8 output), or nil without groff.
    func rendered(_ page: String) throws -> String? {
        guard let groff = Programs.groff else { return nil }
        let r = try run(groff, ["-man", "-Tutf8", "-P-cbou", page])
        #expect(r.status == 0, "groff \(page): \(r.stderr)")
        return r.stdout
    }

    @Test func installPutsAManPageAndCompletionsBesideEveryTool() throws {
        let prefix = TempDir("ner-install"); defer { prefix.remove() }
        let made = try run(Programs.make!, ["-C", TestTools.repoRoot, "--no-print-directory", "install-files",
                                        "PREFIX=" + prefix.path, "PRODUCTS=" + TestTools.productsDir])
        try #require(made.status == 0, "make install-files: \(made.stdout)\(made.stderr)")

        for tool in ToolCommands.tools {
            let bin = prefix.file("bin/\(tool)")
            #expect(access(bin, X_OK) == 0, "\(bin)")
            #expect(try run(bin, ["--version"]).status == 0)

            // The man page: man(7) structure, and groff renders it without a warning.
            let page = prefix.file("share/man/man1/\(tool).1")
            let source = try String(contentsOfFile: page, encoding: .utf8)
            for needle in [".TH \"\(tool.uppercased().replacingOccurrences(of: "-", with: "\\-"))\" 1 ",
                           ".SH NAME\n\(tool.replacingOccurrences(of: "-", with: "\\-")) \\- ",
                           ".SH SYNOPSIS\n", ".SH DESCRIPTION\n", ".SH OPTIONS\n", ".SH \"EXIT STATUS\"\n"] {
                #expect(source.contains(needle), "\(page) lacks \(needle)")
            }
            if let groff = Programs.groff {
                let warnings = try run(groff, ["-man", "-Tutf8", "-ww", "-Wbreak", "-z", page])
                #expect(warnings.status == 0 && warnings.stderr.isEmpty, "groff warns on \(page): \(warnings.stderr)")
            }
            if let man = Programs.man {
                let r = try run(man, ["-l", page], env: ["MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat",
                                                         "MAN_DISABLE_SECCOMP": "1"])
                #expect(r.status == 0 && r.stdout.contains("SYNOPSIS"), "man -l \(page): \(r.stderr)")
            }
            let text = try rendered(page)

            // Completions, where bash-completion, zsh and fish look for them.
            let bash = try String(contentsOfFile: prefix.file("share/bash-completion/completions/\(tool)"), encoding: .utf8)
            let zsh = try String(contentsOfFile: prefix.file("share/zsh/site-functions/_\(tool)"), encoding: .utf8)
            let fish = try String(contentsOfFile: prefix.file("share/fish/vendor_completions.d/\(tool).fish"), encoding: .utf8)
            #expect(zsh.hasPrefix("#compdef \(tool)"), "zsh completion of \(tool)")
            #expect(fish.contains("complete -c '\(tool)'"), "fish completion of \(tool)")

            // Every option of every command's --help is in the page and in the three completions;
            // every subcommand is named in them.
            for command in ToolCommands.all where command[0] == tool {
                let help = try ToolCommands.help(command)
                let name = command.joined(separator: " ")
                if command.count > 1 {
                    let sub = command.last!
                    #expect(text?.contains(name) ?? source.contains(name.replacingOccurrences(of: "-", with: "\\-")),
                            "man page of \(tool) lacks \(name)")
                    #expect(bash.contains(sub) && zsh.contains(sub) && fish.contains(sub), "completions of \(tool) lack \(sub)")
                }
                let options = Self.options(help.stdout)
                #expect(options.contains("--help"), "no options found in `\(name) --help`")
                for option in options {
                    let escaped = option.replacingOccurrences(of: "-", with: "\\-")
                    #expect(text?.contains(option) ?? source.contains(escaped), "man page of \(tool) lacks \(option) (\(name))")
                    #expect(bash.contains(option), "bash completion of \(tool) lacks \(option) (\(name))")
                    #expect(zsh.contains(option), "zsh completion of \(tool) lacks \(option) (\(name))")
                    #expect(fish.contains("-l '\(option.dropFirst(2))'"), "fish completion of \(tool) lacks \(option) (\(name))")
                }
            }
            for file in ["share/man/man1/\(tool).1", "share/bash-completion/completions/\(tool)",
                         "share/zsh/site-functions/_\(tool)", "share/fish/vendor_completions.d/\(tool).fish"] {
                var st = stat()
                #expect(stat(prefix.file(file), &st) == 0 && st.st_mode & 0o777 == 0o644, "\(file) mode")
            }
        }
    }

    /// The page keeps --help's layout where it matters: an option's text and default, the exit
    /// status table as a section of its own, the examples line for line.
    @Test func aManPageSaysWhatHelpSays() throws {
        let t = TempDir("ner-manpage"); defer { t.remove() }
        let r = try run(TestTools.path("gen-manpage"), [TestTools.path("ner-infer")])
        #expect(r.status == 0, "\(r.stderr)")
        let page = t.write("ner-infer.1", r.stdout)
        guard let text = try rendered(page) else { return }
        let words = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("--format FORMAT Input format: text, json or conll. (values: text, json, conll; default: text)"), "\(text)")
        #expect(words.contains("EXIT STATUS 0 success 1 the work failed"))
        #expect(text.contains("\n       ner-infer --model news --format json < records.ndjson\n"))
        #expect(words.contains("READS (stdin, or --input FILE), by --format"))
        #expect(!text.contains("SUBCOMMANDS"))
    }
}
