import Foundation

/// The word-shape classes the tagger sees beside the lower-cased word: GloVe and the vocabulary are
/// case-folded, so capitalisation (the strongest single cue for names) comes back in through these.
enum Casing {
    static let count = 7

    static func of(_ word: String) -> Int {
        var upper = 0, lower = 0, digits = 0, other = 0, total = 0
        var firstUpper = false
        for s in word.unicodeScalars {
            let v = s.value
            // ASCII without the Unicode property tables, which cost more than the rest of encoding.
            let p = v < 0x80 ? nil : s.properties
            let isUpper = p?.isUppercase ?? (v >= 0x41 && v <= 0x5A)
            let isLower = p?.isLowercase ?? (v >= 0x61 && v <= 0x7A)
            if isUpper { upper += 1; if total == 0 { firstUpper = true } }
            else if isLower { lower += 1 }
            else if v >= 0x30 && v <= 0x39 { digits += 1 }
            else { other += 1 }
            total += 1
        }
        if digits > 0 && upper + lower == 0 { return 0 }   // numbers: 1996, 3-1, 10.5
        if digits > 0 { return 1 }                         // mixed with digits: F16, 2nd
        if upper + lower == 0 { return 2 }                 // punctuation and symbols
        if upper == 0 { return 3 }                         // all lower
        if lower == 0 { return 4 }                         // all caps: EU, NATO
        if firstUpper { return 5 }                         // Title case
        return 6                                           // mixed: iPhone, McDonald
    }
}

/// The tags the CRF predicts: BIOES over the entity types, "O" first. BIOES makes span ends explicit,
/// which a first-order CRF uses; the allowed-transition mask keeps every decoded path well formed.
public struct TagSet: Sendable, Equatable {
    public let types: [String]
    public let tags: [String]
    let index: [String: Int]
    /// allowed[a * K + b]: may tag b follow tag a.
    var allowed: [Bool]
    var allowedStart: [Bool]
    var allowedEnd: [Bool]

    public init(types: [String]) {
        self.types = types
        var tags = ["O"]
        for t in types { tags += ["B-\(t)", "I-\(t)", "E-\(t)", "S-\(t)"] }
        self.tags = tags
        var index: [String: Int] = [:]
        for (i, t) in tags.enumerated() { index[t] = i }
        self.index = index
        let k = tags.count
        func split(_ i: Int) -> (Character, Int) { i == 0 ? ("O", -1) : (Array("BIES")[(i - 1) % 4], (i - 1) / 4) }
        allowed = Array(repeating: false, count: k * k)
        allowedStart = Array(repeating: false, count: k)
        allowedEnd = Array(repeating: false, count: k)
        for a in 0..<k {
            let (pa, ta) = split(a)
            allowedStart[a] = pa == "O" || pa == "B" || pa == "S"
            allowedEnd[a] = pa == "O" || pa == "E" || pa == "S"
            for b in 0..<k {
                let (pb, tb) = split(b)
                let inside = pa == "B" || pa == "I"
                allowed[a * k + b] = inside ? ((pb == "I" || pb == "E") && ta == tb) : (pb == "O" || pb == "B" || pb == "S")
            }
        }
    }

    public var count: Int { tags.count }

    /// Entity types seen in BIO tag sequences, sorted.
    static func types(in tagSequences: [[String]]) -> [String] {
        var set = Set<String>()
        for seq in tagSequences {
            for t in seq where t.count > 2 && t.dropFirst().first == "-" { set.insert(String(t.dropFirst(2))) }
        }
        return set.sorted()
    }

    /// Also allows whatever transitions the gold data uses, so an odd training file cannot make
    /// its own gold path impossible (an infinite loss).
    mutating func allow(_ seq: [Int]) {
        guard let f = seq.first, let l = seq.last else { return }
        allowedStart[f] = true
        allowedEnd[l] = true
        for i in 1..<max(seq.count, 1) { allowed[seq[i - 1] * count + seq[i]] = true }
    }
}

/// One sentence as the network reads it.
public struct EncodedSentence: Sendable {
    public var words: [Int32]
    /// Character ids of every token, concatenated; `charStarts[i]..<charStarts[i+1]` is token i.
    public var chars: [Int32]
    public var charStarts: [Int32]
    public var casing: [UInt8]
    /// Gold tag ids (BIOES), empty when unknown.
    public var tags: [Int32]
    public var count: Int { words.count }
}

/// Maps tokens to ids: the word table (lower-cased, with a digit-folded fallback) and the characters.
struct Encoder {
    let words: WordTable
    let chars: [Unicode.Scalar: Int32]
    let maxWordChars: Int
    /// `chars` for ASCII, read without hashing: most tokens of most text are ASCII.
    private let asciiChars: [Int32]

    init(words: WordTable, chars: [Unicode.Scalar: Int32], maxWordChars: Int) {
        self.words = words
        self.chars = chars
        self.maxWordChars = maxWordChars
        asciiChars = (0..<128).map { chars[Unicode.Scalar(UInt8($0))] ?? 0 }
    }

    static func wordKey(_ w: String) -> String { w.lowercased() }

    static func digitFolded(_ key: String) -> String {
        String(String.UnicodeScalarView(key.unicodeScalars.map { ($0.value >= 0x31 && $0.value <= 0x39) ? "0" : $0 }))
    }

    func wordId(_ token: String) -> Int32 {
        var t = token
        if let id = t.withUTF8({ asciiWordId($0) }) { return id }
        let key = Encoder.wordKey(token)
        if let i = words.lookup(key) { return i }
        if let i = words.lookup(Encoder.digitFolded(key)) { return i }
        return 0
    }

    /// `wordId` for an ASCII token, lower-cased and digit-folded in a stack buffer instead of new
    /// strings (the same keys, as both foldings only touch ASCII); nil for any other token.
    private func asciiWordId(_ utf8: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard utf8.count <= 64, utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(utf8.count, 1)) { key in
            for (i, b) in utf8.enumerated() { key[i] = b >= 0x41 && b <= 0x5A ? b + 0x20 : b }
            let k = UnsafeBufferPointer(rebasing: key[0..<utf8.count])
            if let i = words.lookup(bytes: k) { return i }
            var folded = false
            for i in 0..<utf8.count where key[i] >= 0x31 && key[i] <= 0x39 {
                key[i] = 0x30
                folded = true
            }
            return folded ? words.lookup(bytes: k) ?? 0 : 0
        }
    }

    func encode(_ tokens: [String], tags: [Int32] = []) -> EncodedSentence {
        var s = EncodedSentence(words: [], chars: [], charStarts: [0], casing: [], tags: tags)
        s.words.reserveCapacity(tokens.count)
        s.casing.reserveCapacity(tokens.count)
        s.charStarts.reserveCapacity(tokens.count + 1)
        for t in tokens {
            s.words.append(wordId(t))
            s.casing.append(UInt8(Casing.of(t)))
            var n = 0
            for c in t.unicodeScalars {
                if n == maxWordChars { break }
                s.chars.append(c.value < 128 ? asciiChars[Int(c.value)] : chars[c] ?? 0)
                n += 1
            }
            if n == 0 { s.chars.append(0) }
            s.charStarts.append(Int32(s.chars.count))
        }
        return s
    }
}
