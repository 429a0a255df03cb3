import Foundation

// gen-manpage TOOL: writes TOOL's man page (man(7) roff, section 1) to stdout, generated from
// what its argument parser reports (`TOOL --experimental-dump-help` and `TOOL --version`), so the
// page says what `TOOL --help` says. `make install` runs it for every tool; docs/contributing.md
// describes the page's layout.

/// The part of swift-argument-parser's `--experimental-dump-help` JSON (ToolInfo version 0) a page needs.
struct ToolInfo: Decodable {
    var serializationVersion: Int
    var command: CommandInfo
}

struct CommandInfo: Decodable {
    var commandName: String
    var superCommands: [String]?
    var shouldDisplay: Bool?
    var abstract: String?
    var discussion: String?
    var defaultSubcommand: String?
    var subcommands: [CommandInfo]?
    var arguments: [ArgumentInfo]?

    var fullName: String { ((superCommands ?? []) + [commandName]).joined(separator: " ") }
    var displayedArguments: [ArgumentInfo] { (arguments ?? []).filter(\.shouldDisplay) }
    /// The subcommands `--help` lists: the parser's own `help` subcommand is left out there too.
    var displayedSubcommands: [CommandInfo] {
        (subcommands ?? []).filter { ($0.shouldDisplay ?? true) && $0.commandName != "help" }
    }
}

struct ArgumentInfo: Decodable {
    struct Name: Decodable {
        var kind: String
        var name: String
        var spelled: String {
            switch kind {
            case "long": return "--" + name
            case "short", "longWithSingleDash": return "-" + name
            default: return name
            }
        }
    }

    var kind: String
    var shouldDisplay: Bool
    var isOptional: Bool
    var isRepeating: Bool
    var names: [Name]?
    var preferredName: Name?
    var valueName: String?
    var defaultValue: String?
    var allValues: [String]?
    var abstract: String?
    var discussion: String?

    /// `\fB--name\fR \fIVALUE\fR` with every spelling (`-q, --quiet`), for an option list.
    var label: String {
        if kind == "positional" { return italic(valueName ?? "value") + (isRepeating ? " ..." : "") }
        let spellings = (names ?? []).sorted { $0.kind == "short" && $1.kind != "short" }.map { bold($0.spelled) }
        return spellings.joined(separator: ", ") + valuePart
    }

    /// The shortest form for the synopsis: `[\fB--name\fR \fIVALUE\fR]`.
    var synopsis: String {
        let core: String
        if kind == "positional" {
            core = italic(valueName ?? "value")
        } else {
            let name = preferredName ?? names?.first
            core = bold(name?.spelled ?? "") + valuePart
        }
        let repeated = isRepeating ? core + " ..." : core
        return isOptional ? "[" + repeated + "]" : repeated
    }

    private var valuePart: String { kind == "option" ? " " + italic(valueName ?? "value") : "" }
}

// MARK: - roff

/// Text for a roff text line: backslashes, hyphens (kept as ASCII minus signs so options copy and
/// paste), a leading dot or quote, and characters outside ASCII as \[uXXXX] escapes.
func escape(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\e"
        case "-": out += "\\-"
        default:
            if scalar.isASCII { out.unicodeScalars.append(scalar) }
            else { out += "\\[u" + String(format: "%04X", scalar.value) + "]" }
        }
    }
    if let first = out.first, first == "." || first == "'" { out = "\\&" + out }
    return out
}

func bold(_ text: String) -> String { "\\fB" + escape(text) + "\\fR" }
func italic(_ text: String) -> String { "\\fI" + escape(text) + "\\fR" }

/// A macro line with one quoted argument.
func macro(_ name: String, _ argument: String) -> String {
    "." + name + " \"" + escape(argument).replacingOccurrences(of: "\"", with: "\\(dq") + "\""
}

// MARK: - Discussion text

/// A paragraph's first line is a heading when it starts with a word of capitals (`EXAMPLES`,
/// `READS (stdin, or --input FILE)`), as the tools' `--help` texts write them.
func heading(of paragraph: [Substring]) -> String? {
    guard let first = paragraph.first, first.first?.isWhitespace == false, first.count <= 100 else { return nil }
    let words = first.split(separator: " ")
    let capitals = words.prefix { $0.count >= 2 && $0.allSatisfy { $0.isUppercase || $0 == "-" } }
    guard let lead = capitals.first, lead.count >= 3 else { return nil }
    let rest = words.dropFirst(capitals.count)
    guard rest.isEmpty || rest.first!.hasPrefix("(") else { return nil }
    return String(first)
}

/// Sections every man page reader looks for by name: lifted out of the description, after the options.
let standardSections: Set<String> = ["EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"]

struct Paragraph: Equatable {
    var heading: String?
    var lines: [Substring]
    /// Indent the lines share, which the page leaves out.
    var indent = 0

    /// Examples are set line for line, as typed.
    var isLiteral: Bool { heading == "EXAMPLES" }
}

func paragraphs(_ text: String) -> [Paragraph] {
    text.components(separatedBy: "\n\n").compactMap { block in
        var lines = block.split(separator: "\n", omittingEmptySubsequences: false)
        while lines.last?.allSatisfy(\.isWhitespace) == true { lines.removeLast() }
        while lines.first?.allSatisfy(\.isWhitespace) == true { lines.removeFirst() }
        guard !lines.isEmpty else { return nil }
        if let h = heading(of: lines) {
            // Under a heading, the text's common indent is the section's own.
            let rest = Array(lines.dropFirst())
            let indent = rest.filter { !$0.allSatisfy(\.isWhitespace) }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
            return Paragraph(heading: h, lines: rest, indent: indent)
        }
        return Paragraph(heading: nil, lines: lines)
    }
}

/// A discussion line of `--help`, as the page sets it.
enum Line {
    /// Unindented text: its own output line, filled to the page width.
    case text(String)
    /// Indented text (indent in characters): filled, wrapping under the indent.
    case indented(Int, String)
    /// An indented table row (`  NAME            alias production ...`): the first column, where
    /// the second starts, and the second.
    case row(Int, tag: String, column: Int, String)
}

func classify(_ lines: [Substring]) -> [Line] {
    /// Where a line's second column starts: after a short first column and two or more spaces.
    func column(_ text: Substring) -> (tag: Substring, column: Int, rest: Substring)? {
        guard let gap = text.range(of: "  "), text.distance(from: text.startIndex, to: gap.lowerBound) <= 24 else { return nil }
        let rest = text[gap.lowerBound...].drop { $0 == " " }
        guard !rest.isEmpty else { return nil }
        return (text[..<gap.lowerBound], text.distance(from: text.startIndex, to: rest.startIndex), rest)
    }
    // A table is indented rows whose second columns line up: a column two rows share.
    var columns: [String: Int] = [:]
    for line in lines {
        let indent = line.prefix { $0 == " " }.count
        if indent > 0, let c = column(line.dropFirst(indent)) { columns["\(indent):\(c.column)", default: 0] += 1 }
    }
    var out: [Line] = []
    for line in lines {
        let indent = line.prefix { $0 == " " }.count
        let text = line.dropFirst(indent)
        guard indent > 0 else { out.append(.text(String(text))); continue }
        if let c = column(text), columns["\(indent):\(c.column)", default: 0] >= 2 {
            out.append(.row(indent, tag: String(c.tag), column: c.column, String(c.rest)))
            continue
        }
        // `--help` keeps an indent only on lines the source breaks itself, so a long line followed by
        // one that goes on in lower case, at the same indent, is one sentence broken in two.
        if case .indented(let i, let previous)? = out.last, i == indent, previous.count + indent >= 70,
           text.first?.isLowercase == true {
            out[out.count - 1] = .indented(i, previous + " " + text)
            continue
        }
        out.append(.indented(indent, String(text)))
    }
    return out
}

/// A paragraph's lines, each on its own output line as `--help` keeps them, less `base` of their
/// indent. `literal` (examples) keeps every line exactly, unfilled.
func body(_ lines: [Substring], base: Int = 0, literal: Bool = false) -> [String] {
    if literal { return [".nf"] + lines.map { escape(String($0.dropFirst(base))) } + [".fi"] }
    var out: [String] = []
    var inTable = false
    for line in classify(lines) {
        if case .row = line {} else if inTable { out += [".PD", ".RE"]; inTable = false }
        switch line {
        case .text(let text):
            out += [escape(text), ".br"]
        case .indented(let indent, let text) where indent <= base:
            out += [escape(text), ".br"]
        case .indented(let indent, let text):
            out += [".RS \(indent - base)", escape(text), ".RE"]
        case .row(let indent, let tag, let column, let text):
            if !inTable { out += [".RS \(max(indent - base, 0))", ".PD 0"]; inTable = true }
            out += [".TP \(column)", escape(tag), escape(text)]
        }
    }
    if inTable { out += [".PD", ".RE"] }
    if out.last == ".br" { out.removeLast() }
    return out
}

func optionList(_ arguments: [ArgumentInfo]) -> [String] {
    var out: [String] = []
    for argument in arguments {
        out += [".TP", argument.label]
        var text: [Substring] = []
        if let abstract = argument.abstract { text += abstract.split(separator: "\n", omittingEmptySubsequences: false) }
        if let discussion = argument.discussion { text += discussion.split(separator: "\n", omittingEmptySubsequences: false) }
        text = text.filter { !$0.isEmpty }
        // What `--help` adds after the text: the values an option takes and its default.
        var notes: [String] = []
        if let values = argument.allValues, argument.kind != "flag" { notes.append("values: " + values.joined(separator: ", ")) }
        if let d = argument.defaultValue, argument.kind != "flag" { notes.append("default: " + d) }
        if !notes.isEmpty {
            let note = "(" + notes.joined(separator: "; ") + ")"
            if let last = text.popLast() { text.append(last + " " + note[...]) } else { text.append(note[...]) }
        }
        out += body(text)
    }
    return out
}

// MARK: - The page

/// The command and its arguments (a command with subcommands: SUBCOMMAND and OPTIONS, which the
/// subsections spell out). --help and --version, which every command takes, are left to OPTIONS.
func synopsis(_ command: CommandInfo) -> [String] {
    if !command.displayedSubcommands.isEmpty {
        let sub = italic("SUBCOMMAND")
        return [bold(command.fullName) + " " + (command.defaultSubcommand == nil ? sub : "[" + sub + "]") + " [" + italic("OPTIONS") + "]"]
    }
    let arguments = command.displayedArguments.filter { a in
        !(a.kind == "flag" && (a.names ?? []).contains { $0.kind == "long" && ($0.name == "help" || $0.name == "version") })
    }
    return [([bold(command.fullName)] + arguments.map(\.synopsis)).joined(separator: " ")]
}

/// A subcommand, as a subsection: its abstract, synopsis, discussion and options. A paragraph the
/// page already has as a section of its own (`shared`: the exit status table) is not repeated.
func subcommandSection(_ command: CommandInfo, defaultName: String?, shared: [Paragraph]) -> [String] {
    var out = [macro("SS", command.fullName + (command.commandName == defaultName ? " (default)" : ""))]
    if let abstract = command.abstract { out += body(abstract.split(separator: "\n")) + [".PP"] }
    out += synopsis(command)
    for p in paragraphs(command.discussion ?? "") where !shared.contains(p) {
        out.append(".PP")
        if let h = p.heading { out += [bold(h), ".br"] }
        out += body(p.lines, base: p.indent, literal: p.isLiteral)
    }
    if !command.displayedArguments.isEmpty { out += [".PP", bold("Options:")] + optionList(command.displayedArguments) }
    for sub in command.displayedSubcommands {
        out += subcommandSection(sub, defaultName: command.defaultSubcommand, shared: shared)
    }
    return out
}

func page(_ tool: ToolInfo, version: String) -> String {
    let command = tool.command
    var out = [
        ".\\\" Generated by gen-manpage from \(command.commandName)'s argument parser; do not edit.",
        ".TH \"\(escape(command.commandName.uppercased()))\" 1 \"\" \"\(escape(version))\" \"NER toolchain\"",
        ".ad l", ".nh",
        ".SH NAME",
        escape(command.commandName) + " \\- " + escape(command.abstract ?? ""),
        ".SH SYNOPSIS",
    ]
    out += synopsis(command)
    out.append(".SH DESCRIPTION")
    if let abstract = command.abstract { out += body(abstract.split(separator: "\n")) }
    var lifted: [Paragraph] = []
    for p in paragraphs(command.discussion ?? "") {
        if let h = p.heading, standardSections.contains(h) { lifted.append(p); continue }
        if let h = p.heading { out.append(macro("SS", h)) } else { out.append(".PP") }
        out += body(p.lines, base: p.indent, literal: p.isLiteral)
    }
    if !command.displayedArguments.isEmpty { out += [".SH OPTIONS"] + optionList(command.displayedArguments) }
    if !command.displayedSubcommands.isEmpty {
        out.append(".SH SUBCOMMANDS")
        if let d = command.defaultSubcommand {
            out += [".PP", "Without a subcommand, \(bold(command.commandName)) runs \(bold(d)).", ".PP"]
        }
        for sub in command.displayedSubcommands {
            out += subcommandSection(sub, defaultName: command.defaultSubcommand, shared: lifted)
        }
    }
    for p in lifted {
        out.append(macro("SH", p.heading!))
        out += body(p.lines, base: p.indent, literal: p.isLiteral)
    }
    return out.joined(separator: "\n") + "\n"
}

// MARK: - Main

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("gen-manpage: error: \(message)\n".utf8))
    exit(1)
}

/// Runs `tool` with `arguments` and returns its stdout; fails unless it exits 0.
func output(of tool: String, _ arguments: [String]) -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    do { try p.run() } catch { fail("\(tool): \(error.localizedDescription)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fail("\(tool) \(arguments.joined(separator: " ")) exited \(p.terminationStatus)") }
    return data
}

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 1, let tool = arguments.first, !tool.hasPrefix("-") else {
    fail("usage: gen-manpage TOOL > TOOL.1")
}
let info: ToolInfo
do {
    info = try JSONDecoder().decode(ToolInfo.self, from: output(of: tool, ["--experimental-dump-help"]))
} catch {
    fail("\(tool) --experimental-dump-help: \(error)")
}
guard info.serializationVersion == 0 else { fail("\(tool): unknown dump-help version \(info.serializationVersion)") }
let version = String(decoding: output(of: tool, ["--version"]), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
FileHandle.standardOutput.write(Data(page(info, version: "ner " + version).utf8))
