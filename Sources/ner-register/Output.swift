import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


// MARK: - Output helpers

func withAliases(_ m: ModelRow, _ aliases: [String]) -> JSON {
    var o = m.json
    o["aliases"] = .array(aliases.sorted().map(JSON.string))
    return o
}

func moveOutput(_ move: AliasMove?, name: String, alias: String, modelId: String) -> JSON {
    if var o = move?.json {
        o["changed"] = true
        return o
    }
    return ["schema": .int(Int64(recordSchema)), "type": "alias_move", "name": .string(name), "alias": .string(alias),
            "from_model": .string(modelId), "to_model": .string(modelId), "changed": false]
}

/// The dev F1 for tables.
func f1(_ model: ModelRow) -> String {
    model.metric("dev.f1").map { String(format: "%.4f", $0) } ?? "-"
}

func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows {
        for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    for r in [header] + rows {
        let cells = r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
        Output.line(cells.joined(separator: "  "))
    }
}
