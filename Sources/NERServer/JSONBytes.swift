import NERCore
import NERText

/// Response bodies written straight into bytes: the entity lists are the hot path, and JSONEncoder
/// would cost more than tokenizing the request.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// `[{"text": ..., "tag": ..., "start": ..., "end": ..., "score": ...}, ...]`, the keys in the order the
    /// cloud service wrote them.
    mutating func entities(_ list: [Entity]) {
        bytes.append(UInt8(ascii: "["))
        for (i, e) in list.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            raw("{\"text\":")
            string(e.text)
            raw(",\"tag\":")
            string(e.tag)
            raw(",\"start\":\(e.start),\"end\":\(e.end),\"score\":")
            number(e.score)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func entityLists(_ lists: [[Entity]]) {
        bytes.append(UInt8(ascii: "["))
        for (i, list) in lists.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            entities(list)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Any JSON value, object keys sorted (for the small, rare bodies: errors, status, models).
    mutating func value(_ v: JSON) { v.append(to: &bytes) }

    private mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }
    private mutating func number(_ d: Double) { JSON.appendNumber(d, to: &bytes) }
    private mutating func string(_ s: String) { JSON.appendString(s, to: &bytes) }
}
