/// The CUDA backend's kernels, by name; `CUDARuntime` resolves them in this order.
enum CUDAKernel: String, CaseIterable {
    case fillRows = "fill_rows"
    case embedInput = "embed_input"
    case charIm2col = "char_im2col"
    case charMaxPool = "char_maxpool"
    case dropoutMask = "dropout_mask"
    case multiply
    case lstmStep = "lstm_step"
    case lstmStepBackward = "lstm_step_backward"
    case columnSums = "column_sums"
    case charBackwardColumns = "char_backward_columns"
    case charBackwardWeights = "char_backward_weights"
    case charBackwardEmbeddings = "char_backward_embeddings"
    case gatherWordRows = "gather_word_rows"
    case crfTables = "crf_tables"
    case crfForwardBackward = "crf_forward_backward"
    case crfGradientSums = "crf_gradient_sums"
    case crfViterbi = "crf_viterbi"
    case crfMarginals = "crf_marginals"
    case sumSquares = "sum_squares"
    case batchStats = "batch_stats"
    case adamDense = "adam_dense"
    case adamRows = "adam_rows"
    case sgdDense = "sgd_dense"
    case sgdRows = "sgd_rows"

    var index: Int { CUDAKernel.allCases.firstIndex(of: self)! }
}

/// CUDA C for NVRTC. The layouts are the CPU path's (`Network.swift`): rows are time-major
/// (row t·n + i is token t of sentence i), matrices row-major. Elementwise kernels take one thread
/// per item; the CRF takes one thread per sentence, in double, with the CPU path's arithmetic in the
/// same order, so both devices decode the same paths. Gradients are gathered, never scattered with
/// atomic adds, so a GPU run's sums come out in the same order every time. No kernel uses shared memory or barriers, which keeps
/// them runnable one thread at a time by the tests' CPU stand-in for the GPU.
enum CUDAKernels {
    static let source = #"""
#ifndef NER_LAUNCHER
#define NER_LAUNCHER(name)
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#define ITEM int item = blockIdx.x * blockDim.x + threadIdx.x

__device__ __forceinline__ float sigmoid_(float x) { return 1.f / (1.f + expf(-x)); }

// out[r][c] = v[c]: a bias in every row, before a GEMM adds the product.
extern "C" __global__ void fill_rows(int rows, int cols, const float* __restrict__ v, float* __restrict__ out) {
    ITEM;
    if (item >= rows * cols) return;
    out[item] = v[item % cols];
}
NER_LAUNCHER(fill_rows)

// The word-vector and casing one-hot columns of the LSTM input (the character columns come from char_maxpool).
extern "C" __global__ void embed_input(int rows, int d, int dw, int f, int casings, const int* __restrict__ words,
                                       const int* __restrict__ casing, const float* __restrict__ emb, float* __restrict__ x) {
    ITEM;
    int w = dw + casings;
    if (item >= rows * w) return;
    int row = item / w, c = item % w;
    if (c < dw) {
        x[(long long)row * d + c] = emb[(long long)words[row] * dw + c];
    } else {
        c -= dw;
        x[(long long)row * d + dw + f + c] = casing[row] == c ? 1.f : 0.f;
    }
}
NER_LAUNCHER(embed_input)

// One im2col row per character: the embeddings of the window around it, zero past the word's edges.
extern "C" __global__ void char_im2col(int total, int dc, int win, const int* __restrict__ charToken,
                                       const int* __restrict__ charStarts, const int* __restrict__ chars,
                                       const float* __restrict__ emb, float* __restrict__ cols) {
    ITEM;
    int width = win * dc, half = win / 2;
    if (item >= total * width) return;
    int pos = item / width, r = item % width, w = r / dc, q = r % dc;
    int tok = charToken[pos], lo = charStarts[tok], hi = charStarts[tok + 1], src = pos + w - half;
    cols[item] = (src < lo || src >= hi) ? 0.f : emb[chars[src] * dc + q];
}
NER_LAUNCHER(char_im2col)

// Max over each word's characters, per filter; the first maximum wins, as on the CPU.
extern "C" __global__ void char_maxpool(int rows, int f, int d, int dw, const int* __restrict__ charStarts,
                                        const float* __restrict__ conv, float* __restrict__ x, int* __restrict__ argmax) {
    ITEM;
    if (item >= rows * f) return;
    int tok = item / f, j = item % f, lo = charStarts[tok], hi = charStarts[tok + 1];
    float best = conv[lo * f + j];
    int at = lo;
    for (int pos = lo + 1; pos < hi; pos++) {
        float v = conv[pos * f + j];
        if (v > best) { best = v; at = pos; }
    }
    x[(long long)tok * d + dw + j] = best;
    argmax[item] = at;
}
NER_LAUNCHER(char_maxpool)

// Inverted dropout: 0 with probability p, else 1/(1-p). A counter-based hash (SplitMix64's
// finaliser) of the seed and the index, so masks need no state and no copy from the host.
extern "C" __global__ void dropout_mask(int count, unsigned long long seed, float p, float keep, float* __restrict__ mask) {
    ITEM;
    if (item >= count) return;
    unsigned long long z = seed + (unsigned long long)(item + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.f / 16777216.f);
    mask[item] = u < p ? 0.f : keep;
}
NER_LAUNCHER(dropout_mask)

// out = a * b elementwise (out may be a).
extern "C" __global__ void multiply(int count, const float* a, const float* __restrict__ b, float* out) {
    ITEM;
    if (item >= count) return;
    out[item] = a[item] * b[item];
}
NER_LAUNCHER(multiply)

// One LSTM time step after its gate pre-activations are in g (n rows of 4h: input, forget, cell,
// output). Leaves the activated gates in g, the cell and its tanh, and h in hout (row stride hstride).
extern "C" __global__ void lstm_step(int n, int h, int first, float* __restrict__ g, const float* __restrict__ cprev,
                                     float* __restrict__ c, float* __restrict__ tc, float* __restrict__ hout, int hstride) {
    ITEM;
    if (item >= n * h) return;
    int row = item / h, j = item % h;
    float* gr = g + (long long)row * 4 * h;
    float ig = sigmoid_(gr[j]), fg = sigmoid_(gr[h + j]), cg = tanhf(gr[2 * h + j]), og = sigmoid_(gr[3 * h + j]);
    gr[j] = ig; gr[h + j] = fg; gr[2 * h + j] = cg; gr[3 * h + j] = og;
    float cv = first ? ig * cg : fg * cprev[item] + ig * cg;
    float t = tanhf(cv);
    c[item] = cv;
    tc[item] = t;
    hout[(long long)row * hstride + j] = og * t;
}
NER_LAUNCHER(lstm_step)

// The gate gradients of one step, from dh (the output's gradient, row stride dhstride) plus the
// recurrent dhr and dcr carried from the step after; leaves dcr for the step before.
extern "C" __global__ void lstm_step_backward(int n, int h, int first, const float* __restrict__ g, const float* __restrict__ tc,
                                              const float* __restrict__ cprev, const float* __restrict__ dh, int dhstride,
                                              const float* __restrict__ dhr, float* __restrict__ dcr, float* __restrict__ dg) {
    ITEM;
    if (item >= n * h) return;
    int row = item / h, j = item % h;
    const float* gr = g + (long long)row * 4 * h;
    float* dgr = dg + (long long)row * 4 * h;
    float ig = gr[j], fg = gr[h + j], cg = gr[2 * h + j], og = gr[3 * h + j], tv = tc[item];
    float dhv = dh[(long long)row * dhstride + j] + dhr[item];
    float dc = dhv * og * (1.f - tv * tv) + dcr[item];
    float cp = first ? 0.f : cprev[item];
    dgr[j] = dc * cg * ig * (1.f - ig);
    dgr[h + j] = dc * cp * fg * (1.f - fg);
    dgr[2 * h + j] = dc * ig * (1.f - cg * cg);
    dgr[3 * h + j] = dhv * tv * og * (1.f - og);
    dcr[item] = dc * fg;
}
NER_LAUNCHER(lstm_step_backward)

// out[c] += the sum of column c (bias gradients).
extern "C" __global__ void column_sums(int rows, int cols, const float* __restrict__ in, float* __restrict__ out) {
    ITEM;
    if (item >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += in[(long long)r * cols + item];
    out[item] += s;
}
NER_LAUNCHER(column_sums)

// Backward through the max-pool and the convolution, in three gathers rather than scatters: no
// atomic adds, so a GPU run's sums come out in the same order every time. Only each filter's
// winning position receives gradient. First, the im2col rows' gradient: dCols[pos][q].
extern "C" __global__ void char_backward_columns(int total, int f, int d, int dw, int width, const int* __restrict__ charToken,
                                                 const int* __restrict__ argmax, const float* __restrict__ dx,
                                                 const float* __restrict__ w, float* __restrict__ dCols) {
    ITEM;
    if (item >= total * width) return;
    int pos = item / width, q = item % width, tok = charToken[pos];
    float acc = 0.f;
    for (int j = 0; j < f; j++) {
        if (argmax[tok * f + j] == pos) acc += dx[(long long)tok * d + dw + j] * w[j * width + q];
    }
    dCols[item] = acc;
}
NER_LAUNCHER(char_backward_columns)

// The filters' gradient: dW[j][q] (q < width) and dB[j] (q == width), summed over the tokens in order.
extern "C" __global__ void char_backward_weights(int rows, int f, int d, int dw, int width, const int* __restrict__ argmax,
                                                 const float* __restrict__ dx, const float* __restrict__ cols,
                                                 float* __restrict__ dW, float* __restrict__ dB) {
    ITEM;
    if (item >= f * (width + 1)) return;
    int j = item / (width + 1), q = item % (width + 1);
    float acc = 0.f;
    for (int tok = 0; tok < rows; tok++) {
        float gv = dx[(long long)tok * d + dw + j];
        if (gv != 0.f) acc += q == width ? gv : gv * cols[(long long)argmax[tok * f + j] * width + q];
    }
    if (q == width) dB[j] += acc; else dW[j * width + q] += acc;
}
NER_LAUNCHER(char_backward_weights)

// The character embeddings' gradient: for each distinct character v of the batch (id ids[v], at
// the positions positions[starts[v]..<starts[v+1]]), the im2col entries it was copied into.
extern "C" __global__ void char_backward_embeddings(int distinct, int dc, int win, const int* __restrict__ ids,
                                                    const int* __restrict__ starts, const int* __restrict__ positions,
                                                    const int* __restrict__ charToken, const int* __restrict__ charStarts,
                                                    const float* __restrict__ dCols, float* __restrict__ dEmb) {
    ITEM;
    if (item >= distinct * dc) return;
    int v = item / dc, q = item % dc, width = win * dc, half = win / 2;
    float acc = 0.f;
    for (int o = starts[v]; o < starts[v + 1]; o++) {
        int src = positions[o], tok = charToken[src], lo = charStarts[tok], hi = charStarts[tok + 1];
        for (int wi = 0; wi < win; wi++) {
            int pos = src + half - wi;
            if (pos >= lo && pos < hi) acc += dCols[(long long)pos * width + wi * dc + q];
        }
    }
    dEmb[ids[v] * dc + q] += acc;
}
NER_LAUNCHER(char_backward_embeddings)

// Each touched word's vector gradient: the sum, in row order, of the rows rows[starts[u]..<starts[u+1]].
extern "C" __global__ void gather_word_rows(int distinct, int dw, int d, const int* __restrict__ starts, const int* __restrict__ rows,
                                            const float* __restrict__ dx, float* __restrict__ wordGrads) {
    ITEM;
    if (item >= distinct * dw) return;
    int u = item / dw, j = item % dw;
    float acc = 0.f;
    for (int o = starts[u]; o < starts[u + 1]; o++) acc += dx[(long long)rows[o] * d + j];
    wordGrads[item] = acc;
}
NER_LAUNCHER(gather_word_rows)

// The CRF's tables from its current weights: exp and log of the transition, start and end scores,
// 0 and -inf where `allowed` forbids. Layout of tab: exp(trans k·k, start k, end k), then the logs.
extern "C" __global__ void crf_tables(int k, const float* __restrict__ trans, const float* __restrict__ start,
                                      const float* __restrict__ end, const int* __restrict__ allowed, double* __restrict__ tab) {
    ITEM;
    int m = k * k + 2 * k;
    if (item >= m) return;
    double v = item < k * k ? (double)trans[item] : item < k * k + k ? (double)start[item - k * k] : (double)end[item - k * k - k];
    tab[item] = allowed[item] ? exp(v) : 0.0;
    tab[m + item] = allowed[item] ? v : -INFINITY;
}
NER_LAUNCHER(crf_tables)

// Sentence i's part of the CRF work area: alpha, beta and exp(emission - max) (T·k each) and the
// T + 1 step normalisers. Viterbi uses the same area for its scores and back-pointers.
struct CRFWork { double *al, *be, *ex, *s; };

__device__ CRFWork crf_work(double* work, int i, int T, int k) {
    CRFWork w;
    w.al = work + (long long)i * (3 * T * k + T + 1);
    w.be = w.al + T * k;
    w.ex = w.be + T * k;
    w.s = w.ex + T * k;
    return w;
}

// Forward-backward for sentence i in probability space with per-step normalisation, as
// CRFScratch.forwardBackward: leaves normalised alpha and beta (T·k each), exp(emission - max) and
// the step normalisers s in this sentence's work area; returns log Z.
__device__ double crf_alpha_beta(int i, int n, int T, int k, const float* e, const double* tab,
                                 double* al, double* be, double* ex, double* s) {
    const double* expTrans = tab;
    const double* expStart = tab + k * k;
    const double* expEnd = tab + k * k + k;
    double logZ = 0.0;
    for (int t = 0; t < T; t++) {
        const float* row = e + ((long long)t * n + i) * k;
        double m = -INFINITY;
        for (int b = 0; b < k; b++) m = fmax(m, (double)row[b]);
        for (int b = 0; b < k; b++) ex[t * k + b] = exp((double)row[b] - m);
        double sum = 0.0;
        for (int b = 0; b < k; b++) {
            double v;
            if (t == 0) {
                v = expStart[b];
            } else {
                v = 0.0;
                const double* prev = al + (t - 1) * k;
                for (int a = 0; a < k; a++) {
                    double tr = expTrans[a * k + b];
                    if (tr != 0.0) v += prev[a] * tr;
                }
            }
            v *= ex[t * k + b];
            al[t * k + b] = v;
            sum += v;
        }
        for (int b = 0; b < k; b++) al[t * k + b] /= sum;
        s[t] = sum;
        logZ += m + log(sum);
    }
    double zEnd = 0.0;
    for (int b = 0; b < k; b++) zEnd += al[(T - 1) * k + b] * expEnd[b];
    logZ += log(zEnd);
    for (int a = 0; a < k; a++) be[(T - 1) * k + a] = expEnd[a] / zEnd;
    for (int t = T - 2; t >= 0; t--) {
        const double* next = be + (t + 1) * k;
        const double* en = ex + (t + 1) * k;
        double sn = s[t + 1];
        for (int a = 0; a < k; a++) {
            double v = 0.0;
            for (int b = 0; b < k; b++) {
                double tr = expTrans[a * k + b];
                if (tr != 0.0) v += tr * en[b] * next[b];
            }
            be[t * k + a] = v / sn;
        }
    }
    return logZ;
}

// Loss (log Z minus the gold path's score) and, times `scale`, its gradients: emissions into dE,
// the sentence's transition, start and end gradients into its slice of `partial`. One thread per sentence.
extern "C" __global__ void crf_forward_backward(int n, int T, int k, const float* __restrict__ e, const int* __restrict__ tags,
                                                const double* __restrict__ tab, float scale, double* __restrict__ work,
                                                float* __restrict__ dE, float* __restrict__ partial, double* __restrict__ loss) {
    ITEM;
    if (item >= n) return;
    int i = item;
    CRFWork w = crf_work(work, i, T, k);
    double *al = w.al, *be = w.be, *ex = w.ex, *s = w.s;
    double logZ = crf_alpha_beta(i, n, T, k, e, tab, al, be, ex, s);
    // This sentence's transition, start and end gradients, summed over sentences by crf_gradient_sums.
    float* dTrans = partial + (long long)i * (k * k + 2 * k);
    float* dStart = dTrans + k * k;
    float* dEnd = dStart + k;
    for (int q = 0; q < k * k + 2 * k; q++) dTrans[q] = 0.f;
    const double* expTrans = tab;
    const double* logTrans = tab + k * k + 2 * k;
    const double* logStart = logTrans + k * k;
    const double* logEnd = logStart + k;
    for (int t = 1; t < T; t++) {
        const double* prev = al + (t - 1) * k;
        const double* cur = be + t * k;
        const double* en = ex + t * k;
        double sn = s[t];
        for (int a = 0; a < k; a++) {
            if (prev[a] == 0.0) continue;
            for (int b = 0; b < k; b++) {
                double tr = expTrans[a * k + b];
                if (tr != 0.0) dTrans[a * k + b] += scale * (float)(prev[a] * tr * en[b] * cur[b] / sn);
            }
        }
        dTrans[tags[(t - 1) * n + i] * k + tags[t * n + i]] -= scale;
    }
    double goldScore = 0.0;
    for (int t = 0; t < T; t++) {
        int g = tags[t * n + i];
        float* d = dE + ((long long)t * n + i) * k;
        const float* row = e + ((long long)t * n + i) * k;
        for (int b = 0; b < k; b++) d[b] = scale * (float)(al[t * k + b] * be[t * k + b]);
        d[g] -= scale;
        goldScore += (double)row[g];
        if (t > 0) goldScore += logTrans[tags[(t - 1) * n + i] * k + g];
    }
    int g0 = tags[i], gl = tags[(T - 1) * n + i];
    goldScore += logStart[g0] + logEnd[gl];
    for (int b = 0; b < k; b++) {
        dStart[b] += scale * (float)(al[b] * be[b]);
        dEnd[b] += scale * (float)(al[(T - 1) * k + b] * be[(T - 1) * k + b]);
    }
    dStart[g0] -= scale;
    dEnd[gl] -= scale;
    loss[i] = logZ - goldScore;
}
NER_LAUNCHER(crf_forward_backward)

// The CRF weights' gradients: the sentences' partials summed in sentence order, added to the block.
extern "C" __global__ void crf_gradient_sums(int n, int k, const float* __restrict__ partial, float* __restrict__ dTrans,
                                             float* __restrict__ dStart, float* __restrict__ dEnd) {
    ITEM;
    int m = k * k + 2 * k;
    if (item >= m) return;
    float acc = 0.f;
    for (int i = 0; i < n; i++) acc += partial[(long long)i * m + item];
    if (item < k * k) dTrans[item] += acc;
    else if (item < k * k + k) dStart[item - k * k] += acc;
    else dEnd[item - k * k - k] += acc;
}
NER_LAUNCHER(crf_gradient_sums)

// The best path of sentence i (Viterbi in log space, ties to the lower tag, as on the CPU), into
// path[t·n + i]. work: 2k doubles of scores and T·k back-pointers (as doubles) per sentence.
extern "C" __global__ void crf_viterbi(int n, int T, int k, const float* __restrict__ e, const double* __restrict__ tab,
                                       double* __restrict__ work, int* __restrict__ path) {
    ITEM;
    if (item >= n) return;
    int i = item;
    const double* logTrans = tab + k * k + 2 * k;
    const double* logStart = logTrans + k * k;
    const double* logEnd = logStart + k;
    double* score = crf_work(work, i, T, k).al;
    double* back = score + 2 * k;
    for (int b = 0; b < k; b++) score[b] = logStart[b] + (double)e[(long long)i * k + b];
    for (int t = 1; t < T; t++) {
        const double* prev = score + ((t - 1) & 1) * k;
        double* cur = score + (t & 1) * k;
        const float* row = e + ((long long)t * n + i) * k;
        for (int b = 0; b < k; b++) {
            double best = -INFINITY;
            int arg = 0;
            for (int a = 0; a < k; a++) {
                double v = prev[a] + logTrans[a * k + b];
                if (v > best) { best = v; arg = a; }
            }
            cur[b] = best + (double)row[b];
            back[t * k + b] = (double)arg;
        }
    }
    const double* last = score + ((T - 1) & 1) * k;
    double best = -INFINITY;
    int arg = 0;
    for (int b = 0; b < k; b++) {
        double v = last[b] + logEnd[b];
        if (v > best) { best = v; arg = b; }
    }
    path[(T - 1) * n + i] = arg;
    for (int t = T - 1; t >= 1; t--) {
        arg = (int)back[t * k + arg];
        path[(t - 1) * n + i] = arg;
    }
}
NER_LAUNCHER(crf_viterbi)

// The marginal probability of each token's decoded tag.
extern "C" __global__ void crf_marginals(int n, int T, int k, const float* __restrict__ e, const double* __restrict__ tab,
                                         double* __restrict__ work, const int* __restrict__ path, float* __restrict__ scores) {
    ITEM;
    if (item >= n) return;
    int i = item;
    CRFWork w = crf_work(work, i, T, k);
    double *al = w.al, *be = w.be;
    crf_alpha_beta(i, n, T, k, e, tab, al, be, w.ex, w.s);
    for (int t = 0; t < T; t++) {
        int b = path[t * n + i];
        scores[t * n + i] = (float)(al[t * k + b] * be[t * k + b]);
    }
}
NER_LAUNCHER(crf_marginals)

// partial[p] += the sum of squares of g[p], g[p + parts], ... (first stage of the gradient norm).
extern "C" __global__ void sum_squares(int count, int parts, const float* __restrict__ g, double* __restrict__ partial) {
    ITEM;
    if (item >= parts) return;
    double s = 0.0;
    for (int q = item; q < count; q += parts) s += (double)(g[q] * g[q]);
    partial[item] += s;
}
NER_LAUNCHER(sum_squares)

// stats = [summed loss, gradient norm, clipping factor]: the one thing the host reads per batch.
extern "C" __global__ void batch_stats(int parts, const double* __restrict__ partial, int n, const double* __restrict__ loss,
                                       float clip, double* __restrict__ stats) {
    ITEM;
    if (item != 0) return;
    double sq = 0.0, l = 0.0;
    for (int p = 0; p < parts; p++) sq += partial[p];
    for (int i = 0; i < n; i++) l += loss[i];
    double norm = sqrt(sq);
    stats[0] = l;
    stats[1] = norm;
    stats[2] = norm > (double)clip ? (double)(float)((double)clip / norm) : 1.0;
}
NER_LAUNCHER(batch_stats)

// Updates are skipped when the batch diverged (the host then stops the run), so the weights stay
// those of the last good batch.
__device__ __forceinline__ int diverged(const double* stats) { return !isfinite(stats[0]) || !isfinite(stats[1]); }

extern "C" __global__ void adam_dense(int count, float a, float b1, float b2, float eps, const double* __restrict__ stats,
                                      const float* __restrict__ g, float* __restrict__ w, float* __restrict__ m, float* __restrict__ v) {
    ITEM;
    if (item >= count || diverged(stats)) return;
    float gi = g[item] * (float)stats[2];
    m[item] = b1 * m[item] + (1.f - b1) * gi;
    v[item] = b2 * v[item] + (1.f - b2) * gi * gi;
    w[item] -= a * m[item] / (sqrtf(v[item]) + eps);
}
NER_LAUNCHER(adam_dense)

// Lazy Adam over the word vectors the batch touched: slot u holds word ids[u]'s gradient.
extern "C" __global__ void adam_rows(int u, int dw, float a, float b1, float b2, float eps, const double* __restrict__ stats,
                                     const int* __restrict__ ids, const float* __restrict__ g, float* __restrict__ w,
                                     float* __restrict__ m, float* __restrict__ v) {
    ITEM;
    if (item >= u * dw || diverged(stats)) return;
    long long o = (long long)ids[item / dw] * dw + item % dw;
    float gi = g[item] * (float)stats[2];
    m[o] = b1 * m[o] + (1.f - b1) * gi;
    v[o] = b2 * v[o] + (1.f - b2) * gi * gi;
    w[o] -= a * m[o] / (sqrtf(v[o]) + eps);
}
NER_LAUNCHER(adam_rows)

extern "C" __global__ void sgd_dense(int count, float lr, const double* __restrict__ stats, const float* __restrict__ g,
                                     float* __restrict__ w) {
    ITEM;
    if (item >= count || diverged(stats)) return;
    w[item] -= lr * (g[item] * (float)stats[2]);
}
NER_LAUNCHER(sgd_dense)

extern "C" __global__ void sgd_rows(int u, int dw, float lr, const double* __restrict__ stats, const int* __restrict__ ids,
                                    const float* __restrict__ g, float* __restrict__ w) {
    ITEM;
    if (item >= u * dw || diverged(stats)) return;
    w[(long long)ids[item / dw] * dw + item % dw] -= lr * (g[item] * (float)stats[2]);
}
NER_LAUNCHER(sgd_rows)
"""#
}
