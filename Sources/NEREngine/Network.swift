import Foundation
import NERCore

/// A batch's ids laid out time-major, as the CPU and GPU paths both read them: the rows of step t
/// are `stepStart[t] + i` for the sentences i that reach it. Sentences of one length (training)
/// make that `t * n + i`; inference also takes mixed lengths, longest first, so the sentences that
/// reach a step are always the first few and no row is padding. Arrays keep their capacity from
/// batch to batch.
struct TimeMajorIds {
    private(set) var n = 0
    /// The longest sentence's length.
    private(set) var length = 0
    private(set) var lengths: [Int] = []
    /// Where each step's rows begin, and the row count last.
    private(set) var stepStart: [Int] = [0]
    var rows: Int { stepStart[length] }
    private(set) var words: [Int32] = []
    private(set) var casing: [UInt8] = []
    /// Gold tags; empty when any sentence of the batch has none.
    private(set) var tags: [Int32] = []
    /// Every token's characters, concatenated; token `row`'s are `charStarts[row]..<charStarts[row + 1]`.
    private(set) var tokenChars: [Int32] = []
    private(set) var charStarts: [Int32] = [0]

    /// Calls `body` with a function giving each row's cache key (valid only inside `body`).
    func withKeys<R>(_ body: ((Int) -> ProjectionCache.Key) -> R) -> R {
        tokenChars.withUnsafeBufferPointer { all in
            body { row in
                let lo = Int(charStarts[row]), hi = Int(charStarts[row + 1])
                return ProjectionCache.Key(word: words[row], casing: casing[row], chars: UnsafeBufferPointer(rebasing: all[lo..<hi]))
            }
        }
    }

    mutating func load<C: Collection>(_ batch: C) where C.Element == EncodedSentence {
        n = batch.count
        lengths.removeAll(keepingCapacity: true)
        lengths.append(contentsOf: batch.lazy.map(\.count))
        length = lengths.first ?? 0
        precondition(zip(lengths, lengths.dropFirst()).allSatisfy { $0 >= $1 }, "sentences must come longest first")
        stepStart.removeAll(keepingCapacity: true)
        words.removeAll(keepingCapacity: true)
        casing.removeAll(keepingCapacity: true)
        tags.removeAll(keepingCapacity: true)
        tokenChars.removeAll(keepingCapacity: true)
        charStarts.removeAll(keepingCapacity: true)
        charStarts.append(0)
        let hasTags = batch.allSatisfy { $0.tags.count == $0.count }
        for t in 0..<length {
            stepStart.append(words.count)
            for s in batch {
                if t >= s.count { break }
                words.append(s.words[t])
                casing.append(s.casing[t])
                if hasTags { tags.append(s.tags[t]) }
                let lo = Int(s.charStarts[t]), hi = Int(s.charStarts[t + 1])
                tokenChars.append(contentsOf: s.chars[lo..<hi])
                charStarts.append(Int32(tokenChars.count))
            }
        }
        stepStart.append(words.count)
    }
}

/// The fast path: forward and backward for a batch laid out time-major, so every step of the LSTM
/// is one GEMM over the batch. Training batches have one length, so no padding or masking is
/// needed; inference (`forward(_:cache:)`) takes mixed lengths. One workspace per thread; buffers
/// grow to the largest batch seen and are then reused.
final class Workspace {
    /// The loaded batch's ids.
    private(set) var ids = TimeMajorIds()
    var n: Int { ids.n }
    var length: Int { ids.length }
    var rows: Int { ids.rows }

    let x = Scratch<Float>(), maskX = Scratch<Float>(), cols = Scratch<Float>(), convOut = Scratch<Float>()
    let argmax = Scratch<Int32>()
    let gates = [Scratch<Float>(), Scratch<Float>()], cells = [Scratch<Float>(), Scratch<Float>()]
    let tanhCells = [Scratch<Float>(), Scratch<Float>()]
    let hcat = Scratch<Float>(), maskH = Scratch<Float>(), hdrop = Scratch<Float>(), emissions = Scratch<Float>()
    let dEmissions = Scratch<Float>(), dH = Scratch<Float>(), dGates = Scratch<Float>(), dX = Scratch<Float>()
    let dhRec = Scratch<Float>(), dcRec = Scratch<Float>()
    let crf = CRFScratch()
    let allRows = Scratch<Int32>(), backRows = Scratch<Int32>(), rowHashes = Scratch<UInt64>(), rowFound = Scratch<Bool>()
    let missFirstRow = Scratch<Int32>(), rowMiss = Scratch<Int32>(), missHashesScratch = Scratch<UInt64>()
    let missProjections = Scratch<Float>()
    let hSteps = [Scratch<Float>(), Scratch<Float>()]
    private var missByHash: [UInt64: Int32] = [:]
    private let transposes = ForwardWeights()
    var dropoutUsed = false

    /// Loads sentences (of one length for training; longest first for `forward(_:cache:)`).
    func load<C: Collection>(_ batch: C) where C.Element == EncodedSentence { ids.load(batch) }

    /// Computes the emissions (rows × K). `dropout` > 0 draws masks from `rng` (training).
    func forward(_ p: Parameters, dropout: Float, rng: inout SeededRandom) {
        let c = p.config
        let r = rows, d = c.inputDim, h = c.hidden, g4 = 4 * h
        let wt = weights(p)
        let all = allRows.reserve(r)
        for i in 0..<r { all[i] = Int32(i) }
        let xp = embed(p, wt, tokens: all, count: r)
        dropoutUsed = dropout > 0
        if dropoutUsed {
            let keep = 1 / (1 - dropout)
            let mx = maskX.reserve(r * d), mh = maskH.reserve(r * 2 * h)
            for i in 0..<(r * d) { mx[i] = rng.unit() < dropout ? 0 : keep; xp[i] *= mx[i] }
            for i in 0..<(r * 2 * h) { mh[i] = rng.unit() < dropout ? 0 : keep }
        }
        // The bias is added in each step's activation pass rather than copied into every row before
        // this product (a 1.6 KB copy per token and direction, and a GEMM that reads C).
        for dir in 0..<2 { gemm(false, false, r, g4, d, xp, d, wt.wx[dir], g4, 0, gates[dir].reserve(r * g4), g4) }
        recurAndEmit(p, wt)
    }

    /// Inference over sentences of any lengths, longest first: each direction steps through its
    /// sentences from their own first (forward) or last (backward) token, the sentences still going
    /// at step s being the first few, so each step is one product over those. With a `cache`, each
    /// token's input projection comes from there when it holds one; the others are computed, each
    /// distinct token once, and stored.
    func forward(_ p: Parameters, cache: ProjectionCache?) {
        let wt = weights(p)
        emit(p, wt, hidden: hiddenStates(p, wt, cache: cache))
    }

    /// The BiLSTM's output for the loaded batch (lengths longest first), as `forward(_:cache:)`
    /// computes it: row `stepStart[t] + i` holds token t of sentence i, forward state then backward.
    func hiddenStates(_ p: Parameters, cache: ProjectionCache?) -> UnsafePointer<Float> {
        hiddenStates(p, weights(p), cache: cache)
    }

    private func hiddenStates(_ p: Parameters, _ wt: ForwardWeights, cache: ProjectionCache?) -> UnsafePointer<Float> {
        let c = p.config
        let r = rows, d = c.inputDim, h = c.hidden, g4 = 4 * h
        let lengths = ids.lengths, start = ids.stepStart
        dropoutUsed = false
        // Gates in step order, both directions laid out like the tokens: row `start[s] + i` is step
        // s of sentence i, which is token s going forward and token length - 1 - s going backward.
        // back[row] is where the token in `row` sits in the backward direction's order.
        let g0 = gates[0].reserve(r * g4), g1 = gates[1].reserve(r * g4)
        let back = backRows.reserve(r)
        for t in 0..<length {
            for i in 0..<(start[t + 1] - start[t]) { back[start[t] + i] = Int32(start[lengths[i] - 1 - t] + i) }
        }
        let hashes = rowHashes.reserve(r), found = rowFound.reserve(r)
        let firstRow = missFirstRow.reserve(r), missOf = rowMiss.reserve(r)
        let missHashes = missHashesScratch.reserve(r)
        let projections = missProjections
        ids.withKeys { key in
            // The distinct tokens to compute: firstRow[m] is where miss m first occurs, missOf[row] its
            // m. Without a cache every token is computed, repeats included.
            var misses = 0
            if let cache {
                cache.fetch(count: r, key: key, hashes: hashes, into: { g0 + $0 * g4 }, { g1 + Int(back[$0]) * g4 }, found: found)
                missByHash.removeAll(keepingCapacity: true)
                for row in 0..<r where !found[row] {
                    if let m = missByHash[hashes[row]] {
                        // Another token with the same hash (rare) is computed on its own, undeduplicated.
                        if key(Int(firstRow[Int(m)])).equals(key(row)) { missOf[row] = m; continue }
                    } else {
                        missByHash[hashes[row]] = Int32(misses)
                    }
                    firstRow[misses] = Int32(row)
                    missHashes[misses] = hashes[row]
                    missOf[row] = Int32(misses)
                    misses += 1
                }
            } else {
                for row in 0..<r {
                    found[row] = false
                    firstRow[row] = Int32(row)
                    missOf[row] = Int32(row)
                }
                misses = r
            }
            guard misses > 0 else { return }
            // With a cache, products of one fixed shape (blocks of 8 rows, the last padded with
            // zeros): OpenBLAS picks its kernel, and so its rounding, by shape, and a token's cached
            // value must not depend on which batch happened to see it first, or answers would vary
            // from run to run.
            let block = cache == nil ? nil : 8
            let padded = block.map { (misses + $0 - 1) / $0 * $0 } ?? misses
            let xp = embed(p, wt, tokens: firstRow, count: misses, rows: padded, block: block)
            let proj = projections.reserve(padded * 2 * g4)
            let step = block ?? padded
            for b in stride(from: 0, to: padded, by: step) {
                for dir in 0..<2 {
                    gemm(false, false, step, g4, d, xp + b * d, d, wt.wx[dir], g4, 0, proj + b * 2 * g4 + dir * g4, 2 * g4)
                }
            }
            if let cache {
                cache.store(count: misses, key: { key(Int(firstRow[$0])) }, hashes: missHashes,
                            from: { UnsafePointer(proj + $0 * 2 * g4) }, { UnsafePointer(proj + $0 * 2 * g4 + g4) })
            }
            for row in 0..<r where !found[row] {
                let src = proj + Int(missOf[row]) * 2 * g4
                (g0 + row * g4).update(from: src, count: g4)
                (g1 + Int(back[row]) * g4).update(from: src + g4, count: g4)
            }
        }
        // Each direction's hidden states in step order, then side by side in token order.
        let hs = [hSteps[0].reserve(r * h), hSteps[1].reserve(r * h)]
        for dir in 0..<2 {
            let g = gates[dir].pointer, cell = cells[dir].reserve(r * h), tc = tanhCells[dir].reserve(r * h)
            for s in 0..<length {
                let at = start[s], active = start[s + 1] - at
                let gt = g + at * g4
                if s > 0 { gemm(false, false, active, g4, h, hs[dir] + start[s - 1] * h, h, wt.wh[dir], g4, 1, gt, g4) }
                lstmStep(p, dir: dir, rows: active, gates: gt, previousCell: s > 0 ? cell + start[s - 1] * h : nil,
                         cell: cell + at * h, tanhCell: tc + at * h, h: hs[dir] + at * h, hStride: h)
            }
        }
        let hc = hcat.reserve(r * 2 * h)
        for row in 0..<r {
            (hc + row * 2 * h).update(from: hs[0] + row * h, count: h)
            (hc + row * 2 * h + h).update(from: hs[1] + Int(back[row]) * h, count: h)
        }
        return UnsafePointer(hc)
    }

    private func weights(_ p: Parameters) -> ForwardWeights {
        p.frozenTransposes ?? { transposes.fill(from: p); return transposes }()
    }

    /// Both LSTM directions over the input projections in `gates`, then the emissions.
    private func recurAndEmit(_ p: Parameters, _ wt: ForwardWeights) {
        let r = rows, h = p.config.hidden
        let hc = hcat.reserve(r * 2 * h)
        for dir in 0..<2 { lstmForward(p, wt, dir: dir, hcat: hc) }
        var hd = UnsafePointer(hc)
        if dropoutUsed {
            let out = hdrop.reserve(r * 2 * h), mh = maskH.pointer
            for i in 0..<(r * 2 * h) { out[i] = hc[i] * mh[i] }
            hd = UnsafePointer(out)
        }
        emit(p, wt, hidden: hd)
    }

    /// The emissions (rows × K) from the rows' concatenated hidden states.
    private func emit(_ p: Parameters, _ wt: ForwardWeights, hidden: UnsafePointer<Float>) {
        let r = rows, h = p.config.hidden, k = p.config.tagCount
        let e = emissions.reserve(r * k)
        for row in 0..<r { (e + row * k).update(from: p.pointer(p.layout.outB), count: k) }
        gemm(false, false, r, k, 2 * h, hidden, 2 * h, wt.outW, k, 1, e, k)
    }

    /// The network's input rows for `count` tokens, row j for token `tokens[j]`: word vector,
    /// character features, casing one-hot, then zero rows up to `rows`. Each column is written, so
    /// the buffer is not zeroed first.
    /// `block` runs the character convolution in products of that many rows (see `forward(_:cache:)`).
    private func embed(_ p: Parameters, _ wt: ForwardWeights, tokens: UnsafePointer<Int32>, count: Int,
                       rows: Int? = nil, block: Int? = nil) -> UnsafeMutablePointer<Float> {
        let c = p.config
        let d = c.inputDim, dw = c.wordDim, f = c.charFeatures
        let xp = x.reserve((rows ?? count) * d)
        (xp + count * d).update(repeating: 0, count: ((rows ?? count) - count) * d)
        for j in 0..<count {
            let row = Int(tokens[j])
            (xp + j * d).update(from: p.words + Int(ids.words[row]) * dw, count: dw)
            let onehot = xp + j * d + dw + f
            onehot.update(repeating: 0, count: Casing.count)
            onehot[Int(ids.casing[row])] = 1
        }
        if c.charDim > 0 { charForward(p, wt, tokens: tokens, count: count, xp, block: block) }
        return xp
    }

    /// im2col over every character of the tokens, one GEMM for the convolution, max over each word.
    /// With all rows in order (training), character positions match the batch's, as `charBackward` expects.
    private func charForward(_ p: Parameters, _ wt: ForwardWeights, tokens: UnsafePointer<Int32>, count: Int,
                             _ xp: UnsafeMutablePointer<Float>, block: Int? = nil) {
        let c = p.config, l = p.layout
        let dc = c.charDim, win = c.charWindow, f = c.charFilters, d = c.inputDim, dw = c.wordDim
        let width = win * dc, half = win / 2
        var total = 0
        for j in 0..<count {
            let tok = Int(tokens[j])
            total += Int(ids.charStarts[tok + 1] - ids.charStarts[tok])
        }
        // Every slot is written below, so only windows that hang over a word's edge are zeroed
        // rather than the whole buffer first.
        let padded = block.map { (total + $0 - 1) / $0 * $0 } ?? total
        let colp = cols.reserve(padded * width)
        (colp + total * width).update(repeating: 0, count: (padded - total) * width)
        let emb = p.pointer(l.charEmb)
        var at = 0
        for j in 0..<count {
            let tok = Int(tokens[j])
            let lo = Int(ids.charStarts[tok]), hi = Int(ids.charStarts[tok + 1])
            for pos in lo..<hi {
                for w in 0..<win {
                    let src = pos + w - half, dst = colp + (at + pos - lo) * width + w * dc
                    if src < lo || src >= hi {
                        dst.update(repeating: 0, count: dc)
                    } else {
                        dst.update(from: emb + Int(ids.tokenChars[src]) * dc, count: dc)
                    }
                }
            }
            at += hi - lo
        }
        let out = convOut.reserve(padded * f)
        for i in 0..<padded { (out + i * f).update(from: p.pointer(l.convB), count: f) }
        let step = block ?? max(total, 1)
        for b in stride(from: 0, to: padded, by: step) {
            gemm(false, false, min(step, padded - b), f, width, colp + b * width, width, wt.convW, f, 1, out + b * f, f)
        }
        let arg = argmax.reserve(count * f)
        at = 0
        for j in 0..<count {
            let tok = Int(tokens[j])
            let n = Int(ids.charStarts[tok + 1] - ids.charStarts[tok])
            let dst = xp + j * d + dw, am = arg + j * f
            // Positions outermost, so the running maximum vectorises over the filters.
            for q in 0..<f {
                dst[q] = out[at * f + q]
                am[q] = Int32(at)
            }
            for pos in (at + 1)..<max(at + n, at + 1) {
                let o = out + pos * f, p32 = Int32(pos)
                for q in 0..<f {
                    let better = o[q] > dst[q]
                    dst[q] = better ? o[q] : dst[q]
                    am[q] = better ? p32 : am[q]
                }
            }
            at += n
        }
    }

    /// One direction's recurrence; `gates[dir]` holds the input projections (bias not yet added).
    private func lstmForward(_ p: Parameters, _ wt: ForwardWeights, dir: Int, hcat hc: UnsafeMutablePointer<Float>) {
        let h = p.config.hidden, g4 = 4 * h, n = self.n
        let g = gates[dir].pointer, cell = cells[dir].reserve(rows * h), tc = tanhCells[dir].reserve(rows * h)
        let hOff = dir * h
        for s in 0..<length {
            let t = dir == 0 ? s : length - 1 - s
            let prevT = dir == 0 ? t - 1 : t + 1
            let gt = g + t * n * g4
            if s > 0 { gemm(false, false, n, g4, h, hc + prevT * n * 2 * h + hOff, 2 * h, wt.wh[dir], g4, 1, gt, g4) }
            lstmStep(p, dir: dir, rows: n, gates: gt, previousCell: s > 0 ? cell + prevT * n * h : nil,
                     cell: cell + t * n * h, tanhCell: tc + t * n * h, h: hc + t * n * 2 * h + hOff, hStride: 2 * h)
        }
    }

    /// One LSTM step for `rows` sentences: adds the bias to their gate pre-activations (input and
    /// recurrent products), applies the activations in place (kept for the backward pass), and
    /// writes the cells, their tanh and the hidden states (rows `hStride` apart).
    @inline(__always)
    private func lstmStep(_ p: Parameters, dir: Int, rows n: Int, gates gt: UnsafeMutablePointer<Float>,
                          previousCell: UnsafePointer<Float>?, cell ct: UnsafeMutablePointer<Float>,
                          tanhCell tt: UnsafeMutablePointer<Float>, h hp: UnsafeMutablePointer<Float>, hStride: Int) {
        let h = p.config.hidden, g4 = 4 * h
        let bias = p.pointer(p.layout.b[dir])
        // The step's gates and cells are contiguous, so each activation is one long vector loop over
        // the whole step; loops per row left a scalar remainder in every row (h = 100 is not a
        // multiple of 8). tanh(x) = 2 sigmoid(2x) - 1 lets one sigmoid loop cover all four gates.
        for i in 0..<n {
            let gr = gt + i * g4, gc = gr + 2 * h
            for j in 0..<g4 { gr[j] += bias[j] }
            for j in 0..<h { gc[j] *= 2 }
        }
        for q in 0..<(n * g4) { gt[q] = sigmoid(gt[q]) }
        for i in 0..<n {
            let gr = gt + i * g4, cr = ct + i * h
            for j in (2 * h)..<(3 * h) { gr[j] = 2 * gr[j] - 1 }
            if let previousCell {
                let cp = previousCell + i * h
                for j in 0..<h { cr[j] = gr[h + j] * cp[j] + gr[j] * gr[2 * h + j] }
            } else {
                for j in 0..<h { cr[j] = gr[j] * gr[2 * h + j] }
            }
        }
        for q in 0..<(n * h) { tt[q] = fastTanh(ct[q]) }
        for i in 0..<n {
            let gr = gt + i * g4, tr = tt + i * h, hr = hp + i * hStride
            for j in 0..<h { hr[j] = gr[3 * h + j] * tr[j] }
        }
    }

    /// CRF loss for the loaded gold tags; with `grads`, backpropagates loss × `scale` into the
    /// dense gradient block and leaves the input gradient in `dX` (word columns: `wordGradients`).
    func backward(_ p: Parameters, tagSet: TagSet, tables: CRFTables, grads: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let c = p.config, l = p.layout
        let r = rows, h = c.hidden, k = c.tagCount, n = self.n, d = c.inputDim
        let e = UnsafePointer(emissions.pointer)
        let de = dEmissions.zeroed(r * k)
        var loss = 0.0
        let gs = grads ?? dEmissions.pointer
        for i in 0..<n {
            loss += crf.forwardBackward({ e + ($0 * n + i) * k }, length: length, tables,
                                        gold: { Int(self.ids.tags[$0 * n + i]) }, scale: scale,
                                        dE: { de + ($0 * n + i) * k },
                                        dTrans: grads == nil ? nil : gs + l.trans.offset,
                                        dStart: grads == nil ? nil : gs + l.start.offset,
                                        dEnd: grads == nil ? nil : gs + l.end.offset)
        }
        guard let grads else { return loss }
        let hd = UnsafePointer(dropoutUsed ? hdrop.pointer : hcat.pointer)
        gemm(true, false, k, 2 * h, r, de, k, hd, 2 * h, 1, grads + l.outW.offset, 2 * h)
        let dOutB = grads + l.outB.offset
        for row in 0..<r { for j in 0..<k { dOutB[j] += de[row * k + j] } }
        let dh = dH.reserve(r * 2 * h)
        gemm(false, false, r, 2 * h, k, de, k, p.pointer(l.outW), 2 * h, 0, dh, 2 * h)
        if dropoutUsed { let m = maskH.pointer; for i in 0..<(r * 2 * h) { dh[i] *= m[i] } }
        let dx = dX.zeroed(r * d)
        let xin = UnsafePointer(x.pointer)
        for dir in 0..<2 { lstmBackward(p, dir: dir, input: xin, dh: dh, dx: dx, grads: grads) }
        if dropoutUsed { let m = maskX.pointer; for i in 0..<(r * d) { dx[i] *= m[i] } }
        if c.charDim > 0 { charBackward(p, dx: dx, grads: grads) }
        return loss
    }

    private func lstmBackward(_ p: Parameters, dir: Int, input: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                              dx: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>) {
        let c = p.config, l = p.layout
        let r = rows, d = c.inputDim, h = c.hidden, g4 = 4 * h, n = self.n, hOff = dir * h
        let g = gates[dir].pointer, cell = cells[dir].pointer, tc = tanhCells[dir].pointer, hc = hcat.pointer
        let dg = dGates.reserve(r * g4)
        let dhr = dhRec.zeroed(n * h), dcr = dcRec.zeroed(n * h)
        let wh = p.pointer(l.wh[dir])
        for s in stride(from: length - 1, through: 0, by: -1) {
            let t = dir == 0 ? s : length - 1 - s
            let prevT = dir == 0 ? t - 1 : t + 1
            for i in 0..<n {
                let row = t * n + i
                let gr = g + row * g4, dgr = dg + row * g4
                for j in 0..<h {
                    let ig = gr[j], fg = gr[h + j], cg = gr[2 * h + j], og = gr[3 * h + j]
                    let tv = tc[row * h + j]
                    let dhv = dh[row * 2 * h + hOff + j] + dhr[i * h + j]
                    let dc = dhv * og * (1 - tv * tv) + dcr[i * h + j]
                    let cprev: Float = s > 0 ? cell[(prevT * n + i) * h + j] : 0
                    dgr[j] = dc * cg * ig * (1 - ig)
                    dgr[h + j] = dc * cprev * fg * (1 - fg)
                    dgr[2 * h + j] = dc * ig * (1 - cg * cg)
                    dgr[3 * h + j] = dhv * tv * og * (1 - og)
                    dcr[i * h + j] = dc * fg
                }
            }
            if s > 0 { gemm(false, false, n, h, g4, dg + t * n * g4, g4, wh, h, 0, dhr, h) }
        }
        // Recurrent weights: gates at step t pair with h at the previous step in this direction.
        if length > 1 {
            let m = (length - 1) * n
            let (gStart, hStart) = dir == 0 ? (n, 0) : (0, n)
            gemm(true, false, g4, h, m, dg + gStart * g4, g4, hc + hStart * 2 * h + hOff, 2 * h, 1,
                 grads + l.wh[dir].offset, h)
        }
        gemm(true, false, g4, d, r, dg, g4, input, d, 1, grads + l.wx[dir].offset, d)
        let db = grads + l.b[dir].offset
        for row in 0..<r { for j in 0..<g4 { db[j] += dg[row * g4 + j] } }
        gemm(false, false, r, d, g4, dg, g4, p.pointer(l.wx[dir]), d, 1, dx, d)
    }

    private func charBackward(_ p: Parameters, dx: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>) {
        let c = p.config, l = p.layout
        let dc = c.charDim, win = c.charWindow, f = c.charFilters, d = c.inputDim, dw = c.wordDim
        let width = win * dc, half = win / 2
        let colp = cols.pointer, arg = argmax.pointer, w = p.pointer(l.convW)
        let dW = grads + l.convW.offset, dB = grads + l.convB.offset, dEmb = grads + l.charEmb.offset
        for tok in 0..<rows {
            let lo = Int(ids.charStarts[tok]), hi = Int(ids.charStarts[tok + 1])
            for j in 0..<f {
                let gv = dx[tok * d + dw + j]
                if gv == 0 { continue }
                let at = Int(arg[tok * f + j])
                dB[j] += gv
                let src = colp + at * width, dst = dW + j * width
                for q in 0..<width { dst[q] += gv * src[q] }
                for wi in 0..<win {
                    let pos = at + wi - half
                    if pos < lo || pos >= hi { continue }
                    let e = dEmb + Int(ids.tokenChars[pos]) * dc, wr = w + j * width + wi * dc
                    for q in 0..<dc { e[q] += gv * wr[q] }
                }
            }
        }
    }

    /// Gradient of the loss with respect to row `row`'s word vector (valid after `backward`).
    func wordGradient(_ row: Int, config c: ModelConfig) -> UnsafePointer<Float> { UnsafePointer(dX.pointer + row * c.inputDim) }

    /// Viterbi paths and their per-token marginal probabilities for the loaded batch (lengths
    /// longest first); sentence i's tag at step t goes to `out[i][t]`.
    func decode(tables: CRFTables, k: Int, tags out: inout [[Int32]], scores: inout [[Float]]) {
        let e = UnsafePointer(emissions.pointer), n = self.n, lengths = ids.lengths
        let path = crf.viterbi(e, lengths: lengths, stepStart: ids.stepStart, tables)
        let marg = crf.marginals(e, lengths: lengths, stepStart: ids.stepStart, tables)
        out = (0..<n).map { i in (0..<lengths[i]).map { path[$0 * n + i] } }
        scores = (0..<n).map { i in (0..<lengths[i]).map { Float(marg[($0 * k + Int(path[$0 * n + i])) * n + i]) } }
    }
}
