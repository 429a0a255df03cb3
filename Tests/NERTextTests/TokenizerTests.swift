import NERText
import Testing

@Suite struct TokenizerTests {
    /// Token texts of each sentence, after checking every token's offsets against the input.
    func split(_ text: String, maxTokens: Int = 250) -> [[String]] {
        let scalars = Array(text.unicodeScalars)
        let sentences = Tokenizer.sentences(text, maxTokens: maxTokens)
        var last = 0
        for t in sentences.joined() {
            var s = ""
            s.unicodeScalars.append(contentsOf: scalars[t.start..<t.end])
            #expect(s == t.text, "offsets \(t.start)..<\(t.end) of \(text)")
            #expect(t.start >= last && t.end > t.start)
            last = t.end
        }
        return sentences.map { $0.map(\.text) }
    }

    func words(_ text: String) -> [String] { split(text).flatMap { $0 } }

    @Test func closersAfterASentenceEndDoNotPassMaxTokens() {
        let text = "They left." + String(repeating: ")", count: 10) + " Then"
        let sentences = split(text, maxTokens: 4)
        #expect(sentences.allSatisfy { $0.count <= 4 }, "\(sentences)")
        #expect(sentences.flatMap { $0 } == ["They", "left", "."] + Array(repeating: ")", count: 10) + ["Then"])
    }

    @Test func clitics() {
        #expect(words("Germany's representative to the European Union's committee")
                == ["Germany", "'s", "representative", "to", "the", "European", "Union", "'s", "committee"])
        #expect(words("He doesn't know, can't go and won't stay") ==
                ["He", "does", "n't", "know", ",", "ca", "n't", "go", "and", "wo", "n't", "stay"])
        #expect(words("I'm sure they're here and we've seen you'll go, he'd say") ==
                ["I", "'m", "sure", "they", "'re", "here", "and", "we", "'ve", "seen", "you", "'ll", "go", ",", "he", "'d", "say"])
        #expect(words("SILVA'S LOST PASSPORT DON'T") == ["SILVA", "'S", "LOST", "PASSPORT", "DO", "N'T"])
        #expect(words("the players' union and it’s O'Brien's d'affaires gov't") ==
                ["the", "players", "'", "union", "and", "it", "’s", "O'Brien", "'s", "d'affaires", "gov't"])
    }

    @Test func numbersAndHyphensStayWhole() {
        #expect(words("Unilever paid $1,000 and C$3.5 million on 1996-08-30, winning 10-2 at 4:11.06 (+0.578).") ==
                ["Unilever", "paid", "$", "1,000", "and", "C$", "3.5", "million", "on", "1996-08-30", ",", "winning",
                 "10-2", "at", "4:11.06", "(", "+0.578", ")", "."])
        #expect(words("The Anglo-Dutch 20-year-old rose 50% to .526 on 1/2 of AT&T") ==
                ["The", "Anglo-Dutch", "20-year-old", "rose", "50", "%", "to", ".526", "on", "1/2", "of", "AT&T"])
        #expect(words("a multi- and cross-border deal -- quietly") ==
                ["a", "multi-", "and", "cross-border", "deal", "--", "quietly"])
        #expect(words("word--word, 3,4 and a,b") == ["word", "--", "word", ",", "3,4", "and", "a", ",", "b"])
    }

    @Test func abbreviationsKeepTheirPeriod() {
        #expect(split("Mr. Smith of Acme Inc. met U.S. officials at 10 a.m. on Oct. 3. He left.") == [
            ["Mr.", "Smith", "of", "Acme", "Inc.", "met", "U.S.", "officials", "at", "10", "a.m.", "on", "Oct.", "3", "."],
            ["He", "left", "."],
        ])
        // At the end of the text the period is a token of its own, as CoNLL writes it.
        #expect(split("Mexican avocados not expected in U.S.") == [["Mexican", "avocados", "not", "expected", "in", "U.S", "."]])
        #expect(words("ST. LOUIS beat No. 1 seed J. Smith vs. Fla. State") ==
                ["ST.", "LOUIS", "beat", "No.", "1", "seed", "J.", "Smith", "vs.", "Fla.", "State"])
        #expect(words("He said No. Then") == ["He", "said", "No", ".", "Then"])
        #expect(words("The U.S.-led force") == ["The", "U.S.-led", "force"])
    }

    @Test func listNumbersAtLineStart() {
        #expect(split("1. Michelle Freeman ( Jamaica ) 12.71 seconds") ==
                [["1.", "Michelle", "Freeman", "(", "Jamaica", ")", "12.71", "seconds"]])
        #expect(split("He won in 1996. Then he retired.") == [["He", "won", "in", "1996", "."], ["Then", "he", "retired", "."]])
    }

    @Test func punctuationAndQuotes() {
        #expect(split("\"I am here,\" he said (quietly); \"really?!\" Yes...") == [
            ["\"", "I", "am", "here", ",", "\"", "he", "said", "(", "quietly", ")", ";", "\"", "really", "?!", "\""],
            ["Yes", "..."],
        ])
        #expect(words("He said “hello” and ‘bye’ [sic] {x}") ==
                ["He", "said", "“", "hello", "”", "and", "‘", "bye", "’", "[", "sic", "]", "{", "x", "}"])
    }

    @Test func sentenceSplitting() {
        #expect(split("Mr. Smith went to Washington. He met Dr. Jones there! Did he? \"Yes.\" Then 3 more.") == [
            ["Mr.", "Smith", "went", "to", "Washington", "."],
            ["He", "met", "Dr.", "Jones", "there", "!"],
            ["Did", "he", "?"],
            ["\"", "Yes", ".", "\""],
            ["Then", "3", "more", "."],
        ])
        #expect(split("it rose 3.5 percent. and then fell") == [["it", "rose", "3.5", "percent.", "and", "then", "fell"]])
        #expect(split("LONDON 1996-08-30\n\nWest Indian all-rounder\nPhil Simmons took four") ==
                [["LONDON", "1996-08-30"], ["West", "Indian", "all-rounder", "Phil", "Simmons", "took", "four"]])
        #expect(split(" \" I 'm fine . \" ") == [["\"", "I", "'m", "fine", ".", "\""]])
    }

    @Test func urlsAndEmail() {
        #expect(split("See https://example.com/a?b=1. Mail jeffrey.hodgson@reuters.com or www.reuters.com, now") == [
            ["See", "https://example.com/a?b=1", "."],
            ["Mail", "jeffrey.hodgson@reuters.com", "or", "www.reuters.com", ",", "now"],
        ])
    }

    @Test func nonASCIIOffsetsCountScalars() {
        let tokens = Tokenizer.sentences("Zürich 😀 is in Switzerland. Café au lait 👨‍👩‍👧!").joined().map { $0 }
        #expect(tokens.map(\.text) == ["Zürich", "😀", "is", "in", "Switzerland", ".", "Café", "au", "lait", "👨‍👩‍👧", "!"])
        #expect((tokens[0].start, tokens[0].end) == (0, 6))
        #expect((tokens[1].start, tokens[1].end) == (7, 8))
        #expect((tokens[2].start, tokens[2].end) == (9, 11))
        #expect((tokens[9].start, tokens[9].end) == (41, 46))
        // A decomposed é (e + combining acute) stays inside its word.
        #expect(words("Cafe\u{301} Zu\u{308}rich") == ["Cafe\u{301}", "Zu\u{308}rich"])
        #expect(words("São Paulo 北京 Ελλάδα") == ["São", "Paulo", "北京", "Ελλάδα"])
        #expect(words("great😀😀 ok") == ["great", "😀😀", "ok"])
    }

    @Test func emptyAndLongInput() {
        #expect(Tokenizer.sentences("").isEmpty)
        #expect(Tokenizer.sentences(" \t\n\n \u{00A0}\u{FEFF}").isEmpty)
        let long = Array(repeating: "word", count: 600).joined(separator: " ")
        #expect(split(long, maxTokens: 250).map(\.count) == [250, 250, 100])
        #expect(Tokenizer.tokens("a bc. C").map(\.text) == ["a", "bc", ".", "C"])
    }
}

@Suite struct TokenizerFuzzTests {
    /// Random text from characters the scanner treats specially: every token must be the exact text at
    /// its offsets, tokens must not overlap or hold whitespace, and no non-space character may be lost.
    @Test func randomTextKeepsEveryCharacter() {
        let alphabet = Array("aZ09 .,;:'’\"“”()-–—$%&/+=@#_!?…`\n\t\u{00A0}é\u{301}ü😀\u{200D}👩n'tsS.U.S.http://www.".unicodeScalars)
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func random(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        for _ in 0..<2000 {
            var text = ""
            for _ in 0..<random(40) { text.unicodeScalars.append(alphabet[random(alphabet.count)]) }
            let scalars = Array(text.unicodeScalars)
            let tokens = Tokenizer.sentences(text, maxTokens: 7).flatMap { $0 }
            var covered = [Bool](repeating: false, count: scalars.count)
            var last = 0
            for t in tokens {
                #expect(t.start >= last && t.end > t.start && t.end <= scalars.count, "\(text.debugDescription)")
                guard t.start >= last, t.end > t.start, t.end <= scalars.count else { break }
                var s = ""
                s.unicodeScalars.append(contentsOf: scalars[t.start..<t.end])
                #expect(s == t.text)
                for i in t.start..<t.end {
                    covered[i] = true
                    #expect(!scalars[i].properties.isWhitespace, "\(text.debugDescription)")
                }
                last = t.end
            }
            for (i, c) in scalars.enumerated() where !covered[i] {
                #expect(c.properties.isWhitespace, "lost \(c) in \(text.debugDescription)")
            }
        }
    }
}
