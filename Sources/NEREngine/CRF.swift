import Foundation

/// The linear-chain CRF over one sentence's emissions, in Double. Forward-backward runs in
/// probability space with per-step normalisation (one exp per tag per step instead of one per
/// tag pair); disallowed transitions have probability 0.
struct CRFTables {
    let k: Int
    var expTrans: [Double]
    var expStart: [Double]
    var expEnd: [Double]
    var logTrans: [Double]
    var logStart: [Double]
    var logEnd: [Double]
    /// The allowed pairs, as compressed rows: the tags a that may precede tag b are
    /// `fromTags[fromStart[b]..<fromStart[b + 1]]`, the tags b that may follow a likewise in `to*`.
    /// BIOES allows about a third of all pairs; skipping the others changes no sum or maximum.
    var fromStart: [Int], fromTags: [Int]
    var toStart: [Int], toTags: [Int]

    /// The tables of `p`'s current CRF weights.
    init(_ p: Parameters, tags: TagSet) {
        let l = p.layout
        self.init(trans: p.pointer(l.trans), start: p.pointer(l.start), end: p.pointer(l.end), tags: tags)
    }

    init(trans: UnsafePointer<Float>, start: UnsafePointer<Float>, end: UnsafePointer<Float>, tags: TagSet) {
        k = tags.count
        let k = self.k
        (fromStart, fromTags) = ([0], [])
        (toStart, toTags) = ([0], [])
        for x in 0..<k {
            for y in 0..<k {
                if tags.allowed[y * k + x] { fromTags.append(y) }
                if tags.allowed[x * k + y] { toTags.append(y) }
            }
            fromStart.append(fromTags.count)
            toStart.append(toTags.count)
        }
        expTrans = (0..<(k * k)).map { tags.allowed[$0] ? exp(Double(trans[$0])) : 0 }
        expStart = (0..<k).map { tags.allowedStart[$0] ? exp(Double(start[$0])) : 0 }
        expEnd = (0..<k).map { tags.allowedEnd[$0] ? exp(Double(end[$0])) : 0 }
        logTrans = (0..<(k * k)).map { tags.allowed[$0] ? Double(trans[$0]) : -.infinity }
        logStart = (0..<k).map { tags.allowedStart[$0] ? Double(start[$0]) : -.infinity }
        logEnd = (0..<k).map { tags.allowedEnd[$0] ? Double(end[$0]) : -.infinity }
    }
}

/// Per-thread scratch for the CRF; sized for the largest batch seen.
final class CRFScratch {
    let alpha = Scratch<Double>(), beta = Scratch<Double>(), expE = Scratch<Double>(), norm = Scratch<Double>()
    let back = Scratch<Int32>(), path = Scratch<Int32>()

    /// Runs forward-backward on emissions `e` (T×K, row stride `stride`) and returns the loss, log Z
    /// minus the score of the `gold` path. Writes d(loss)/d(emission) × `scale` into `dE` (same
    /// stride) and accumulates the transition gradients.
    func forwardBackward(_ e: (Int) -> UnsafePointer<Float>, length t: Int, _ tab: CRFTables,
                         gold: (Int) -> Int, scale: Float,
                         dE: (Int) -> UnsafeMutablePointer<Float>,
                         dTrans: UnsafeMutablePointer<Float>? = nil, dStart: UnsafeMutablePointer<Float>? = nil,
                         dEnd: UnsafeMutablePointer<Float>? = nil) -> Double {
        let k = tab.k
        let al = alpha.reserve(t * k), be = beta.reserve(t * k), ex = expE.reserve(t * k), s = norm.reserve(t + 1)
        var logZ = 0.0
        for step in 0..<t {
            let row = e(step)
            var m = -Double.infinity
            for b in 0..<k { m = max(m, Double(row[b])) }
            for b in 0..<k { ex[step * k + b] = exp(Double(row[b]) - m) }
            var sum = 0.0
            for b in 0..<k {
                var v: Double
                if step == 0 {
                    v = tab.expStart[b]
                } else {
                    v = 0
                    let prev = al + (step - 1) * k
                    for i in tab.fromStart[b]..<tab.fromStart[b + 1] {
                        let a = tab.fromTags[i]
                        v += prev[a] * tab.expTrans[a * k + b]
                    }
                }
                v *= ex[step * k + b]
                al[step * k + b] = v
                sum += v
            }
            for b in 0..<k { al[step * k + b] /= sum }
            s[step] = sum
            logZ += m + log(sum)
        }
        var zEnd = 0.0
        for b in 0..<k { zEnd += al[(t - 1) * k + b] * tab.expEnd[b] }
        logZ += log(zEnd)
        for a in 0..<k { be[(t - 1) * k + a] = tab.expEnd[a] / zEnd }
        if t > 1 {
            for step in stride(from: t - 2, through: 0, by: -1) {
                let next = be + (step + 1) * k, en = ex + (step + 1) * k, sn = s[step + 1]
                for a in 0..<k {
                    var v = 0.0
                    for i in tab.toStart[a]..<tab.toStart[a + 1] {
                        let b = tab.toTags[i]
                        v += tab.expTrans[a * k + b] * en[b] * next[b]
                    }
                    be[step * k + a] = v / sn
                }
            }
        }
        // Pairwise marginals need alpha before it is turned into node marginals.
        if let dTrans {
            for step in 1..<max(t, 1) {
                let prev = al + (step - 1) * k, cur = be + step * k, en = ex + step * k, sn = s[step]
                for a in 0..<k where prev[a] != 0 {
                    for i in tab.toStart[a]..<tab.toStart[a + 1] {
                        let b = tab.toTags[i]
                        dTrans[a * k + b] += scale * Float(prev[a] * tab.expTrans[a * k + b] * en[b] * cur[b] / sn)
                    }
                }
                dTrans[gold(step - 1) * k + gold(step)] -= scale
            }
        }
        var goldScore = 0.0
        for step in 0..<t {
            let g = gold(step), d = dE(step), row = e(step)
            for b in 0..<k { d[b] = scale * Float(al[step * k + b] * be[step * k + b]) }
            d[g] -= scale
            goldScore += Double(row[g])
            if step > 0 { goldScore += tab.logTrans[gold(step - 1) * k + g] }
        }
        goldScore += tab.logStart[gold(0)] + tab.logEnd[gold(t - 1)]
        if let dStart, let dEnd {
            for b in 0..<k {
                dStart[b] += scale * Float(al[b] * be[b])
                dEnd[b] += scale * Float(al[(t - 1) * k + b] * be[(t - 1) * k + b])
            }
            dStart[gold(0)] -= scale
            dEnd[gold(t - 1)] -= scale
        }
        return logZ - goldScore
    }

    /// The best tag paths (Viterbi, in log space) of a time-major batch: emission row
    /// `stepStart[t] + i` is sentence i at step t, n = `lengths.count`, lengths longest first (see
    /// `TimeMajorIds`). Returns the tags as `[t * n + i]`. Scores are kept tag-major with the
    /// sentences innermost, so every step is a few loops over the sentences still going that
    /// vectorise; one sentence at a time it was scalar code over 17 tags.
    func viterbi(_ e: UnsafePointer<Float>, lengths: [Int], stepStart: [Int], _ tab: CRFTables) -> UnsafePointer<Int32> {
        let k = tab.k, n = lengths.count, t = lengths.first ?? 0
        @inline(__always) func going(_ step: Int) -> Int { stepStart[step + 1] - stepStart[step] }
        let score = alpha.reserve(2 * k * n), bp = back.reserve(t * k * n), out = path.reserve(t * n)
        for b in 0..<k {
            let cur = score + b * n, ls = tab.logStart[b]
            for i in 0..<n { cur[i] = ls + Double(e[i * k + b]) }
        }
        for step in 1..<max(t, 1) {
            let active = going(step)
            let prev = score + ((step - 1) & 1) * k * n, row = e + stepStart[step] * k
            for b in 0..<k {
                let cur = score + ((step & 1) * k + b) * n, arg = bp + (step * k + b) * n
                for i in 0..<active { cur[i] = -.infinity; arg[i] = 0 }
                for q in tab.fromStart[b]..<tab.fromStart[b + 1] {
                    let a = tab.fromTags[q], lt = tab.logTrans[a * k + b], pa = prev + a * n, a32 = Int32(a)
                    for i in 0..<active {
                        let v = pa[i] + lt, better = v > cur[i]
                        cur[i] = better ? v : cur[i]
                        arg[i] = better ? a32 : arg[i]
                    }
                }
                for i in 0..<active { cur[i] += Double(row[i * k + b]) }
                // Sentences that have ended carry their final scores along.
                for i in active..<n { cur[i] = prev[b * n + i] }
            }
        }
        let last = score + ((t - 1) & 1) * k * n
        for i in 0..<n {
            let end = lengths[i] - 1
            var best = -Double.infinity, arg = 0
            for b in 0..<k {
                let v = last[b * n + i] + tab.logEnd[b]
                if v > best { best = v; arg = b }
            }
            out[end * n + i] = Int32(arg)
            for step in stride(from: end, through: 1, by: -1) {
                out[(step - 1) * n + i] = bp[(step * k + Int(out[step * n + i])) * n + i]
            }
        }
        return UnsafePointer(out)
    }

    /// Node marginals of a time-major batch (layout as in `viterbi`), returned as
    /// `[(t * k + tag) * n + i]` for t below sentence i's length: the arithmetic of
    /// `forwardBackward`, in the same order, over all sentences at once.
    func marginals(_ e: UnsafePointer<Float>, lengths: [Int], stepStart: [Int], _ tab: CRFTables) -> UnsafePointer<Double> {
        let k = tab.k, n = lengths.count, t = lengths.first ?? 0
        let al = alpha.reserve(t * k * n), be = beta.reserve(t * k * n), ex = expE.reserve(t * k * n)
        // Row `step` of `s` holds that step's normaliser; row t is a work row.
        let s = norm.reserve((t + 1) * n), work = s + t * n
        // How many sentences (a prefix, as they are longest first) reach `step`.
        @inline(__always) func going(_ step: Int) -> Int { stepStart[step + 1] - stepStart[step] }
        for step in 0..<t {
            let m = going(step)
            let row = e + stepStart[step] * k, exs = ex + step * k * n, cur = al + step * k * n, sum = s + step * n
            for i in 0..<m { work[i] = -.infinity; sum[i] = 0 }
            for b in 0..<k { for i in 0..<m { work[i] = max(work[i], Double(row[i * k + b])) } }
            for b in 0..<k { for i in 0..<m { exs[b * n + i] = exp(Double(row[i * k + b]) - work[i]) } }
            for b in 0..<k {
                let v = cur + b * n
                if step == 0 {
                    for i in 0..<m { v[i] = tab.expStart[b] }
                } else {
                    for i in 0..<m { v[i] = 0 }
                    let prev = al + (step - 1) * k * n
                    for q in tab.fromStart[b]..<tab.fromStart[b + 1] {
                        let a = tab.fromTags[q], tr = tab.expTrans[a * k + b], pa = prev + a * n
                        for i in 0..<m { v[i] += pa[i] * tr }
                    }
                }
                for i in 0..<m { v[i] *= exs[b * n + i]; sum[i] += v[i] }
            }
            for b in 0..<k { for i in 0..<m { cur[b * n + i] /= sum[i] } }
        }
        // Each sentence's backward pass starts at its own last step.
        for i in 0..<n {
            let last = lengths[i] - 1
            work[i] = 0
            for b in 0..<k { work[i] += al[(last * k + b) * n + i] * tab.expEnd[b] }
            for a in 0..<k { be[(last * k + a) * n + i] = tab.expEnd[a] / work[i] }
        }
        for step in stride(from: t - 2, through: 0, by: -1) {
            let m = going(step + 1)
            let next = be + (step + 1) * k * n, en = ex + (step + 1) * k * n, sn = s + (step + 1) * n
            for a in 0..<k {
                let v = be + (step * k + a) * n
                for i in 0..<m { v[i] = 0 }
                for q in tab.toStart[a]..<tab.toStart[a + 1] {
                    let b = tab.toTags[q], tr = tab.expTrans[a * k + b], eb = en + b * n, nb = next + b * n
                    for i in 0..<m { v[i] += tr * eb[i] * nb[i] }
                }
                for i in 0..<m { v[i] /= sn[i] }
            }
        }
        for step in 0..<t {
            let m = going(step)
            for b in 0..<k {
                let q = (step * k + b) * n
                for i in 0..<m { al[q + i] *= be[q + i] }
            }
        }
        return UnsafePointer(al)
    }
}
