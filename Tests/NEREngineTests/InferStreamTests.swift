import Foundation
import NERCore
import Testing
import TestSupport

/// `ner-infer` as a stream: a long input comes back line for line, in order, in bounded memory.
@Suite struct InferStreamTests {
    @Test(.disabled(if: TestTools.sanitizer != nil, "peak memory is not bounded under a sanitizer"))
    func hundredThousandLinesKeepOrderInBoundedMemory() throws {
        let dir = TempDir("infer-stream")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(80, seed: 11))
        let trained = try run("ner-train", ["--output", dir.file("model"), "--quiet"],
                              stdin: Synthetic.job(train: train, dev: nil, epochs: 3))
        try #require(trained.status == 0, "\(trained.stderr)")

        func write(_ name: String, lines: Int) -> String {
            var text = ""
            text.reserveCapacity(lines * 90)
            for i in 0..<lines {
                let who = Synthetic.first[i % Synthetic.first.count], place = Synthetic.places[i % Synthetic.places.count]
                text += "Note \(i): \(who) visited \(place) on day \(i % 31) and then went home to rest quietly .\n"
            }
            return dir.write(name, text)
        }
        let args = ["--model", dir.file("model"), "--batch-lines", "1000", "--threads", "2"]
        let small = try runMeasuringMemory("ner-infer", args, input: write("small.txt", lines: 5_000), output: dir.file("small.out"))
        let big = try runMeasuringMemory("ner-infer", args, input: write("big.txt", lines: 100_000), output: dir.file("big.out"))
        #expect(small.status == 0 && big.status == 0)

        // Order: line i of the output is the record of line i of the input.
        let out = try #require(FileManager.default.contents(atPath: dir.file("big.out")))
        var count = 0, misplaced = 0
        for line in out.split(separator: UInt8(ascii: "\n")) {
            if !line.starts(with: #"{"text":"Note \#(count):"#.utf8) { misplaced += 1 }
            if count % 10_000 == 0 {
                let record = try JSON.parse(Data(line))
                #expect(record["entities"]?.arrayValue != nil, "\(String(decoding: line, as: UTF8.self))")
            }
            count += 1
        }
        #expect(count == 100_000)
        #expect(misplaced == 0)

        // A reader that goes away early ends the run quietly: exit 0, nothing on stderr.
        let early = try run("/bin/bash", ["-c", #""$0" "$@" --input "$BIG" 2>"$ERR" | head -1 >/dev/null; echo "${PIPESTATUS[0]}""#,
                                          TestTools.path("ner-infer"), "--model", dir.file("model"), "--quiet"],
                            env: ["BIG": dir.file("big.txt"), "ERR": dir.file("early.err")])
        #expect(early.stdout == "0\n")
        #expect((try? String(contentsOfFile: dir.file("early.err"), encoding: .utf8)) == "")

        // Bounded: twenty times the input (8.5 MB in, ~20 MB out) costs no more than a few MB of extra
        // peak memory; holding the input or the output would cost tens.
        #expect(small.peakKiB > 1_000 && big.peakKiB > 1_000, "no memory samples: \(small.peakKiB), \(big.peakKiB) KiB")
        #expect(big.peakKiB - small.peakKiB < 16_000, "peak \(small.peakKiB) KiB for 5,000 lines, \(big.peakKiB) KiB for 100,000")
    }
}
