// Hand-written kernels for the fused training ops (see kernels.rs). bf16 is handled as its
// bits, so the source needs no CUDA header and compiles with NVRTC alone. Row kernels run
// one block per row; their arithmetic is f32.

typedef unsigned short bf16;
typedef unsigned long long u64;

__device__ __forceinline__ float load(bf16 h) { return __uint_as_float(((unsigned)h) << 16); }

// Round to nearest even, as every other bf16 conversion does.
__device__ __forceinline__ bf16 store(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)0x7fc0u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

// Elementwise kernels take 8 elements a thread: one 16-byte access each when the pointers
// allow it and n is a multiple of 8, element by element otherwise.
__device__ __forceinline__ bool aligned16(const void* p) { return ((u64)p & 15) == 0; }

__device__ __forceinline__ void load_group(const bf16* p, u64 g, u64 n, bool vec, float* f) {
    if (vec) {
        const uint4 u = ((const uint4*)p)[g];
        const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[2 * k] = __uint_as_float(w[k] << 16);
            f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
        }
        return;
    }
#pragma unroll
    for (int l = 0; l < 8; l++) f[l] = g * 8 + l < n ? load(p[g * 8 + l]) : 0.f;
}

__device__ __forceinline__ void store_group(bf16* p, u64 g, u64 n, bool vec, const float* f) {
    if (vec) {
        unsigned w[4];
#pragma unroll
        for (int k = 0; k < 4; k++)
            w[k] = (unsigned)store(f[2 * k]) | ((unsigned)store(f[2 * k + 1]) << 16);
        ((uint4*)p)[g] = make_uint4(w[0], w[1], w[2], w[3]);
        return;
    }
#pragma unroll
    for (int l = 0; l < 8; l++)
        if (g * 8 + l < n) p[g * 8 + l] = store(f[l]);
}

#define FOR_EACH_GROUP(g, n) \
    for (u64 g = blockIdx.x * (u64)blockDim.x + threadIdx.x; g * 8 < (n); g += (u64)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Every thread of the block gets the total; blockDim.x is a multiple of 32.
__device__ float block_sum(float v) {
    __shared__ float part[32];
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : 0.f;
    return warp_sum(v);
}

__device__ float block_max(float v) {
    __shared__ float part[32];
    v = warp_max(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : -INFINITY;
    return warp_max(v);
}

// Two partial (max, Σ exp(x − max)) pairs as one.
__device__ __forceinline__ void merge_lse(float& m, float& sum, float m2, float sum2) {
    const float top = fmaxf(m, m2);
    if (top == -INFINITY) return;
    sum = sum * expf(m - top) + sum2 * expf(m2 - top);
    m = top;
}

// log Σ exp(x) over a row of `cols` bf16 values, in one read (an online max), every thread of
// the block getting it; blockDim.x a multiple of 32.
__device__ float block_logsumexp(const bf16* in, int cols) {
    __shared__ float part_m[32], part_s[32];
    const bool vec = aligned16(in) && cols % 8 == 0;
    float m = -INFINITY, sum = 0.f;
    for (int g = threadIdx.x; g * 8 < cols; g += blockDim.x) {
        float f[8];
        load_group(in, g, cols, vec, f);
        float top = m;
#pragma unroll
        for (int l = 0; l < 8; l++)
            if (g * 8 + l < cols) top = fmaxf(top, f[l]);
        float add = 0.f;
#pragma unroll
        for (int l = 0; l < 8; l++)
            if (g * 8 + l < cols) add += expf(f[l] - top);
        sum = (m == -INFINITY ? 0.f : sum * expf(m - top)) + add;
        m = top;
    }
    for (int o = 16; o > 0; o >>= 1)
        merge_lse(m, sum, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, sum, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
        part_m[warp] = m;
        part_s[warp] = sum;
    }
    __syncthreads();
    m = lane < warps ? part_m[lane] : -INFINITY;
    sum = lane < warps ? part_s[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1)
        merge_lse(m, sum, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, sum, o));
    return m + logf(sum);
}

// Dropout's bits: elements come in groups of 4 (i / 4), each group's 64 bits are SplitMix64
// of (seed, group), and element i keeps its input when its 16 bits, (i % 4)-th from the
// bottom, are below `threshold` (keep · 2¹⁶). The CPU path (kernels.rs, `keeps`) computes
// the same bits.
__device__ __forceinline__ u64 dropout_bits(u64 seed, u64 group) {
    u64 z = seed + (group + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ bool kept(u64 bits, int lane, unsigned threshold) {
    return ((bits >> (16 * lane)) & 0xffffu) < threshold;
}

// Zeroes what dropout drops in a group of 8 elements (two groups of dropout bits).
__device__ __forceinline__ void drop_group(u64 seed, u64 g, unsigned threshold, float* f) {
    const u64 bits[2] = {dropout_bits(seed, 2 * g), dropout_bits(seed, 2 * g + 1)};
#pragma unroll
    for (int l = 0; l < 8; l++)
        if (!kept(bits[l / 4], l % 4, threshold)) f[l] = 0.f;
}

// y = x where kept, else 0 (no rescale).
extern "C" __global__ void dropout_bf16(const bf16* x, bf16* y, u64 n, u64 seed, unsigned threshold) {
    const bool vec = aligned16(x) && aligned16(y) && n % 8 == 0;
    FOR_EACH_GROUP(g, n) {
        float f[8];
        load_group(x, g, n, vec, f);
        drop_group(seed, g, threshold, f);
        store_group(y, g, n, vec, f);
    }
}

// out = base + dropout(t), the mask drawn as dropout_bf16 draws it (no rescale).
extern "C" __global__ void dropout_add_bf16(const bf16* base, const bf16* t, bf16* out, u64 n,
                                            u64 seed, unsigned threshold) {
    const bool vec = aligned16(base) && aligned16(t) && aligned16(out) && n % 8 == 0;
    FOR_EACH_GROUP(g, n) {
        float f[8], b[8];
        load_group(t, g, n, vec, f);
        drop_group(seed, g, threshold, f);
        load_group(base, g, n, vec, b);
#pragma unroll
        for (int l = 0; l < 8; l++) f[l] += b[l];
        store_group(out, g, n, vec, f);
    }
}

// As softmax_stats, for one warp: every lane gets the row's max and 1 / Σ exp.
__device__ void warp_softmax_stats(const bf16* in, int limit, float scale, float* max_out,
                                   float* inv_out) {
    const int lane = threadIdx.x & 31;
    float m = -INFINITY;
    for (int j = lane; j < limit; j += 32) m = fmaxf(m, load(in[j]) * scale);
    m = warp_max(m);
    float sum = 0.f;
    for (int j = lane; j < limit; j += 32) sum += expf(load(in[j]) * scale - m);
    *max_out = m;
    *inv_out = 1.f / warp_sum(sum);
}

// Rows of at most SHORT_ROW columns, a multiple of 8, sit in registers: lane l holds columns
// 8l..8l+7 (one 16-byte load), so the row is read from memory once.
#define SHORT_ROW 256

__device__ __forceinline__ bool short_rows(int cols, const void* a, const void* b, const void* c) {
    return cols <= SHORT_ROW && cols % 8 == 0 && aligned16(a) && aligned16(b) && aligned16(c);
}

// Lane's 8 columns of `row`: scale·x where j < limit, −∞ elsewhere; `raw` gets x (0 past cols).
__device__ __forceinline__ void short_row(const bf16* x, u64 row, int cols, int limit, float scale,
                                          float* scaled, float* raw) {
    const int lane = threadIdx.x & 31;
    const bool has = lane * 8 < cols;
    if (has) load_group(x, row * (cols / 8) + lane, 0, true, raw);
#pragma unroll
    for (int l = 0; l < 8; l++) {
        if (!has) raw[l] = 0.f;
        scaled[l] = has && lane * 8 + l < limit ? raw[l] * scale : -INFINITY;
    }
}

// Probabilities of a short row from its scaled scores (−∞ where masked), in place.
__device__ __forceinline__ void short_softmax(float* v) {
    float m = -INFINITY;
#pragma unroll
    for (int l = 0; l < 8; l++) m = fmaxf(m, v[l]);
    m = warp_max(m);
    float sum = 0.f;
#pragma unroll
    for (int l = 0; l < 8; l++) {
        v[l] = v[l] == -INFINITY ? 0.f : expf(v[l] - m);
        sum += v[l];
    }
    const float inv = 1.f / warp_sum(sum);
#pragma unroll
    for (int l = 0; l < 8; l++) v[l] *= inv;
}

// Causal softmax of scale·s over each row of a (…, q_len, cols) score block: query q sees keys
// j ≤ q + offset; the others get probability 0. A warp per row (rows are short: one block
// per row spent its time synchronising).
extern "C" __global__ void causal_softmax_bf16(const bf16* s, bf16* p, int rows, int cols,
                                               int q_len, int offset, float scale) {
    const u64 row = blockIdx.x * (u64)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= (u64)rows) return;
    const int lane = threadIdx.x & 31;
    const int limit = min(cols, (int)(row % q_len) + offset + 1);
    if (short_rows(cols, s, p, p)) {
        float v[8], raw[8];
        short_row(s, row, cols, limit, scale, v, raw);
        short_softmax(v);
        if (lane * 8 < cols) store_group(p, row * (cols / 8) + lane, 0, true, v);
        return;
    }
    const bf16* in = s + row * cols;
    bf16* out = p + row * cols;
    float m, inv;
    warp_softmax_stats(in, limit, scale, &m, &inv);
    for (int j = lane; j < cols; j += 32)
        out[j] = j < limit ? store(expf(load(in[j]) * scale - m) * inv) : (bf16)0;
}

// The scores' gradient: ds = p ⊙ (dp − Σ dp ⊙ p) · scale, p recomputed from s in f32.
extern "C" __global__ void causal_softmax_bwd_bf16(const bf16* s, const bf16* dp, bf16* ds,
                                                   int rows, int cols, int q_len, int offset,
                                                   float scale) {
    const u64 row = blockIdx.x * (u64)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= (u64)rows) return;
    const int lane = threadIdx.x & 31;
    const int limit = min(cols, (int)(row % q_len) + offset + 1);
    if (short_rows(cols, s, dp, ds)) {
        float pv[8], raw[8], dv[8], unused[8];
        short_row(s, row, cols, limit, scale, pv, raw);
        short_softmax(pv);
        short_row(dp, row, cols, cols, 1.f, unused, dv);
        float dot = 0.f;
#pragma unroll
        for (int l = 0; l < 8; l++) dot += pv[l] * dv[l];
        dot = warp_sum(dot);
#pragma unroll
        for (int l = 0; l < 8; l++) pv[l] = pv[l] * (dv[l] - dot) * scale;
        if (lane * 8 < cols) store_group(ds, row * (cols / 8) + lane, 0, true, pv);
        return;
    }
    const bf16* in = s + row * cols;
    const bf16* d = dp + row * cols;
    bf16* out = ds + row * cols;
    float m, inv;
    warp_softmax_stats(in, limit, scale, &m, &inv);
    float dot = 0.f;
    for (int j = lane; j < limit; j += 32) dot += expf(load(in[j]) * scale - m) * inv * load(d[j]);
    dot = warp_sum(dot);
    for (int j = lane; j < cols; j += 32) {
        const float pj = j < limit ? expf(load(in[j]) * scale - m) * inv : 0.f;
        out[j] = store(pj * (load(d[j]) - dot) * scale);
    }
}

// out[row] = (log softmax(x[row])[t[row]], log Σ exp x[row]), in f32: the label's log-prob and
// what the backward needs of the row.
extern "C" __global__ void label_logp_bf16(const bf16* x, const unsigned* t, float* out, int vocab) {
    const u64 row = blockIdx.x;
    const bf16* in = x + row * vocab;
    const float lse = block_logsumexp(in, vocab);
    if (threadIdx.x == 0) {
        out[2 * row] = load(in[t[row]]) - lse;
        out[2 * row + 1] = lse;
    }
}

// dx[row] = g · (onehot(t[row]) − softmax(x[row])), with gl[row] = (g, log Σ exp x[row]): one
// read of x and one write.
extern "C" __global__ void label_logp_bwd_bf16(const bf16* x, const unsigned* t, const float* gl,
                                               bf16* dx, int vocab) {
    const u64 row = blockIdx.x;
    const bf16* in = x + row * vocab;
    bf16* out = dx + row * vocab;
    const float g = gl[2 * row], lse = gl[2 * row + 1];
    const int target = (int)t[row];
    const bool vec = aligned16(in) && aligned16(out) && vocab % 8 == 0;
    for (int e = threadIdx.x; e * 8 < vocab; e += blockDim.x) {
        float f[8];
        load_group(in, e, vocab, vec, f);
#pragma unroll
        for (int l = 0; l < 8; l++) f[l] = g * ((e * 8 + l == target ? 1.f : 0.f) - expf(f[l] - lse));
        store_group(out, e, vocab, vec, f);
    }
}

// RMSNorm's input gradient: with r = 1/√(mean(x²) + eps) and x̂ = x·r,
// dx = r·(g·w − x̂·mean(g·w·x̂)).
extern "C" __global__ void rms_norm_bwd_bf16(const bf16* x, const bf16* g, const float* w,
                                             bf16* dx, int cols, float eps) {
    const u64 row = blockIdx.x;
    const bf16* xr = x + row * cols;
    const bf16* gr = g + row * cols;
    bf16* out = dx + row * cols;
    float ss = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) ss += load(xr[j]) * load(xr[j]);
    const float r = rsqrtf(block_sum(ss) / cols + eps);
    float dot = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += load(gr[j]) * w[j] * load(xr[j]) * r;
    dot = block_sum(dot) / cols;
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        out[j] = store(r * (load(gr[j]) * w[j] - load(xr[j]) * r * dot));
}

// out = [a, scale·b] in bf16: an adapter's A and its scaled B cast by one launch.
extern "C" __global__ void cast_pair_bf16(const float* a, const float* b, bf16* out, u64 na, u64 nb,
                                          float scale) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < na + nb; i += (u64)gridDim.x * blockDim.x)
        out[i] = store(i < na ? a[i] : b[i - na] * scale);
}

// (b, s, h, d) → (b, h, s, d) when to_heads, else back: 8 elements (16 bytes) a thread, d a
// multiple of 8 and both pointers 16-byte aligned (the caller checks).
extern "C" __global__ void heads_transpose_bf16(const bf16* x, bf16* out, int b, int s, int h,
                                                int d, int to_heads) {
    const int groups = d / 8;
    const u64 n = (u64)b * s * h * groups;
    for (u64 e = blockIdx.x * (u64)blockDim.x + threadIdx.x; e < n; e += (u64)gridDim.x * blockDim.x) {
        const int gi = e % groups;
        u64 r = e / groups;
        const int hi = r % h;
        r /= h;
        const int si = r % s;
        const u64 bi = r / s;
        const u64 bshd = ((bi * s + si) * h + hi) * d + gi * 8;
        const u64 bhsd = ((bi * h + hi) * s + si) * d + gi * 8;
        const u64 from = to_heads ? bshd : bhsd, to = to_heads ? bhsd : bshd;
        *(uint4*)(out + to) = *(const uint4*)(x + from);
    }
}

// y = op(a, b) element by element, 8 elements a thread.
#define BINARY_KERNEL(name, op)                                                         \
    extern "C" __global__ void name(const bf16* a, const bf16* b, bf16* y, u64 n) {    \
        const bool vec = aligned16(a) && aligned16(b) && aligned16(y) && n % 8 == 0;   \
        FOR_EACH_GROUP(g, n) {                                                          \
            float av[8], bv[8];                                                         \
            load_group(a, g, n, vec, av);                                               \
            load_group(b, g, n, vec, bv);                                               \
            for (int l = 0; l < 8; l++) av[l] = op(av[l], bv[l]);                       \
            store_group(y, g, n, vec, av);                                              \
        }                                                                               \
    }

__device__ __forceinline__ float plus(float a, float b) { return a + b; }
__device__ __forceinline__ float silu_times(float a, float b) { return a / (1.f + expf(-a)) * b; }

// y = a + b.
BINARY_KERNEL(add_bf16, plus)
// y = silu(a) · b.
BINARY_KERNEL(swiglu_bf16, silu_times)

// The gradients of silu(a)·b: out[0..n) = g·b·σ(a)(1 + a(1 − σ(a))), out[n..2n) = g·silu(a).
extern "C" __global__ void swiglu_bwd_bf16(const bf16* a, const bf16* b, const bf16* g, bf16* out,
                                           u64 n) {
    const bool vec = aligned16(a) && aligned16(b) && aligned16(g) && aligned16(out) && n % 8 == 0;
    FOR_EACH_GROUP(e, n) {
        float av[8], bv[8], gv[8];
        load_group(a, e, n, vec, av);
        load_group(b, e, n, vec, bv);
        load_group(g, e, n, vec, gv);
#pragma unroll
        for (int l = 0; l < 8; l++) {
            const float sig = 1.f / (1.f + expf(-av[l]));
            const float da = gv[l] * bv[l] * sig * (1.f + av[l] * (1.f - sig));
            bv[l] = gv[l] * av[l] * sig;
            av[l] = da;
        }
        store_group(out, e, n, vec, av);
        store_group(out + n, e, n, vec, bv);
    }
}

__device__ __forceinline__ float half_at(const unsigned char* p) {
    const unsigned short h = (unsigned short)p[0] | ((unsigned short)p[1] << 8);
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// GGUF blocks of 32 weights to bf16 (ggml's layouts: d and m are f16; a 4-bit block has
// element j < 16 in the low nibble of byte j, j ≥ 16 in the high nibble of byte j − 16).
// A thread per quarter block: for 4-bit blocks elements 4p..4p+3 and 16+4p..16+4p+3, for
// 8-bit ones 8p..8p+7. `blocks` is the quantized tensor's device pointer; `anchor` is unused.
__device__ __forceinline__ void store4(bf16* o, const float* f) {
    *(uint2*)o = make_uint2((unsigned)store(f[0]) | ((unsigned)store(f[1]) << 16),
                            (unsigned)store(f[2]) | ((unsigned)store(f[3]) << 16));
}

// One quarter of a 4-bit block whose nibbles start at byte `qs`: value = d·q + m.
__device__ __forceinline__ void dequantize_nibbles(const unsigned char* qs, float d, float m,
                                                   bf16* o, int part) {
    float lo[4], hi[4];
#pragma unroll
    for (int l = 0; l < 4; l++) {
        const unsigned char q = qs[4 * part + l];
        lo[l] = d * (float)(q & 15) + m;
        hi[l] = d * (float)(q >> 4) + m;
    }
    store4(o + 4 * part, lo);
    store4(o + 16 + 4 * part, hi);
}

extern "C" __global__ void dequantize_q4_1_bf16(const bf16* anchor, bf16* out, u64 blocks, u64 n) {
    for (u64 t = blockIdx.x * (u64)blockDim.x + threadIdx.x; t < n * 4; t += (u64)gridDim.x * blockDim.x) {
        const unsigned char* p = (const unsigned char*)blocks + (t / 4) * 20;
        dequantize_nibbles(p + 4, half_at(p), half_at(p + 2), out + (t / 4) * 32, t % 4);
    }
}

extern "C" __global__ void dequantize_q4_0_bf16(const bf16* anchor, bf16* out, u64 blocks, u64 n) {
    for (u64 t = blockIdx.x * (u64)blockDim.x + threadIdx.x; t < n * 4; t += (u64)gridDim.x * blockDim.x) {
        const unsigned char* p = (const unsigned char*)blocks + (t / 4) * 18;
        const float d = half_at(p);
        dequantize_nibbles(p + 2, d, -8.f * d, out + (t / 4) * 32, t % 4);
    }
}

extern "C" __global__ void dequantize_q8_0_bf16(const bf16* anchor, bf16* out, u64 blocks, u64 n) {
    for (u64 t = blockIdx.x * (u64)blockDim.x + threadIdx.x; t < n * 4; t += (u64)gridDim.x * blockDim.x) {
        const unsigned char* p = (const unsigned char*)blocks + (t / 4) * 34;
        const float d = half_at(p);
        float f[8];
#pragma unroll
        for (int l = 0; l < 8; l++) f[l] = d * (float)(signed char)p[2 + 8 * (t % 4) + l];
        store_group(out + (t / 4) * 32, t % 4, 32, true, f);
    }
}

// The rotated pair e of a (b, s, h, d) / (b, h, s, d) pair of layouts: its first element's
// index in each, and its cos/sin index (tables of s or b·s rows of d/2, `cs_batch` apart).
struct RopePair {
    u64 bshd, bhsd, table;
};

__device__ __forceinline__ RopePair rope_pair(u64 e, int s, int h, int d, int cs_batch) {
    const int half = d / 2;
    const int i = e % half;
    const u64 rest = e / half;
    const int hi = rest % h, si = (rest / h) % s, bi = rest / ((u64)h * s);
    return {rest * d + i, (((u64)bi * h + hi) * s + si) * d + i,
            (u64)bi * cs_batch + (u64)si * half + i};
}

// Rotary embedding fused with the head split: x (b, s, h, d) → out (b, h, s, d) rotated by
// cos/sin. A thread per rotated pair.
extern "C" __global__ void rope_split_bf16(const bf16* x, const float* cs, const float* sn,
                                           bf16* out, int b, int s, int h, int d, int cs_batch) {
    const int half = d / 2;
    const u64 n = (u64)b * s * h * half;
    for (u64 e = blockIdx.x * (u64)blockDim.x + threadIdx.x; e < n; e += (u64)gridDim.x * blockDim.x) {
        const RopePair p = rope_pair(e, s, h, d, cs_batch);
        const float x1 = load(x[p.bshd]), x2 = load(x[p.bshd + half]);
        const float co = cs[p.table], si = sn[p.table];
        out[p.bhsd] = store(x1 * co - x2 * si);
        out[p.bhsd + half] = store(x1 * si + x2 * co);
    }
}

// rope_split_bf16's input gradient: g (b, h, s, d) rotated back, heads merged: (b, s, h, d).
extern "C" __global__ void rope_merge_bwd_bf16(const bf16* g, const float* cs, const float* sn,
                                               bf16* out, int b, int s, int h, int d,
                                               int cs_batch) {
    const int half = d / 2;
    const u64 n = (u64)b * s * h * half;
    for (u64 e = blockIdx.x * (u64)blockDim.x + threadIdx.x; e < n; e += (u64)gridDim.x * blockDim.x) {
        const RopePair p = rope_pair(e, s, h, d, cs_batch);
        const float g1 = load(g[p.bhsd]), g2 = load(g[p.bhsd + half]);
        const float co = cs[p.table], si = sn[p.table];
        out[p.bshd] = store(g1 * co + g2 * si);
        out[p.bshd + half] = store(g2 * co - g1 * si);
    }
}

// Parameters and their gradients as a list of f32 tensors: `table` holds their device addresses
// (table[0..params)), then their offsets in one flat vector laid end to end
// (table[params..2·params], the last one its length). Block row y works on tensor y.
#define FOR_EACH_OF_TENSOR(i, len) \
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < (len); i += (u64)gridDim.x * blockDim.x)

// This block row's tensor: its address, and where it starts in the flat vector and how long it is.
struct ListEntry {
    long long address;
    u64 start, len;
};

__device__ __forceinline__ ListEntry list_entry(const long long* table, int params) {
    const int p = blockIdx.y;
    const u64 start = table[params + p];
    return {table[p], start, table[params + p + 1] - start};
}

// The tensors copied into one flat vector; a zero address stands for zeros.
extern "C" __global__ void gather_f32(const long long* table, float* out, int params) {
    const ListEntry t = list_entry(table, params);
    const float* src = (const float*)t.address;
    FOR_EACH_OF_TENSOR(i, t.len) out[t.start + i] = src ? src[i] : 0.f;
}

// torch.optim.AdamW's step (decoupled weight decay, bias-corrected moments) on the tensors,
// in place, with the flat gradient g and the flat moments at m and v (in place too).
// `done`, one element, is the launch's output.
extern "C" __global__ void adamw_f32(const long long* table, const float* g, float* done,
                                     int params, u64 m_at, u64 v_at, float lr, float beta1,
                                     float beta2, float eps, float decay, float bias1,
                                     float bias2) {
    const ListEntry t = list_entry(table, params);
    float* w = (float*)t.address;
    float* m = (float*)m_at;
    float* v = (float*)v_at;
    FOR_EACH_OF_TENSOR(i, t.len) {
        const u64 k = t.start + i;
        const float gk = g[k];
        const float mk = beta1 * m[k] + (1.f - beta1) * gk;
        const float vk = beta2 * v[k] + (1.f - beta2) * gk * gk;
        m[k] = mk;
        v[k] = vk;
        w[i] = w[i] * (1.f - lr * decay) - mk / (bias1 / lr) / (sqrtf(vk / bias2) + eps);
    }
    if (blockIdx.y == 0 && blockIdx.x == 0 && threadIdx.x == 0) done[0] = 0.f;
}
