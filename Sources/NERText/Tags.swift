/// One entity as a token range of a sentence: `start..<end`, end exclusive.
public struct EntitySpan: Hashable, Sendable {
    public var type: String
    public var start: Int
    public var end: Int

    public init(type: String, start: Int, end: Int) {
        self.type = type
        self.start = start
        self.end = end
    }
}

/// Tag sequences: entity spans and conversions between IOB1, BIO (IOB2) and BIOES.
///
/// Every function reads tags with the chunk rules of conlleval (as seqeval's default mode extends them to
/// BIOES), so IOB1, BIO and BIOES input all give the spans the standard scorer sees: `B-X` always starts
/// an entity, `I-X` after `O` or after another type starts one, a type change ends one, `E-X`/`S-X` end
/// one. A tag without a prefix other than `O` (`PER`, as in IO files) reads as `I-PER`.
public enum Tags {
    public static func spans(_ tags: [String]) -> [EntitySpan] {
        var result: [EntitySpan] = []
        var prev = ParsedTag.outside
        var begin = 0
        for i in 0...tags.count {
            let cur = i < tags.count ? ParsedTag(tags[i]) : .outside
            if ParsedTag.endsChunk(prev, cur) { result.append(EntitySpan(type: prev.type, start: begin, end: i)) }
            if ParsedTag.startsChunk(prev, cur) { begin = i }
            prev = cur
        }
        return result
    }

    /// Any scheme to BIO: each entity becomes `B-X I-X ...`.
    public static func toBIO(_ tags: [String]) -> [String] {
        var out = [String](repeating: "O", count: tags.count)
        for s in spans(tags) {
            out[s.start] = "B-" + s.type
            for i in (s.start + 1)..<s.end { out[i] = "I-" + s.type }
        }
        return out
    }

    /// BIO (or IOB1) to BIOES: single-token entities become `S-X`, longer ones `B-X I-X ... E-X`.
    public static func toBIOES(_ bio: [String]) -> [String] {
        var out = [String](repeating: "O", count: bio.count)
        for s in spans(bio) {
            if s.end - s.start == 1 {
                out[s.start] = "S-" + s.type
                continue
            }
            out[s.start] = "B-" + s.type
            for i in (s.start + 1)..<(s.end - 1) { out[i] = "I-" + s.type }
            out[s.end - 1] = "E-" + s.type
        }
        return out
    }

    /// BIOES to BIO.
    public static func fromBIOES(_ bioes: [String]) -> [String] { toBIO(bioes) }
}

/// A tag split into its prefix letter (`B`, `I`, `E`, `S`, `O`) and type.
struct ParsedTag {
    var prefix: UInt8
    var type: String

    static let outside = ParsedTag(prefix: UInt8(ascii: "O"), type: "")

    init(prefix: UInt8, type: String) {
        self.prefix = prefix
        self.type = type
    }

    init(_ tag: String) {
        let u = tag.utf8
        if tag == "O" {
            self = .outside
        } else if u.count >= 3, let first = u.first, u[u.index(after: u.startIndex)] == UInt8(ascii: "-"),
                  [UInt8(ascii: "B"), UInt8(ascii: "I"), UInt8(ascii: "E"), UInt8(ascii: "S")].contains(first) {
            self.init(prefix: first, type: String(tag.dropFirst(2)))
        } else {
            self.init(prefix: UInt8(ascii: "I"), type: tag)
        }
    }

    /// conlleval's `endOfChunk`, with seqeval's rules for `S`.
    static func endsChunk(_ prev: ParsedTag, _ cur: ParsedTag) -> Bool {
        let p = prev.prefix, c = cur.prefix
        let B = UInt8(ascii: "B"), I = UInt8(ascii: "I"), O = UInt8(ascii: "O"), E = UInt8(ascii: "E"), S = UInt8(ascii: "S")
        if p == O { return false }
        if p == E || p == S { return true }
        if (p == B || p == I) && (c == B || c == S || c == O) { return true }
        return prev.type != cur.type
    }

    /// conlleval's `startOfChunk`, with seqeval's rules for `S`.
    static func startsChunk(_ prev: ParsedTag, _ cur: ParsedTag) -> Bool {
        let p = prev.prefix, c = cur.prefix
        let I = UInt8(ascii: "I"), O = UInt8(ascii: "O"), E = UInt8(ascii: "E"), S = UInt8(ascii: "S"), B = UInt8(ascii: "B")
        if c == O { return false }
        if c == B || c == S { return true }
        if (p == E || p == S || p == O) && (c == E || c == I) { return true }
        return prev.type != cur.type
    }
}
