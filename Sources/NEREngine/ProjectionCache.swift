import Foundation

/// Inference only: the input half of the LSTM gates (x·Wx of both directions, bias not added) for
/// recently seen tokens. It depends on nothing but the token's ids (word, casing, characters), so a
/// token met again skips its embedding lookups, the character convolution and the input product,
/// which together are over half of a forward pass's arithmetic. Text repeats its tokens a lot: on
/// CoNLL-2003 news, 8,192 entries cover about four tokens in five.
///
/// Bounded: `capacity` entries evicted by CLOCK (second chance, close to least-recently-used). Keys
/// are compared in full, never by hash alone. One lock, taken once per batch and per operation.
public final class ProjectionCache: @unchecked Sendable {
    public static let defaultCapacity = 8192

    let capacity: Int
    /// Floats per entry: 2 directions × 4 gates × hidden.
    let width: Int
    /// Int32s per key: word id, casing, character count, then up to `maxChars` characters.
    private let keyWidth: Int
    private let values: UnsafeMutablePointer<Float>
    private let keys: UnsafeMutablePointer<Int32>
    private var slotOf: [UInt64: Int32] = [:]
    private var hashOf: [UInt64]
    private var referenced: [Bool]
    private var used = 0
    private var hand = 0
    private let lock = NSLock()

    init(capacity: Int = ProjectionCache.defaultCapacity, hidden: Int, maxChars: Int) {
        self.capacity = capacity
        width = 8 * hidden
        keyWidth = 3 + maxChars
        // Pages are touched only as entries fill, so a lightly used cache costs little memory.
        values = .allocate(capacity: capacity * width)
        keys = .allocate(capacity: capacity * keyWidth)
        hashOf = [UInt64](repeating: 0, count: capacity)
        referenced = [Bool](repeating: false, count: capacity)
        slotOf.reserveCapacity(capacity)
    }

    deinit {
        values.deallocate()
        keys.deallocate()
    }

    /// A token's key, as the cache hashes and compares it.
    struct Key {
        var word: Int32
        var casing: UInt8
        var chars: UnsafeBufferPointer<Int32>

        func equals(_ o: Key) -> Bool { word == o.word && casing == o.casing && chars.elementsEqual(o.chars) }

        var hash: UInt64 {
            // FNV-1a over the ids, then a final mix so nearby ids spread over the table.
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            @inline(__always) func mix(_ v: Int32) { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x0000_0100_0000_01B3 }
            mix(word)
            mix(Int32(casing))
            for c in chars { mix(c) }
            h ^= h >> 33
            h = h &* 0xFF51_AFD7_ED55_8CCD
            return h ^ (h >> 33)
        }
    }

    /// Copies the entries of `count` keys into `dir0(i)` and `dir1(i)` (each 4 × hidden floats) where
    /// the cache holds them, and sets `found[i]` to whether it did; `hashes[i]` gets each key's hash.
    func fetch(count: Int, key: (Int) -> Key, hashes: UnsafeMutablePointer<UInt64>,
               into dir0: (Int) -> UnsafeMutablePointer<Float>, _ dir1: (Int) -> UnsafeMutablePointer<Float>,
               found: UnsafeMutablePointer<Bool>) {
        let half = width / 2
        for i in 0..<count { hashes[i] = key(i).hash }
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<count {
            found[i] = false
            guard let slot = slotOf[hashes[i]].map(Int.init), matches(slot, key(i)) else { continue }
            referenced[slot] = true
            let v = values + slot * width
            dir0(i).update(from: v, count: half)
            dir1(i).update(from: v + half, count: half)
            found[i] = true
        }
    }

    /// Stores `count` entries: key `key(i)`, hash `hashes[i]`, values `dir0(i)` and `dir1(i)`.
    func store(count: Int, key: (Int) -> Key, hashes: UnsafePointer<UInt64>,
               from dir0: (Int) -> UnsafePointer<Float>, _ dir1: (Int) -> UnsafePointer<Float>) {
        let half = width / 2
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<count {
            let k = key(i)
            // A token longer than the key holds, or a hash already taken (another thread stored the
            // same token, or two tokens share a hash), is simply not cached.
            if k.chars.count > keyWidth - 3 || slotOf[hashes[i]] != nil { continue }
            let slot: Int
            if used < capacity {
                slot = used
                used += 1
            } else {
                slot = victim()
                slotOf.removeValue(forKey: hashOf[slot])
            }
            slotOf[hashes[i]] = Int32(slot)
            hashOf[slot] = hashes[i]
            referenced[slot] = false
            let kp = keys + slot * keyWidth
            kp[0] = k.word
            kp[1] = Int32(k.casing)
            kp[2] = Int32(k.chars.count)
            if let base = k.chars.baseAddress { (kp + 3).update(from: base, count: k.chars.count) }
            let v = values + slot * width
            v.update(from: dir0(i), count: half)
            (v + half).update(from: dir1(i), count: half)
        }
    }

    private func matches(_ slot: Int, _ k: Key) -> Bool {
        let kp = keys + slot * keyWidth
        guard kp[0] == k.word, kp[1] == Int32(k.casing), Int(kp[2]) == k.chars.count else { return false }
        for (j, c) in k.chars.enumerated() where kp[3 + j] != c { return false }
        return true
    }

    /// The entry to replace once all are taken: the first the clock hand finds not used since it
    /// last passed (clearing the marks it passes over).
    private func victim() -> Int {
        while referenced[hand] {
            referenced[hand] = false
            hand = (hand + 1) % capacity
        }
        let slot = hand
        hand = (hand + 1) % capacity
        return slot
    }
}
