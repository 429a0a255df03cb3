import Foundation

/// A job's `resources.time`, in the forms Slurm's `--time` accepts: `MM`, `MM:SS`, `HH:MM:SS`,
/// `D-HH`, `D-HH:MM`, `D-HH:MM:SS`; `UNLIMITED`, `INFINITE` and 0 mean no limit. The local backend
/// enforces it as Slurm does, so a job behaves the same on both.
public enum TimeLimit {
    /// The limit in seconds; nil for no limit. Throws a usage error naming the text when Slurm
    /// would refuse it.
    public static func seconds(_ text: String) throws -> Int? {
        let total = try parse(text)
        return total == 0 ? nil : total
    }

    static func parse(_ text: String) throws -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if ["UNLIMITED", "INFINITE"].contains(t.uppercased()) { return nil }
        func number(_ s: Substring) throws -> Int {
            guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else {
                throw ToolError.usage("time '\(clipped(text))' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
            }
            return n
        }
        let dash = t.split(separator: "-", omittingEmptySubsequences: false)
        guard dash.count <= 2 else { _ = try number(""); return nil }
        let parts = dash.last!.split(separator: ":", omittingEmptySubsequences: false)
        let n = try parts.map(number)
        if dash.count == 2 {
            let days = try number(dash[0])
            guard n.count <= 3 else { _ = try number(""); return nil }
            let h = n[0], m = n.count > 1 ? n[1] : 0, s = n.count > 2 ? n[2] : 0
            return ((days * 24 + h) * 60 + m) * 60 + s
        }
        switch n.count {
        case 1: return n[0] * 60
        case 2: return n[0] * 60 + n[1]
        case 3: return (n[0] * 60 + n[1]) * 60 + n[2]
        default: _ = try number(""); return nil
        }
    }
}
