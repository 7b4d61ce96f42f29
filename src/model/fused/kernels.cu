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

// Every thread of the block gets the total; blockDim.x is a multiple of 32.
__device__ float block_sum(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float block_max(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The max of scale·x over a row's first `limit` entries, and 1 / Σ exp(scale·x − max):
// what a softmax of that row needs.
__device__ void softmax_stats(const bf16* in, int limit, float scale, float* max_out, float* inv_out) {
    float m = -INFINITY;
    for (int j = threadIdx.x; j < limit; j += blockDim.x) m = fmaxf(m, load(in[j]) * scale);
    m = block_max(m);
    float sum = 0.f;
    for (int j = threadIdx.x; j < limit; j += blockDim.x) sum += expf(load(in[j]) * scale - m);
    *max_out = m;
    *inv_out = 1.f / block_sum(sum);
}

// Dropout's keep decision for element i: SplitMix64 of (seed, i), its top 24 bits as a
// uniform in [0, 1). The CPU path (kernels.rs, `keeps`) computes the same bits.
__device__ __forceinline__ bool keeps(u64 seed, u64 i, float keep) {
    u64 z = seed + (i + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f) < keep;
}

// y = x where kept, else 0 (no rescale).
extern "C" __global__ void dropout_bf16(const bf16* x, bf16* y, u64 n, u64 seed, float keep) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
        y[i] = keeps(seed, i, keep) ? x[i] : (bf16)0;
}

// Causal softmax of scale·s over each row of a (…, q_len, cols) score block: query q sees keys
// j ≤ q + offset; the others get probability 0.
extern "C" __global__ void causal_softmax_bf16(const bf16* s, bf16* p, int cols, int q_len,
                                               int offset, float scale) {
    const u64 row = blockIdx.x;
    const bf16* in = s + row * cols;
    bf16* out = p + row * cols;
    const int limit = min(cols, (int)(row % q_len) + offset + 1);
    float m, inv;
    softmax_stats(in, limit, scale, &m, &inv);
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        out[j] = j < limit ? store(expf(load(in[j]) * scale - m) * inv) : (bf16)0;
}

// The scores' gradient: ds = p ⊙ (dp − Σ dp ⊙ p) · scale, p recomputed from s in f32.
extern "C" __global__ void causal_softmax_bwd_bf16(const bf16* s, const bf16* dp, bf16* ds,
                                                   int cols, int q_len, int offset, float scale) {
    const u64 row = blockIdx.x;
    const bf16* in = s + row * cols;
    const bf16* d = dp + row * cols;
    bf16* out = ds + row * cols;
    const int limit = min(cols, (int)(row % q_len) + offset + 1);
    float m, inv;
    softmax_stats(in, limit, scale, &m, &inv);
    float dot = 0.f;
    for (int j = threadIdx.x; j < limit; j += blockDim.x)
        dot += expf(load(in[j]) * scale - m) * inv * load(d[j]);
    dot = block_sum(dot);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        const float pj = j < limit ? expf(load(in[j]) * scale - m) * inv : 0.f;
        out[j] = store(pj * (load(d[j]) - dot) * scale);
    }
}

// out[row] = log softmax(x[row])[t[row]], in f32.
extern "C" __global__ void label_logp_bf16(const bf16* x, const unsigned* t, float* out, int vocab) {
    const u64 row = blockIdx.x;
    const bf16* in = x + row * vocab;
    float m, inv;
    softmax_stats(in, vocab, 1.f, &m, &inv);
    if (threadIdx.x == 0) out[row] = load(in[t[row]]) - m + logf(inv);
}

// dx[row] = g[row] · (onehot(t[row]) − softmax(x[row])).
extern "C" __global__ void label_logp_bwd_bf16(const bf16* x, const unsigned* t, const float* g,
                                               bf16* dx, int vocab) {
    const u64 row = blockIdx.x;
    const bf16* in = x + row * vocab;
    bf16* out = dx + row * vocab;
    float m, inv;
    softmax_stats(in, vocab, 1.f, &m, &inv);
    const float gr = g[row];
    const unsigned target = t[row];
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        out[j] = store(gr * ((j == (int)target ? 1.f : 0.f) - expf(load(in[j]) - m) * inv));
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

// y = silu(a) · b.
extern "C" __global__ void swiglu_bf16(const bf16* a, const bf16* b, bf16* y, u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        const float av = load(a[i]);
        y[i] = store(av / (1.f + expf(-av)) * load(b[i]));
    }
}

// The gradients of silu(a)·b: out[0..n) = g·b·σ(a)(1 + a(1 − σ(a))), out[n..2n) = g·silu(a).
extern "C" __global__ void swiglu_bwd_bf16(const bf16* a, const bf16* b, const bf16* g, bf16* out,
                                           u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        const float av = load(a[i]), gv = load(g[i]);
        const float sig = 1.f / (1.f + expf(-av));
        out[i] = store(gv * load(b[i]) * sig * (1.f + av * (1.f - sig)));
        out[n + i] = store(gv * av * sig);
    }
}
