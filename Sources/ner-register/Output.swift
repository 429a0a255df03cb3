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

/// A model's metrics for people (docs/records.md): every figure that is not a set of scores as a
/// `metrics.KEY: value` line, then one table of every scored data set (an object with "f1"; its
/// "per_type" holds the entity types), a row per type after the row of all entities.
func printMetrics(_ metrics: JSON) {
    guard let fields = metrics.objectValue else {
        Output.line("metrics: \(metrics.compactString)")
        return
    }
    func isScores(_ v: JSON) -> Bool { v["f1"]?.doubleValue != nil }
    for (k, v) in fields.sorted(by: { $0.key < $1.key }) where !isScores(v) {
        Output.line("metrics.\(k): \(v.stringValue ?? v.compactString)")
    }
    func cells(_ set: String, _ type: String, _ s: JSON, support: JSON?) -> [String] {
        let rate = { (k: String) in s[k]?.doubleValue.map { String(format: "%.4f", $0) } ?? "-" }
        return [set, type, rate("precision"), rate("recall"), rate("f1"), support?.intValue.map(String.init) ?? "-"]
    }
    var rows: [[String]] = []
    for (set, scores) in fields.sorted(by: { $0.key < $1.key }) where isScores(scores) {
        rows.append(cells(set, "all", scores, support: scores["gold_count"]))
        for (type, s) in (scores["per_type"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            rows.append(cells(set, type, s, support: s["support"]))
        }
    }
    guard !rows.isEmpty else { return }
    Output.line("")
    printTable(["SET", "TYPE", "PRECISION", "RECALL", "F1", "SUPPORT"], rows)
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
