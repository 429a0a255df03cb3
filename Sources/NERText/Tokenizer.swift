/// A token of raw text: `start..<end` are Unicode-scalar offsets into the text it came from, and `text`
/// is exactly the scalars there.
public struct TextToken: Sendable, Equatable {
    public var text: String
    public var start: Int
    public var end: Int

    public init(text: String, start: Int, end: Int) {
        self.text = text
        self.start = start
        self.end = end
    }
}

/// Rule-based tokenization in the style of the CoNLL-2003 (Reuters) data the models learn from:
/// punctuation, brackets and quotes are tokens of their own; clitics split as `Germany 's`, `does n't`;
/// numbers (`1,000`, `3.5`, `10-2`, `1996-08-30`, `4:11.06`), hyphenated words (`Anglo-Dutch`),
/// abbreviations (`U.S.`, `Inc.`, `a.m.`), e-mail addresses and URLs stay whole.
///
/// It walks the text's Unicode scalars once with a hand-written scanner (no regular expressions), so it
/// tokenizes millions of characters per second.
public enum Tokenizer {
    /// Splits text into sentences of tokens with offsets into `text`. A sentence ends at `.`, `!`, `?`
    /// (and any closing quotes or brackets right after them) when the next token starts with a capital,
    /// a digit or an opening quote or bracket, and at every blank line; a period kept on an abbreviation
    /// (`Mr.`, `U.S.`) never ends one. Sentences longer than `maxTokens` are cut into pieces of that size,
    /// so one huge line cannot blow up the model's memory.
    public static func sentences(_ text: String, maxTokens: Int = 250) -> [[TextToken]] {
        var scanner = TokenScanner(text)
        scanner.run()
        let scalars = scanner.u
        let spans = scanner.tokens
        var result: [[TextToken]] = []
        var current: [TextToken] = []
        func close() {
            if !current.isEmpty { result.append(current) }
            current = []
        }
        var k = 0
        while k < spans.count {
            if scanner.paragraphStarts.contains(k) { close() }
            let (s, e) = spans[k]
            current.append(scanner.token(s, e))
            k += 1
            if TokenScanner.isTerminal(scalars, s, e) {
                // Closing quotes and brackets after the terminal belong to this sentence: those glued to
                // it, a straight double quote that closes an open one, and any at the very end.
                while k < spans.count, current.count < maxTokens, !scanner.paragraphStarts.contains(k),
                      TokenScanner.isCloser(scalars, spans[k].0, spans[k].1) {
                    let glued = spans[k].0 == spans[k - 1].1
                    let closesQuote = scalars[spans[k].0] == "\"" && openQuote(current)
                    guard glued || closesQuote || k == spans.count - 1 else { break }
                    current.append(scanner.token(spans[k].0, spans[k].1))
                    k += 1
                }
                if k < spans.count && TokenScanner.startsSentence(scalars, spans[k].0) { close() }
            }
            if current.count >= maxTokens { close() }
        }
        close()
        return result
    }

    /// Whether the sentence so far holds an odd number of straight double quotes.
    private static func openQuote(_ tokens: [TextToken]) -> Bool {
        tokens.reduce(0) { $0 + ($1.text == "\"" ? 1 : 0) } % 2 == 1
    }

    /// All tokens of `text`, without sentence splitting.
    public static func tokens(_ text: String) -> [TextToken] {
        var scanner = TokenScanner(text)
        scanner.run()
        return scanner.tokens.map { scanner.token($0.0, $0.1) }
    }
}

/// The scanner behind `Tokenizer`: finds token boundaries as scalar index pairs.
struct TokenScanner {
    let u: [Unicode.Scalar]
    let n: Int
    /// The text's UTF-8 bytes and, per scalar index, where that scalar's bytes start (one extra entry
    /// for the end), so a token's string is one copy of bytes rather than scalar-by-scalar appends.
    private let bytes: [UInt8]
    private let byteOffsets: [Int]
    var tokens: [(Int, Int)] = []
    /// Indices into `tokens` of tokens that follow a blank line.
    var paragraphStarts: Set<Int> = []
    /// Scalar index where the current line starts (for list numbers such as `1.` at a line start).
    private var lineStart = 0

    init(_ text: String) {
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(text.utf8.count)
        offsets.reserveCapacity(text.utf8.count + 1)
        var position = 0
        for c in text.unicodeScalars {
            scalars.append(c)
            offsets.append(position)
            position += UTF8.width(c)
        }
        offsets.append(position)
        u = scalars
        n = scalars.count
        bytes = Array(text.utf8)
        byteOffsets = offsets
        tokens.reserveCapacity(n / 4)
    }

    func token(_ s: Int, _ e: Int) -> TextToken {
        TextToken(text: String(decoding: bytes[byteOffsets[s]..<byteOffsets[e]], as: UTF8.self), start: s, end: e)
    }

    mutating func run() {
        var i = 0
        var newlines = 0
        while i < n {
            let c = u[i]
            if Self.isSpace(c) {
                if c == "\n" || c == "\u{2029}" {
                    newlines += 1
                    lineStart = i + 1
                }
                i += 1
                continue
            }
            if newlines >= 2 && !tokens.isEmpty { paragraphStarts.insert(tokens.count) }
            newlines = 0
            let end = tokenEnd(at: i)
            tokens.append((i, end))
            i = end
        }
    }

    /// The end of the token that starts at `i`.
    private func tokenEnd(at i: Int) -> Int {
        let c = u[i]
        let next: Unicode.Scalar? = i + 1 < n ? u[i + 1] : nil
        if Self.isAlnum(c) {
            if let e = urlEnd(at: i) { return e }
            return wordEnd(from: i)
        }
        switch c {
        case ".":
            if let x = next, Self.isDigit(x) { return wordEnd(from: i) }
            return run(of: ".", from: i)
        case "-":
            if let x = next, Self.isDigit(x), i == 0 || Self.isSpace(u[i - 1]) { return wordEnd(from: i) }
            return run(of: "-", from: i)
        case "'", "\u{2019}":
            if let len = cliticLength(at: i) { return i + len }
            if let x = next, Self.isDigit(x) { return wordEnd(from: i) }
            return run(of: c, from: i)
        case "`":
            return run(of: "`", from: i)
        case "+":
            if let x = next, Self.isDigit(x) { return wordEnd(from: i) }
            return i + 1
        case "#", "@":
            if let x = next, Self.isAlnum(x) { return wordEnd(from: i) }
            return i + 1
        case "!", "?":
            var j = i + 1
            while j < n && (u[j] == "!" || u[j] == "?") { j += 1 }
            return j
        default:
            if Self.isEmoji(c) {
                var j = i + 1
                while j < n && (Self.isEmoji(u[j]) || Self.isEmojiJoiner(u[j])) { j += 1 }
                return j
            }
            if Self.isMark(c) { return wordEnd(from: i) }
            return i + 1
        }
    }

    private func run(of c: Unicode.Scalar, from i: Int) -> Int {
        var j = i + 1
        while j < n && u[j] == c { j += 1 }
        return j
    }

    /// Scans a word-like token: letters and digits joined by the punctuation that stays inside CoNLL
    /// tokens (`U.S.`, `1,000`, `4:11.06`, `Anglo-Dutch`, `O'Brien`, `AT&T`, `C$`, `6=`).
    private func wordEnd(from i0: Int) -> Int {
        var i = i0 + 1
        while i < n {
            let c = u[i]
            let next: Unicode.Scalar? = i + 1 < n ? u[i + 1] : nil
            if Self.isAlnum(c) || Self.isMark(c) {
                if (c == "n" || c == "N"), i > i0, isNegation(at: i) { return i }
                i += 1
                continue
            }
            switch c {
            case ".":
                if let x = next, Self.isAlnum(x) { i += 1; continue }
                if next == "-", i + 2 < n, Self.isAlnum(u[i + 2]) { i += 2; continue }
                if next == "." { return i }
                return keepsPeriod(wordStart: i0, dot: i) ? i + 1 : i
            case ",", ":", "\u{2013}":
                if Self.isDigit(u[i - 1]), let x = next, Self.isDigit(x) { i += 1; continue }
                return i
            case "-":
                if let x = next, Self.isAlnum(x) { i += 1; continue }
                // A dangling hyphen stays on its word, as CoNLL writes `multi- and` and `6- 2`.
                if next == nil || Self.isSpace(next!) { return i + 1 }
                return i
            case "'", "\u{2019}":
                if cliticLength(at: i) != nil { return i }
                if let x = next, Self.isLetter(x) { i += 1; continue }
                return i
            case "/", "&":
                if Self.isAlnum(u[i - 1]), let x = next, Self.isAlnum(x) { i += 1; continue }
                return i
            case "@":
                if let x = next, Self.isAlnum(x) { i += 1; continue }
                return i
            case "+", "=", "_":
                i += 1
            case "$":
                if !Self.isLetter(u[i - 1]) { return i }
                i += 1
                // `C$` and `US$` are tokens of their own, apart from the amount (`C$ 100`).
                if i < n && Self.isDigit(u[i]) { return i }
            default:
                return i
            }
        }
        return n
    }

    /// `http://...`, `https://...` and `www....` run to the next space, less trailing punctuation.
    private func urlEnd(at i: Int) -> Int? {
        guard u[i] == "h" || u[i] == "w" else { return nil }
        func has(_ prefix: String) -> Bool {
            var j = i
            for p in prefix.unicodeScalars {
                guard j < n, u[j] == p else { return false }
                j += 1
            }
            return true
        }
        guard has("http://") || has("https://") || has("www.") else { return nil }
        var j = i
        while j < n && !Self.isSpace(u[j]) { j += 1 }
        while j > i + 4, Self.isTrailingURLPunctuation(u[j - 1]) { j -= 1 }
        return j
    }

    /// The length of a clitic (`'s`, `'re`, `'ve`, `'ll`, `'d`, `'m`, any case, `'` or `’`) starting at
    /// `i`, when one does and no letter follows it.
    private func cliticLength(at i: Int) -> Int? {
        guard i + 1 < n else { return nil }
        func lower(_ k: Int) -> UInt32 { k < n ? (u[k].value | 0x20) : 0 }
        func endsAt(_ k: Int) -> Bool { k >= n || !Self.isLetter(u[k]) }
        let a = lower(i + 1)
        if a == 0x73 || a == 0x64 || a == 0x6D { return endsAt(i + 2) ? 2 : nil }  // s d m
        let b = lower(i + 2)
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {  // re ve ll
            return endsAt(i + 3) ? 3 : nil
        }
        return nil
    }

    /// `n't` (any case, `'` or `’`) at `i`, ending the word.
    private func isNegation(at i: Int) -> Bool {
        guard i + 2 < n, u[i + 1] == "'" || u[i + 1] == "\u{2019}", u[i + 2].value | 0x20 == 0x74 else { return false }
        return i + 3 >= n || !Self.isLetter(u[i + 3])
    }

    /// Whether the period at `dot` belongs to the word `wordStart..<dot` (an abbreviation) rather than
    /// being a token of its own. At the end of the text it never does: CoNLL writes a sentence-final
    /// `U.S.` as `U.S .`.
    private func keepsPeriod(wordStart a: Int, dot: Int) -> Bool {
        var j = dot + 1
        while j < n && (Self.isCloserScalar(u[j]) || Self.isSpace(u[j])) { j += 1 }
        if j >= n { return false }
        var k = dot + 1
        while k < n && Self.isSpace(u[k]) { k += 1 }
        let following = u[k]

        let length = dot - a
        if length == 1 && Self.isLetter(u[a]) { return true }
        var letters = true, digits = true, innerDot = false
        for x in a..<dot {
            if u[x] == "." { innerDot = true; digits = false }
            else if Self.isLetter(u[x]) { digits = false }
            else if Self.isDigit(u[x]) { letters = false }
            else { letters = false; digits = false }
        }
        if letters && innerDot { return true }
        if letters && length <= 6 {
            var word = ""
            word.unicodeScalars.append(contentsOf: u[a..<dot])
            if Abbreviations.always.contains(word) { return true }
            if Abbreviations.beforeNumber.contains(word) { return Self.isDigit(following) }
        }
        // A list number at the start of a line: `1. Michelle Freeman ( Jamaica ) 12.71`.
        if digits && length <= 3 && k > dot + 1 {
            var m = a - 1
            while m >= lineStart && Self.isSpace(u[m]) { m -= 1 }
            if m < lineStart { return true }
        }
        // A period followed by a lower-case word or a comma is not the end of a sentence.
        if Self.isLowercase(following) || (k == dot + 1 && (following == "," || following == ";")) { return true }
        return false
    }

    // MARK: - Sentence boundaries

    static func isTerminal(_ u: [Unicode.Scalar], _ s: Int, _ e: Int) -> Bool {
        let c = u[s]
        if c == "!" || c == "?" || c == "\u{2026}" { return true }
        if c == "." { return (s..<e).allSatisfy { u[$0] == "." } }
        return false
    }

    static func isCloser(_ u: [Unicode.Scalar], _ s: Int, _ e: Int) -> Bool {
        (s..<e).allSatisfy { isCloserScalar(u[$0]) }
    }

    static func startsSentence(_ u: [Unicode.Scalar], _ s: Int) -> Bool {
        let c = u[s]
        if isUppercase(c) || isDigit(c) { return true }
        switch c {
        case "\"", "'", "`", "(", "[", "\u{201C}", "\u{2018}", "\u{00AB}": return true
        default: return false
        }
    }

    // MARK: - Character classes (ASCII fast path, Unicode properties otherwise)

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) || v < 0x20 || v == 0x7F }
        if v == 0x200B || v == 0xFEFF || v == 0x2060 { return true }
        return c.properties.isWhitespace || c.properties.generalCategory == .control
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        return c.properties.generalCategory == .decimalNumber
    }

    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    static func isAlnum(_ c: Unicode.Scalar) -> Bool { isLetter(c) || isDigit(c) }

    static func isMark(_ c: Unicode.Scalar) -> Bool {
        guard c.value >= 0x300 else { return false }
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    static func isUppercase(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x41 && v <= 0x5A }
        return c.properties.generalCategory == .uppercaseLetter || c.properties.generalCategory == .titlecaseLetter
    }

    static func isLowercase(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x61 && v <= 0x7A }
        return c.properties.generalCategory == .lowercaseLetter
    }

    static func isEmoji(_ c: Unicode.Scalar) -> Bool {
        c.value >= 0x2000 && (c.properties.isEmojiPresentation || c.properties.isEmoji)
    }

    /// Scalars that glue emoji into one symbol: ZWJ, variation selectors, skin tones, tags, keycaps.
    static func isEmojiJoiner(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        return v == 0x200D || v == 0xFE0F || v == 0xFE0E || v == 0x20E3 || (v >= 0x1F3FB && v <= 0x1F3FF)
            || (v >= 0xE0020 && v <= 0xE007F)
    }

    static func isCloserScalar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "\"", "'", ")", "]", "}", "\u{201D}", "\u{2019}", "\u{00BB}": return true
        default: return false
        }
    }

    static func isTrailingURLPunctuation(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case ".", ",", ";", ":", "!", "?", ")", "]", "}", "\"", "'", "\u{201D}", "\u{2019}", ">": return true
        default: return false
        }
    }
}
