import Foundation

/// The reference implementation: one sentence at a time, plain loops, Double precision, every
/// formula written out. It is slow on purpose; tests check it against finite differences and check
/// the batched BLAS path (`Workspace`) against it.
enum Reference {
    typealias Values = [String: [Double]]

    struct Forward {
        var x: [[Double]] = []          // T × D inputs
        var convArg: [[Int]] = []       // T × F: which character position won the max
        var gates: [[[Double]]] = []    // dir × T × 4H (activated)
        var c: [[[Double]]] = []        // dir × T × H
        var h: [[[Double]]] = []        // dir × T × H
        var e: [[Double]] = []          // T × K emissions
    }

    static func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }

    static func forward(_ p: Values, _ c: ModelConfig, _ s: EncodedSentence) -> Forward {
        var f = Forward()
        let t = s.count, dw = c.wordDim, dc = c.charDim, nf = c.charFeatures, h = c.hidden, k = c.tagCount
        let win = c.charWindow, half = win / 2
        let emb = p["word_embeddings"]!, cemb = p["char_embeddings"]!, cw = p["char_conv.weight"]!, cb = p["char_conv.bias"]!
        for i in 0..<t {
            var x = Array(emb[(Int(s.words[i]) * dw)..<((Int(s.words[i]) + 1) * dw)])
            var args: [Int] = []
            if dc > 0 {
                let lo = Int(s.charStarts[i]), hi = Int(s.charStarts[i + 1])
                for j in 0..<nf {
                    var best = -Double.infinity, at = 0
                    for pos in lo..<hi {
                        var v = cb[j]
                        for w in 0..<win {
                            let src = pos + w - half
                            guard src >= lo && src < hi else { continue }
                            for q in 0..<dc { v += cw[j * win * dc + w * dc + q] * cemb[Int(s.chars[src]) * dc + q] }
                        }
                        if v > best { best = v; at = pos }
                    }
                    x.append(best)
                    args.append(at)
                }
            }
            var onehot = [Double](repeating: 0, count: Casing.count)
            onehot[Int(s.casing[i])] = 1
            f.x.append(x + onehot)
            f.convArg.append(args)
        }
        for (dir, name) in ["forward", "backward"].enumerated() {
            let wx = p["lstm.\(name).input_weight"]!, wh = p["lstm.\(name).hidden_weight"]!, b = p["lstm.\(name).bias"]!
            var gs = [[Double]](repeating: [], count: t), cs = [[Double]](repeating: [], count: t), hs = [[Double]](repeating: [], count: t)
            var hPrev = [Double](repeating: 0, count: h), cPrev = [Double](repeating: 0, count: h)
            for step in 0..<t {
                let i = dir == 0 ? step : t - 1 - step
                var z = b
                for r in 0..<(4 * h) {
                    for q in 0..<c.inputDim { z[r] += wx[r * c.inputDim + q] * f.x[i][q] }
                    for q in 0..<h { z[r] += wh[r * h + q] * hPrev[q] }
                }
                var g = z, cell = [Double](repeating: 0, count: h), hid = cell
                for j in 0..<h {
                    g[j] = sig(z[j]); g[h + j] = sig(z[h + j]); g[2 * h + j] = tanh(z[2 * h + j]); g[3 * h + j] = sig(z[3 * h + j])
                    cell[j] = g[h + j] * cPrev[j] + g[j] * g[2 * h + j]
                    hid[j] = g[3 * h + j] * tanh(cell[j])
                }
                gs[i] = g; cs[i] = cell; hs[i] = hid
                hPrev = hid; cPrev = cell
            }
            f.gates.append(gs); f.c.append(cs); f.h.append(hs)
        }
        let ow = p["output.weight"]!, ob = p["output.bias"]!
        for i in 0..<t {
            let hc = f.h[0][i] + f.h[1][i]
            var e = ob
            for a in 0..<k { for q in 0..<(2 * h) { e[a] += ow[a * 2 * h + q] * hc[q] } }
            f.e.append(e)
        }
        return f
    }

    static func logSumExp(_ v: [Double]) -> Double {
        let m = v.max() ?? -.infinity
        if m == -.infinity { return m }
        return m + log(v.reduce(0) { $0 + exp($1 - m) })
    }

    /// Log-space forward-backward: log Z, node marginals T×K and pairwise marginals (T-1)×K×K.
    static func crf(_ p: Values, _ tags: TagSet, _ e: [[Double]]) -> (Double, [[Double]], [[[Double]]]) {
        let k = tags.count, t = e.count
        let trans = p["crf.transitions"]!, start = p["crf.start"]!, end = p["crf.end"]!
        func tr(_ a: Int, _ b: Int) -> Double { tags.allowed[a * k + b] ? trans[a * k + b] : -.infinity }
        func st(_ b: Int) -> Double { tags.allowedStart[b] ? start[b] : -.infinity }
        func en(_ b: Int) -> Double { tags.allowedEnd[b] ? end[b] : -.infinity }
        var alpha = [[Double]](repeating: [Double](repeating: 0, count: k), count: t), beta = alpha
        for b in 0..<k { alpha[0][b] = st(b) + e[0][b] }
        for i in stride(from: 1, to: t, by: 1) {
            for b in 0..<k { alpha[i][b] = logSumExp((0..<k).map { alpha[i - 1][$0] + tr($0, b) }) + e[i][b] }
        }
        let logZ = logSumExp((0..<k).map { alpha[t - 1][$0] + en($0) })
        for a in 0..<k { beta[t - 1][a] = en(a) }
        for i in stride(from: t - 2, through: 0, by: -1) {
            for a in 0..<k { beta[i][a] = logSumExp((0..<k).map { tr(a, $0) + e[i + 1][$0] + beta[i + 1][$0] }) }
        }
        let node = (0..<t).map { i in (0..<k).map { exp(alpha[i][$0] + beta[i][$0] - logZ) } }
        let pair = (0..<max(t - 1, 0)).map { i in
            (0..<k).map { a in (0..<k).map { b in exp(alpha[i][a] + tr(a, b) + e[i + 1][b] + beta[i + 1][b] - logZ) } }
        }
        return (logZ, node, pair)
    }

    static func goldScore(_ p: Values, _ k: Int, _ e: [[Double]], _ gold: [Int]) -> Double {
        let trans = p["crf.transitions"]!
        var s = p["crf.start"]![gold[0]] + p["crf.end"]![gold[gold.count - 1]]
        for i in 0..<gold.count {
            s += e[i][gold[i]]
            if i > 0 { s += trans[gold[i - 1] * k + gold[i]] }
        }
        return s
    }

    static func loss(_ p: Values, _ c: ModelConfig, _ tags: TagSet, _ s: EncodedSentence) -> Double {
        let f = forward(p, c, s)
        let gold = s.tags.map { Int($0) }
        return crf(p, tags, f.e).0 - goldScore(p, c.tagCount, f.e, gold)
    }

    /// Loss and the gradient of every parameter, written out by hand.
    static func gradients(_ p: Values, _ c: ModelConfig, _ tags: TagSet, _ s: EncodedSentence) -> (Double, Values) {
        let f = forward(p, c, s)
        let t = s.count, h = c.hidden, k = c.tagCount, d = c.inputDim, dw = c.wordDim, dc = c.charDim, nf = c.charFeatures
        let gold = s.tags.map { Int($0) }
        var g: Values = p.mapValues { [Double](repeating: 0, count: $0.count) }
        let (logZ, node, pair) = crf(p, tags, f.e)
        let loss = logZ - goldScore(p, k, f.e, gold)

        var de = node
        for i in 0..<t { de[i][gold[i]] -= 1 }
        for b in 0..<k {
            g["crf.start"]![b] = node[0][b] - (gold[0] == b ? 1 : 0)
            g["crf.end"]![b] = node[t - 1][b] - (gold[t - 1] == b ? 1 : 0)
        }
        for i in 0..<max(t - 1, 0) {
            for a in 0..<k { for b in 0..<k { g["crf.transitions"]![a * k + b] += pair[i][a][b] } }
            g["crf.transitions"]![gold[i] * k + gold[i + 1]] -= 1
        }
        let ow = p["output.weight"]!
        var dhc = [[Double]](repeating: [Double](repeating: 0, count: 2 * h), count: t)
        for i in 0..<t {
            let hc = f.h[0][i] + f.h[1][i]
            for a in 0..<k {
                g["output.bias"]![a] += de[i][a]
                for q in 0..<(2 * h) {
                    g["output.weight"]![a * 2 * h + q] += de[i][a] * hc[q]
                    dhc[i][q] += de[i][a] * ow[a * 2 * h + q]
                }
            }
        }
        var dx = [[Double]](repeating: [Double](repeating: 0, count: d), count: t)
        for (dir, name) in ["forward", "backward"].enumerated() {
            let wx = p["lstm.\(name).input_weight"]!, wh = p["lstm.\(name).hidden_weight"]!
            var dhNext = [Double](repeating: 0, count: h), dcNext = dhNext
            for step in stride(from: t - 1, through: 0, by: -1) {
                let i = dir == 0 ? step : t - 1 - step
                let prev = dir == 0 ? i - 1 : i + 1
                let hasPrev = step > 0
                let gt = f.gates[dir][i]
                var dz = [Double](repeating: 0, count: 4 * h)
                for j in 0..<h {
                    let ig = gt[j], fg = gt[h + j], cg = gt[2 * h + j], og = gt[3 * h + j]
                    let tc = tanh(f.c[dir][i][j])
                    let dh = dhc[i][dir * h + j] + dhNext[j]
                    let dcell = dh * og * (1 - tc * tc) + dcNext[j]
                    let cPrev = hasPrev ? f.c[dir][prev][j] : 0
                    dz[j] = dcell * cg * ig * (1 - ig)
                    dz[h + j] = dcell * cPrev * fg * (1 - fg)
                    dz[2 * h + j] = dcell * ig * (1 - cg * cg)
                    dz[3 * h + j] = dh * tc * og * (1 - og)
                    dcNext[j] = dcell * fg
                }
                dhNext = [Double](repeating: 0, count: h)
                for r in 0..<(4 * h) {
                    g["lstm.\(name).bias"]![r] += dz[r]
                    for q in 0..<d {
                        g["lstm.\(name).input_weight"]![r * d + q] += dz[r] * f.x[i][q]
                        dx[i][q] += dz[r] * wx[r * d + q]
                    }
                    if hasPrev {
                        for q in 0..<h {
                            g["lstm.\(name).hidden_weight"]![r * h + q] += dz[r] * f.h[dir][prev][q]
                            dhNext[q] += dz[r] * wh[r * h + q]
                        }
                    }
                }
            }
        }
        let cw = p["char_conv.weight"]!, win = c.charWindow, half = win / 2
        for i in 0..<t {
            let w = Int(s.words[i])
            for q in 0..<dw { g["word_embeddings"]![w * dw + q] += dx[i][q] }
            guard dc > 0 else { continue }
            let lo = Int(s.charStarts[i]), hi = Int(s.charStarts[i + 1])
            for j in 0..<nf {
                let gv = dx[i][dw + j], pos = f.convArg[i][j]
                g["char_conv.bias"]![j] += gv
                for wi in 0..<win {
                    let src = pos + wi - half
                    guard src >= lo && src < hi else { continue }
                    let ch = Int(s.chars[src])
                    for q in 0..<dc {
                        g["char_conv.weight"]![j * win * dc + wi * dc + q] += gv * p["char_embeddings"]![ch * dc + q]
                        g["char_embeddings"]![ch * dc + q] += gv * cw[j * win * dc + wi * dc + q]
                    }
                }
            }
        }
        return (loss, g)
    }

    /// The best path by enumerating every allowed tag sequence: exponential, for tiny tests only.
    static func bestPathByEnumeration(_ p: Values, _ c: ModelConfig, _ tags: TagSet, _ s: EncodedSentence) -> [Int] {
        let e = forward(p, c, s).e, k = c.tagCount, t = s.count
        var best = -Double.infinity, bestPath: [Int] = []
        var path = [Int](repeating: 0, count: t)
        func visit(_ i: Int) {
            if i == t {
                guard tags.allowedStart[path[0]], tags.allowedEnd[path[t - 1]],
                      (1..<max(t, 1)).allSatisfy({ tags.allowed[path[$0 - 1] * k + path[$0]] }) else { return }
                let v = goldScore(p, k, e, path)
                if v > best { best = v; bestPath = path }
                return
            }
            for a in 0..<k { path[i] = a; visit(i + 1) }
        }
        visit(0)
        return bestPath
    }
}
