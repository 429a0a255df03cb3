import Foundation

/// The network on a GPU: the weights, the optimizer's moments and every per-batch buffer live in
/// device memory. A batch costs one copy to the device (its token, character and tag ids, packed)
/// and one copy back (three numbers when training; the tags and scores when decoding). The math is
/// `Workspace`'s, step for step: cuBLAS for the products, `CUDAKernels` for everything else.
/// Not thread-safe: one caller at a time (`Tagger` serialises decoding).
final class CUDANetwork: @unchecked Sendable {
    let runtime: CUDARuntime
    let config: ModelConfig
    let layout: Layout
    let tagSet: TagSet
    /// The dense block and the word vectors, laid out as on the host.
    let dense: DeviceScratch, words: DeviceScratch

    private let allowed: DeviceScratch
    /// The dense gradient block (training and the parity checks).
    private let grads: DeviceScratch
    // Adam's moments and the touched words' gradients, allocated by `enableTraining`.
    private var m: DeviceScratch?, v: DeviceScratch?, wm: DeviceScratch?, wv: DeviceScratch?, wordGrads: DeviceScratch?

    // The batch.
    private var ids = TimeMajorIds()
    private var n: Int { ids.n }
    private var length: Int { ids.length }
    private var rows: Int { ids.rows }
    private var totalChars: Int { ids.tokenChars.count }
    private var uniqueWords = 0, uniqueChars = 0
    private var staging: [Int32] = []
    /// Per word (per character) id, its slot among the batch's distinct ones, -1 between batches.
    private var slotOfWord: [Int32], slotOfChar: [Int32]
    private let inputs: DeviceScratch
    private var at = InputOffsets()
    private var dropoutUsed = false

    // Device buffers, grown to the largest batch and reused.
    private let x, maskX, cols, convOut, argmax, hcat, maskH, hdrop, emissions, dEmissions, dH, dGates, dX, dhRec, dcRec: DeviceScratch
    private let gates: [DeviceScratch], cells: [DeviceScratch], tanhCells: [DeviceScratch]
    private let crfTab, crfWork, crfPartial, losses, partial, stats, dCols: DeviceScratch
    private let decoded: DeviceScratch

    /// Where each id array starts in the packed batch upload.
    private struct InputOffsets {
        var words = 0, casing = 0, tags = 0, charStarts = 0, charToken = 0, chars = 0
        // For the backward pass: the distinct words (ids) with their rows (slotStarts, slotRows), and
        // the distinct characters (charIds) with their positions (charPosStarts, charPositions).
        var ids = 0, slotStarts = 0, slotRows = 0, charIds = 0, charPosStarts = 0, charPositions = 0
    }

    /// Parts of the first stage of the gradient-norm reduction.
    private static let normParts = 4096

    init(runtime: CUDARuntime, params p: Parameters, tagSet: TagSet) throws {
        self.runtime = runtime
        config = p.config
        layout = p.layout
        self.tagSet = tagSet
        slotOfWord = [Int32](repeating: -1, count: config.wordVocab)
        slotOfChar = [Int32](repeating: -1, count: max(config.charVocab, 1))
        func buffer(_ size: Int = 4) -> DeviceScratch { DeviceScratch(runtime, elementSize: size) }
        dense = buffer(); words = buffer(); allowed = buffer(); inputs = buffer(); grads = buffer()
        x = buffer(); maskX = buffer(); cols = buffer(); convOut = buffer(); argmax = buffer(); hcat = buffer()
        maskH = buffer(); hdrop = buffer(); emissions = buffer(); dEmissions = buffer(); dH = buffer(); dGates = buffer()
        dX = buffer(); dhRec = buffer(); dcRec = buffer()
        gates = [buffer(), buffer()]; cells = [buffer(), buffer()]; tanhCells = [buffer(), buffer()]
        crfTab = buffer(8); crfWork = buffer(8); crfPartial = buffer(); losses = buffer(8); partial = buffer(8); stats = buffer(8)
        dCols = buffer()
        decoded = buffer()
        try runtime.bind()
        try upload(p.dense, to: dense, count: layout.total)
        try upload(p.words, to: words, count: config.wordVocab * config.wordDim)
        let mask = (tagSet.allowed + tagSet.allowedStart + tagSet.allowedEnd).map { Int32($0 ? 1 : 0) }
        try mask.withUnsafeBufferPointer { try upload($0.baseAddress!, to: allowed, count: mask.count) }
    }

    private func upload<T>(_ source: UnsafePointer<T>, to buffer: DeviceScratch, count: Int) throws {
        try runtime.upload(source, to: buffer.reserve(count), bytes: count * MemoryLayout<T>.stride)
    }

    private func download<T>(_ buffer: DeviceScratch, to destination: UnsafeMutablePointer<T>, count: Int) throws {
        try runtime.download(buffer.address, to: destination, bytes: count * MemoryLayout<T>.stride)
    }

    /// Allocates the gradient and optimizer buffers and copies the optimizer's moments (a resumed run
    /// brings them from its checkpoint).
    func enableTraining(_ opt: Optimizer) throws {
        let dn = layout.total, wn = config.wordVocab * config.wordDim
        func buffer() -> DeviceScratch { DeviceScratch(runtime) }
        m = buffer(); v = buffer(); wm = buffer(); wv = buffer(); wordGrads = buffer()
        try upload(opt.m, to: m!, count: dn)
        try upload(opt.v, to: v!, count: dn)
        try upload(opt.wm, to: wm!, count: wn)
        try upload(opt.wv, to: wv!, count: wn)
    }

    /// Copies the weights (and, when training, the optimizer's moments) back to the host.
    func copyToHost(_ p: Parameters, optimizer opt: Optimizer?) throws {
        try runtime.bind()
        let dn = layout.total, wn = config.wordVocab * config.wordDim
        try download(dense, to: p.dense, count: dn)
        try download(words, to: p.words, count: wn)
        if let opt, let m, let v, let wm, let wv {
            try download(m, to: opt.m, count: dn)
            try download(v, to: opt.v, count: dn)
            try download(wm, to: opt.wm, count: wn)
            try download(wv, to: opt.wv, count: wn)
        }
    }

    // MARK: The batch on the device

    /// Packs the batch's time-major ids (`TimeMajorIds`, as the CPU path reads them) into one array and uploads it.
    /// `backward` also lists the distinct words and characters with where each occurs, so the
    /// backward pass gathers their gradients instead of scattering them.
    private func load(_ batch: [EncodedSentence], backward: Bool) throws {
        ids.load(batch)
        let r = rows
        staging.removeAll(keepingCapacity: true)
        at.words = 0
        staging.append(contentsOf: ids.words)
        at.casing = staging.count
        staging.append(contentsOf: ids.casing.lazy.map { Int32($0) })
        at.tags = staging.count
        if ids.tags.isEmpty { staging.append(contentsOf: repeatElement(0, count: r)) } else { staging.append(contentsOf: ids.tags) }
        at.charStarts = staging.count
        staging.append(contentsOf: ids.charStarts)
        // The token each character belongs to, for the kernels that work per character.
        at.charToken = staging.count
        for tok in 0..<r {
            for _ in ids.charStarts[tok]..<ids.charStarts[tok + 1] { staging.append(Int32(tok)) }
        }
        at.chars = staging.count
        staging.append(contentsOf: ids.tokenChars)
        (uniqueWords, uniqueChars) = (0, 0)
        if backward {
            (at.ids, at.slotStarts, at.slotRows, uniqueWords) = appendOccurrences(from: at.words, count: r, slots: &slotOfWord)
            (at.charIds, at.charPosStarts, at.charPositions, uniqueChars) =
                appendOccurrences(from: at.chars, count: ids.tokenChars.count, slots: &slotOfChar)
        }
        try staging.withUnsafeBufferPointer { try upload($0.baseAddress!, to: inputs, count: $0.count) }
    }

    /// Appends, for the `count` ids starting at `from` in `staging`: the distinct ids in order of
    /// first appearance, then per distinct id the start of its run of positions (plus an end), then
    /// the positions, grouped by id and ascending. Returns the three offsets and the distinct count.
    private func appendOccurrences(from: Int, count: Int, slots: inout [Int32]) -> (ids: Int, starts: Int, positions: Int, distinct: Int) {
        let idsAt = staging.count
        var perSlot: [Int32] = []
        for q in 0..<count {
            let id = Int(staging[from + q])
            if slots[id] < 0 {
                slots[id] = Int32(perSlot.count)
                staging.append(Int32(id))
                perSlot.append(0)
            }
            perSlot[Int(slots[id])] += 1
        }
        let distinct = perSlot.count
        let startsAt = staging.count
        var next = [Int32](repeating: 0, count: distinct)
        var total: Int32 = 0
        for u in 0..<distinct {
            staging.append(total)
            next[u] = total
            total += perSlot[u]
        }
        staging.append(total)
        let positionsAt = staging.count
        staging.append(contentsOf: repeatElement(0, count: count))
        for q in 0..<count {
            let u = Int(slots[Int(staging[from + q])])
            staging[positionsAt + Int(next[u])] = Int32(q)
            next[u] += 1
        }
        for u in 0..<distinct { slots[Int(staging[idsAt + u])] = -1 }
        return (idsAt, startsAt, positionsAt, distinct)
    }

    private func input(_ offset: Int) -> KernelArgument { .address(inputs.at(offset)) }
    private func weight(_ t: TensorSpec) -> DeviceAddress { dense.at(t.offset) }

    // MARK: Forward

    private func forward(dropout: Float, seed: UInt64) throws {
        let c = config, l = layout, rt = runtime
        let r = rows, d = c.inputDim, h = c.hidden, k = c.tagCount, dw = c.wordDim, f = c.charFeatures
        let xp = try x.reserve(r * d)
        try rt.launch(.embedInput, items: r * (dw + Casing.count), .int(r), .int(d), .int(dw), .int(f), .int(Casing.count),
                      input(at.words), input(at.casing), .address(words.address), .address(xp))
        if c.charDim > 0 { try charForward() }
        dropoutUsed = dropout > 0
        if dropoutUsed {
            let keep = 1 / (1 - dropout)
            try rt.launch(.dropoutMask, items: r * d, .int(r * d), .u64(seed), .float(dropout), .float(keep), .address(maskX.reserve(r * d)))
            try rt.launch(.multiply, items: r * d, .int(r * d), .address(xp), .address(maskX.address), .address(xp))
            try rt.launch(.dropoutMask, items: r * 2 * h, .int(r * 2 * h), .u64(seed ^ 0xD6E8_FEB8_6659_FD93), .float(dropout),
                          .float(keep), .address(maskH.reserve(r * 2 * h)))
        }
        let hc = try hcat.reserve(r * 2 * h)
        for dir in 0..<2 { try lstmForward(dir: dir) }
        var hd = hc
        if dropoutUsed {
            hd = try hdrop.reserve(r * 2 * h)
            try rt.launch(.multiply, items: r * 2 * h, .int(r * 2 * h), .address(hc), .address(maskH.address), .address(hd))
        }
        let e = try emissions.reserve(r * k)
        try rt.launch(.fillRows, items: r * k, .int(r), .int(k), .address(weight(l.outB)), .address(e))
        try rt.gemm(false, true, r, k, 2 * h, hd, 2 * h, weight(l.outW), 2 * h, 1, e, k)
    }

    private func charForward() throws {
        let c = config, l = layout, rt = runtime
        let dc = c.charDim, win = c.charWindow, f = c.charFilters, d = c.inputDim, dw = c.wordDim
        let width = win * dc, total = totalChars, r = rows
        let colp = try cols.reserve(total * width)
        try rt.launch(.charIm2col, items: total * width, .int(total), .int(dc), .int(win), input(at.charToken),
                      input(at.charStarts), input(at.chars), .address(weight(l.charEmb)), .address(colp))
        let out = try convOut.reserve(total * f)
        try rt.launch(.fillRows, items: total * f, .int(total), .int(f), .address(weight(l.convB)), .address(out))
        try rt.gemm(false, true, total, f, width, colp, width, weight(l.convW), width, 1, out, f)
        try rt.launch(.charMaxPool, items: r * f, .int(r), .int(f), .int(d), .int(dw), input(at.charStarts), .address(out),
                      .address(x.address), .address(argmax.reserve(r * f)))
    }

    private func lstmForward(dir: Int) throws {
        let c = config, l = layout, rt = runtime
        let r = rows, d = c.inputDim, h = c.hidden, g4 = 4 * h, n = self.n
        let g = try gates[dir].reserve(r * g4), cell = try cells[dir].reserve(r * h), tc = try tanhCells[dir].reserve(r * h)
        let hc = hcat.address
        try rt.launch(.fillRows, items: r * g4, .int(r), .int(g4), .address(weight(l.b[dir])), .address(g))
        try rt.gemm(false, true, r, g4, d, x.address, d, weight(l.wx[dir]), d, 1, g, g4)
        let f4 = DeviceAddress(4)
        for s in 0..<length {
            let t = dir == 0 ? s : length - 1 - s
            let prevT = s == 0 ? t : (dir == 0 ? t - 1 : t + 1)
            let gt = g + f4 * DeviceAddress(t * n * g4)
            if s > 0 {
                try rt.gemm(false, true, n, g4, h, hc + f4 * DeviceAddress(prevT * n * 2 * h + dir * h), 2 * h,
                            weight(l.wh[dir]), h, 1, gt, g4)
            }
            try rt.launch(.lstmStep, items: n * h, .int(n), .int(h), .int(s == 0 ? 1 : 0), .address(gt),
                          .address(cell + f4 * DeviceAddress(prevT * n * h)), .address(cell + f4 * DeviceAddress(t * n * h)),
                          .address(tc + f4 * DeviceAddress(t * n * h)), .address(hc + f4 * DeviceAddress(t * n * 2 * h + dir * h)),
                          .int(2 * h))
        }
    }

    // MARK: Backward

    /// The CRF's exp/log tables from the current weights, on the device.
    private func crfTables() throws -> (tab: DeviceAddress, work: DeviceAddress) {
        let k = config.tagCount, l = layout
        let tab = try crfTab.reserve(2 * (k * k + 2 * k))
        try runtime.launch(.crfTables, items: k * k + 2 * k, .int(k), .address(weight(l.trans)), .address(weight(l.start)),
                           .address(weight(l.end)), .address(allowed.address), .address(tab))
        let work = try crfWork.reserve(n * (3 * length * k + length + 1))
        return (tab, work)
    }

    /// Loss × `scale` backpropagated into `grads` (which the caller zeroed); the input gradient is left in dX.
    private func backward(scale: Float, grads: DeviceAddress) throws {
        let c = config, l = layout, rt = runtime
        let r = rows, h = c.hidden, k = c.tagCount, d = c.inputDim, f4 = DeviceAddress(4)
        func g(_ t: TensorSpec) -> DeviceAddress { grads + f4 * DeviceAddress(t.offset) }
        let (tab, work) = try crfTables()
        let de = try dEmissions.reserve(r * k)
        let part = try crfPartial.reserve(n * (k * k + 2 * k))
        try rt.launch(.crfForwardBackward, items: n, .int(n), .int(length), .int(k), .address(emissions.address), input(at.tags),
                      .address(tab), .float(scale), .address(work), .address(de), .address(part), .address(losses.reserve(n)))
        try rt.launch(.crfGradientSums, items: k * k + 2 * k, .int(n), .int(k), .address(part), .address(g(l.trans)),
                      .address(g(l.start)), .address(g(l.end)))
        let hd = dropoutUsed ? hdrop.address : hcat.address
        try rt.gemm(true, false, k, 2 * h, r, de, k, hd, 2 * h, 1, g(l.outW), 2 * h)
        try rt.launch(.columnSums, items: k, .int(r), .int(k), .address(de), .address(g(l.outB)))
        let dh = try dH.reserve(r * 2 * h)
        try rt.gemm(false, false, r, 2 * h, k, de, k, weight(l.outW), 2 * h, 0, dh, 2 * h)
        if dropoutUsed { try rt.launch(.multiply, items: r * 2 * h, .int(r * 2 * h), .address(dh), .address(maskH.address), .address(dh)) }
        let dx = try dX.zeroed(r * d)
        for dir in 0..<2 { try lstmBackward(dir: dir, grads: grads) }
        if dropoutUsed { try rt.launch(.multiply, items: r * d, .int(r * d), .address(dx), .address(maskX.address), .address(dx)) }
        if c.charDim > 0 {
            let f = c.charFilters, dw = c.wordDim, width = c.charWindow * c.charDim, total = totalChars
            let dc = try dCols.reserve(total * width)
            try rt.launch(.charBackwardColumns, items: total * width, .int(total), .int(f), .int(d), .int(dw), .int(width),
                          input(at.charToken), .address(argmax.address), .address(dx), .address(weight(l.convW)), .address(dc))
            try rt.launch(.charBackwardWeights, items: f * (width + 1), .int(r), .int(f), .int(d), .int(dw), .int(width),
                          .address(argmax.address), .address(dx), .address(cols.address), .address(g(l.convW)), .address(g(l.convB)))
            try rt.launch(.charBackwardEmbeddings, items: uniqueChars * c.charDim, .int(uniqueChars), .int(c.charDim),
                          .int(c.charWindow), input(at.charIds), input(at.charPosStarts), input(at.charPositions),
                          input(at.charToken), input(at.charStarts), .address(dc), .address(g(l.charEmb)))
        }
    }

    private func lstmBackward(dir: Int, grads: DeviceAddress) throws {
        let c = config, l = layout, rt = runtime
        let r = rows, d = c.inputDim, h = c.hidden, g4 = 4 * h, n = self.n, f4 = DeviceAddress(4)
        let g = gates[dir].address, cell = cells[dir].address, tc = tanhCells[dir].address, hc = hcat.address
        let dg = try dGates.reserve(r * g4), dhr = try dhRec.zeroed(n * h), dcr = try dcRec.zeroed(n * h)
        let dh = dH.address
        for s in stride(from: length - 1, through: 0, by: -1) {
            let t = dir == 0 ? s : length - 1 - s
            let prevT = s == 0 ? t : (dir == 0 ? t - 1 : t + 1)
            let dgt = dg + f4 * DeviceAddress(t * n * g4)
            try rt.launch(.lstmStepBackward, items: n * h, .int(n), .int(h), .int(s == 0 ? 1 : 0),
                          .address(g + f4 * DeviceAddress(t * n * g4)), .address(tc + f4 * DeviceAddress(t * n * h)),
                          .address(cell + f4 * DeviceAddress(prevT * n * h)), .address(dh + f4 * DeviceAddress(t * n * 2 * h + dir * h)),
                          .int(2 * h), .address(dhr), .address(dcr), .address(dgt))
            if s > 0 { try rt.gemm(false, false, n, h, g4, dgt, g4, weight(l.wh[dir]), h, 0, dhr, h) }
        }
        func grad(_ t: TensorSpec) -> DeviceAddress { grads + f4 * DeviceAddress(t.offset) }
        // Recurrent weights: gates at step t pair with h at the previous step in this direction.
        if length > 1 {
            let (gStart, hStart) = dir == 0 ? (n, 0) : (0, n)
            try rt.gemm(true, false, g4, h, (length - 1) * n, dg + f4 * DeviceAddress(gStart * g4), g4,
                        hc + f4 * DeviceAddress(hStart * 2 * h + dir * h), 2 * h, 1, grad(l.wh[dir]), h)
        }
        try rt.gemm(true, false, g4, d, r, dg, g4, x.address, d, 1, grad(l.wx[dir]), d)
        try rt.launch(.columnSums, items: g4, .int(r), .int(g4), .address(dg), .address(grad(l.b[dir])))
        try rt.gemm(false, false, r, d, g4, dg, g4, weight(l.wx[dir]), d, 1, dX.address, d)
    }

    // MARK: What the backends call

    /// Loss and gradients of a batch (no dropout, no update), summed over its sentences; for the
    /// parity checks against the CPU path. Returns the dense gradients and, per row, the word-vector
    /// gradient.
    func gradients(_ batch: [EncodedSentence]) throws -> (loss: Double, dense: [Float], wordRows: [Float]) {
        try runtime.bind()
        try load(batch, backward: true)
        let dn = layout.total
        try forward(dropout: 0, seed: 0)
        try backward(scale: 1, grads: grads.zeroed(dn))
        var dense = [Float](repeating: 0, count: dn)
        try dense.withUnsafeMutableBufferPointer { try download(grads, to: $0.baseAddress!, count: dn) }
        let d = config.inputDim
        var dx = [Float](repeating: 0, count: rows * d)
        try dx.withUnsafeMutableBufferPointer { try download(dX, to: $0.baseAddress!, count: rows * d) }
        var lossValues = [Double](repeating: 0, count: n)
        try lossValues.withUnsafeMutableBufferPointer { try download(losses, to: $0.baseAddress!, count: n) }
        return (lossValues.reduce(0, +), dense, dx)
    }

    /// One optimisation step: forward with dropout, backward at 1/n scale, clipping to `clip`, then
    /// Adam (or SGD) on the dense block and the touched word vectors. `step` is the optimizer's
    /// step count after this update. Returns the summed loss and the norm before clipping; when
    /// either is not finite the kernels leave the weights untouched.
    func trainStep(_ batch: [EncodedSentence], dropout: Float, seed: UInt64, lr: Float, clip: Float,
                   optimizer opt: Optimizer, step: Int) throws -> (loss: Double, norm: Double) {
        guard let m, let v, let wm, let wv, let wordGrads else { preconditionFailure("enableTraining first") }
        let rt = runtime, dn = layout.total, dw = config.wordDim
        try rt.bind()
        try load(batch, backward: true)
        try grads.zeroed(dn)
        try forward(dropout: dropout, seed: seed)
        try backward(scale: 1 / Float(n), grads: grads.address)
        let u = uniqueWords
        try wordGrads.reserve(u * dw)
        try rt.launch(.gatherWordRows, items: u * dw, .int(u), .int(dw), .int(config.inputDim), input(at.slotStarts),
                      input(at.slotRows), .address(dX.address), .address(wordGrads.address))
        let parts = CUDANetwork.normParts
        let part = try partial.zeroed(parts)
        try rt.launch(.sumSquares, items: parts, .int(dn), .int(parts), .address(grads.address), .address(part))
        try rt.launch(.sumSquares, items: parts, .int(u * dw), .int(parts), .address(wordGrads.address), .address(part))
        let st = try stats.reserve(3)
        try rt.launch(.batchStats, items: 1, .int(parts), .address(part), .int(n), .address(losses.address), .float(clip), .address(st))
        if opt.adam {
            let c1 = 1 - powf(opt.beta1, Float(step)), c2 = 1 - powf(opt.beta2, Float(step))
            let a = lr * sqrtf(c2) / c1
            try rt.launch(.adamDense, items: dn, .int(dn), .float(a), .float(opt.beta1), .float(opt.beta2), .float(opt.eps),
                          .address(st), .address(grads.address), .address(dense.address), .address(m.address), .address(v.address))
            try rt.launch(.adamRows, items: u * dw, .int(u), .int(dw), .float(a), .float(opt.beta1), .float(opt.beta2),
                          .float(opt.eps), .address(st), input(at.ids), .address(wordGrads.address), .address(words.address),
                          .address(wm.address), .address(wv.address))
        } else {
            try rt.launch(.sgdDense, items: dn, .int(dn), .float(lr), .address(st), .address(grads.address), .address(dense.address))
            try rt.launch(.sgdRows, items: u * dw, .int(u), .int(dw), .float(lr), .address(st), input(at.ids),
                          .address(wordGrads.address), .address(words.address))
        }
        var out = [Double](repeating: 0, count: 3)
        try out.withUnsafeMutableBufferPointer { try download(stats, to: $0.baseAddress!, count: 3) }
        return (out[0], out[1])
    }

    /// Viterbi paths and the marginal probability of each chosen tag, for sentences of one length.
    func decode(_ batch: [EncodedSentence]) throws -> (tags: [[Int32]], scores: [[Float]]) {
        let rt = runtime, k = config.tagCount
        try rt.bind()
        try load(batch, backward: false)
        try forward(dropout: 0, seed: 0)
        let (tab, work) = try crfTables()
        let r = rows, out = try decoded.reserve(2 * r)
        try rt.launch(.crfViterbi, items: n, .int(n), .int(length), .int(k), .address(emissions.address), .address(tab),
                      .address(work), .address(out))
        try rt.launch(.crfMarginals, items: n, .int(n), .int(length), .int(k), .address(emissions.address), .address(tab),
                      .address(work), .address(out), .address(decoded.at(r)))
        var host = [Int32](repeating: 0, count: 2 * r)
        try host.withUnsafeMutableBufferPointer { try download(decoded, to: $0.baseAddress!, count: 2 * r) }
        let n = self.n
        let tags = (0..<n).map { i in (0..<length).map { host[$0 * n + i] } }
        let scores = (0..<n).map { i in (0..<length).map { Float(bitPattern: UInt32(bitPattern: host[r + $0 * n + i])) } }
        return (tags, scores)
    }
}
