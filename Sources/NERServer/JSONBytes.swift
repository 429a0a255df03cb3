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
    mutating func value(_ v: JSON) {
        switch v {
        case .null: raw("null")
        case .bool(let b): raw(b ? "true" : "false")
        case .int(let i): raw(String(i))
        case .double(let d): number(d)
        case .string(let s): string(s)
        case .array(let a):
            bytes.append(UInt8(ascii: "["))
            for (i, x) in a.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                value(x)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let o):
            bytes.append(UInt8(ascii: "{"))
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                string(key)
                bytes.append(UInt8(ascii: ":"))
                value(o[key]!)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func raw(_ s: String) {
        bytes.append(contentsOf: s.utf8)
    }

    private mutating func number(_ d: Double) {
        if !d.isFinite { raw("0") } else if d.rounded() == d && abs(d) < 1e15 { raw(String(Int64(d))) } else { raw(String(d)) }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, JSONBytes.hex[Int(b >> 4)], JSONBytes.hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
