// bf16 GEMM for AVX-512 BF16 CPUs (Zen 4/5, Cooper Lake, Sapphire Rapids and later).
//
// Built without -march: only the functions marked AVX512 below use AVX-512 instructions, so the same object runs
// (and graft_bf16_hardware() answers 0) on AVX2-only machines. On non-x86 targets only graft_bf16_round is real.
//
// Scheme: op(B) is packed into panels of NR = 32 columns, op(A) into micro-panels of at most MR_MAX
// rows; both hold bf16 k-pairs as 32-bit words, the operand layout of vdpbf16ps (word = lo: even k, hi: odd k).
// The micro-kernel keeps an mr × 32 fp32 tile in 2·mr zmm accumulators; each k-pair step is one broadcast of A's
// pair per row and two 16-column loads of B.
//
// Packing is kept cheap because it does not overlap with the kernels (about a third of the kernels' time at first
// in a MiniLM training step): plain A is packed row by row (convert and store, no transpose; the kernel reads it
// with a constant row stride), transposed A a group of panels at a time sweeping source rows in order, B without
// masks on whole vectors, and the next A panel's source is prefetched while the current one's kernels run.

#define _POSIX_C_SOURCE 200809L
#include "graft_bf16.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Round-to-nearest-even exactly as vcvtne2ps2bf16 does it, so that this is the reference for the packed values:
// the instruction treats subnormal inputs as zero (sign kept), sets the quiet bit of NaNs and lets values above the
// largest bf16 round to ±inf.
static inline uint32_t bf16_round_bits(uint32_t x) {
    uint32_t mag = x & 0x7fffffffu;
    if (mag < 0x00800000u) return x & 0x80000000u;
    if (mag > 0x7f800000u) return (x | 0x00400000u) & 0xffff0000u;
    return (x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u;
}

void graft_bf16_round(const float *src, float *dst, long count) {
    for (long i = 0; i < count; i++) {
        uint32_t x;
        memcpy(&x, &src[i], 4);
        x = bf16_round_bits(x);
        memcpy(&dst[i], &x, 4);
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
// The micro-kernel's row loops must be unrolled completely or acc[][] is kept in memory instead of registers.
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

enum {
    NR = 32,      // columns per B panel: two zmm of fp32 accumulators per row
    MR_MAX = 14,  // 28 accumulators + 2 B vectors + 1 broadcast = 31 of the 32 zmm registers
    KC = 512,     // k per block (even): the A micro-panel (MR_MAX·KC·2 B = 14 KiB) stays in L1
    NC = 768,     // columns per block: the packed B block (KC·NC·2 B = 768 KiB) fits the 1 MiB L2 of Zen 5
    GROUP = 8,    // transposed A: row panels packed together (8 · 14 rows · KC / 2 · 4 B = 112 KiB)
};  // (KC 256–1024 × NC 256–1024 all measured within ±5% on Zen 5: the kernel needs little bandwidth per flop)

static int detect_hardware(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE: xgetbv usable
    uint32_t xcr0, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0 & 0xe6u) != 0xe6u) return 0;  // OS saves xmm, ymm, opmask and both halves of the zmm state
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned f_bw_vl = (1u << 16) | (1u << 30) | (1u << 31);  // avx512f, avx512bw, avx512vl
    if ((b & f_bw_vl) != f_bw_vl || a < 1) return 0;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1u;  // avx512_bf16
}

int graft_bf16_hardware(void) {
    // cpuid traps to the hypervisor on VMs, so ask once; racing first calls store the same value.
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = detect_hardware();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

// One packing buffer per thread, kept for the thread's life (a fresh ~800 KiB allocation per call would be mmapped
// and page-faulted every time, which costs as much as a small GEMM) and freed by the key's destructor at thread exit.
#define BUF_BYTES ((size_t)(KC / 2) * (NC + GROUP * MR_MAX) * 4)
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_key_init(void) {
    if (pthread_key_create(&buf_key, free) != 0) abort();
}
static void *thread_buffer(void) {
    pthread_once(&buf_once, buf_key_init);
    void *p = pthread_getspecific(buf_key);
    if (!p) {
        p = aligned_alloc(64, BUF_BYTES);
        if (!p || pthread_setspecific(buf_key, p) != 0) {
            fputs("graft_bf16_gemm: cannot allocate packing buffer\n", stderr);
            abort();
        }
    }
    return p;
}

static inline __mmask16 first_lanes(int count) {
    return count >= 16 ? (__mmask16)0xffff : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

// B not transposed, rows running along k: X[kk][j] = src[kk·ld + j]. Column j goes to panel j / NR:
// dst[(j / NR)·NR·pairs + p·NR + j % NR] = pair (X[2p][j], X[2p+1][j]); columns ≥ cols (up to the panel's end)
// and k ≥ kc are zero. Whole source rows are swept at a time, which reads memory in order instead of one strided
// 128-byte piece per row and panel.
AVX512 static void pack_b_rows(uint32_t *dst, const float *src, long ld, int cols, int kc) {
    // word 2j ← x0[j], word 2j+1 ← x1[j]: undoes cvtne2ps's "x0 in low half, x1 in high half".
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const int pairs = (kc + 1) / 2, padded = (cols + NR - 1) / NR * NR, full = cols / 16 * 16;
    const long panel_stride = (long)NR * pairs;
    for (int p = 0; p < pairs; p++) {
        const float *r0 = src + 2L * p * ld, *r1 = 2 * p + 1 < kc ? r0 + ld : NULL;
        uint32_t *d = dst + (long)p * NR;
        int j = 0;
        if (r1)  // whole 16-column pieces of a full pair of rows: no masks (their set-up costs more than the work)
            for (; j < full; j += 16) {
                __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + j), _mm512_loadu_ps(r0 + j));
                _mm512_storeu_si512(d + (j / NR) * panel_stride + j % NR,
                                    _mm512_permutexvar_epi16(interleave, (__m512i)h));
            }
        for (; j < padded; j += 16) {  // the rest, zero-filled up to the panel's end
            const __mmask16 lm = first_lanes(cols - j);
            __m512 x0 = _mm512_maskz_loadu_ps(lm, r0 + j);
            __m512 x1 = r1 ? _mm512_maskz_loadu_ps(lm, r1 + j) : _mm512_setzero_ps();
            _mm512_storeu_si512(d + (j / NR) * panel_stride + j % NR,
                                _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0)));
        }
    }
}

// Transposed A for a group of consecutive row panels at once: X[kk][i] = src[kk·ld + i], panel q covers columns
// col[q] .. col[q] + width[q] and goes to dst + off[q] as pairs (X[2p][i], X[2p+1][i]) at p·width[q] + i - col[q].
// Packing panel by panel would read one 56-byte piece of each of kc source rows per panel (every cache line twice,
// far apart in time); sweeping each source row across the whole group reads memory in order.
AVX512 static void pack_a_trans_group(uint32_t *dst, const float *src, long ld, int panels, const int *col,
                                      const int *width, const long *off, int kc) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const int pairs = (kc + 1) / 2;
    const int span = col[panels - 1] + width[panels - 1] - col[0];
    for (int p = 0; p < pairs; p++) {
        const float *r0 = src + 2L * p * ld;
        const int has_odd = 2 * p + 1 < kc;
        // Rows stride by ld, which the hardware prefetchers follow poorly: fetch the rows four pairs ahead.
        if (2 * p + 8 < kc)
            for (int x = 0; x < span; x += 16) {
                _mm_prefetch((const char *)(r0 + 8 * ld + col[0] + x), _MM_HINT_T0);
                if (2 * p + 9 < kc) _mm_prefetch((const char *)(r0 + 9 * ld + col[0] + x), _MM_HINT_T0);
            }
        for (int q = 0; q < panels; q++) {
            const __mmask16 lm = first_lanes(width[q]);
            __m512 x0 = _mm512_maskz_loadu_ps(lm, r0 + col[q]);
            __m512 x1 = has_odd ? _mm512_maskz_loadu_ps(lm, r0 + ld + col[q]) : _mm512_setzero_ps();
            __m512i w = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
            _mm512_mask_storeu_epi32(dst + off[q] + (long)p * width[q], lm, w);
        }
    }
}

// In-register transpose of a 16×16 matrix of 32-bit words.
AVX512 static inline void transpose16(__m512i v[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    // u[4g + c], 128-bit lane L: column 4L + c of rows 4g .. 4g+3
    for (int g = 0; g < 16; g += 4) {
        u[g + 0] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    // 4×4 transpose of 128-bit lanes among u[c], u[4+c], u[8+c], u[12+c]
    for (int c = 0; c < 4; c++) {
        __m512i s0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
        __m512i s1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xee);
        __m512i s2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
        __m512i s3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xee);
        v[c] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        v[4 + c] = _mm512_shuffle_i32x4(s0, s2, 0xdd);
        v[8 + c] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        v[12 + c] = _mm512_shuffle_i32x4(s1, s3, 0xdd);
    }
}

// Source rows run along k contiguously: X[r][kk] = src[r·ld + kk] (B transposed; plain A uses pack_a_rows).
// dst[p·width + r] = pair (X[r][2p], X[r][2p+1]) for r < width (≤ 32); rows ≥ rows and k ≥ kc are zero.
// 32 consecutive k of a row convert to 16 pairs in one vector; a 16×16 transpose turns rows into columns.
AVX512 static void pack_k_contiguous(uint32_t *dst, int width, const float *src, long ld, int rows, int kc) {
    const int pairs = (kc + 1) / 2;
    for (int r0 = 0; r0 < width; r0 += 16) {
        const int nr = rows - r0 < 0 ? 0 : rows - r0 > 16 ? 16 : rows - r0;
        const __mmask16 sm = first_lanes(width - r0);
        for (int p0 = 0; p0 < pairs; p0 += 16) {
            const int k0 = 2 * p0;
            const __mmask16 lo = first_lanes(kc - k0), hi = first_lanes(kc - k0 - 16);
            __m512i v[16];
            UNROLL for (int i = 0; i < 16; i++) {  // unrolled so that v[] stays in registers
                if (i < nr) {
                    const float *s = src + (long)(r0 + i) * ld + k0;
                    // The source usually comes from L3 or memory, and 16–32 row streams are more than the hardware
                    // prefetchers follow: fetch this row's chunk two steps (256 bytes) ahead.
                    if (k0 + 64 < kc) _mm_prefetch((const char *)(s + 64), _MM_HINT_T0);
                    if (k0 + 80 < kc) _mm_prefetch((const char *)(s + 80), _MM_HINT_T0);
                    __m512 x0 = _mm512_maskz_loadu_ps(lo, s), x1 = _mm512_maskz_loadu_ps(hi, s + 16);
                    v[i] = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                } else {
                    v[i] = _mm512_setzero_si512();
                }
            }
            transpose16(v);
            const int np = pairs - p0 < 16 ? pairs - p0 : 16;
            UNROLL for (int q = 0; q < 16; q++)
                if (q < np) _mm512_mask_storeu_epi32(dst + (long)(p0 + q) * width + r0, sm, v[q]);
        }
    }
}

// Plain A (rows contiguous in k) for one row panel, kept row by row: dst[r·ARS + p] = pair (X[r][2p], X[r][2p+1]),
// X[r][kk] = src[r·ld + kk], k ≥ kc zero. 32 consecutive k of a row convert to 16 consecutive pairs in one
// vcvtne2ps2bf16, so this is a load-convert-store stream with no transpose; the kernel then broadcasts row r's pair
// from a constant row offset (r·ARS) instead of from the next word.
enum { ARS = KC / 2 };  // words per packed A row
AVX512 static void pack_a_rows(uint32_t *dst, const float *src, long ld, int rows, int kc) {
    const int pairs = (kc + 1) / 2;
    const int full = kc / 32 * 32;  // whole 32-k chunks need no masks (mask set-up costs more than the convert)
    for (int r = 0; r < rows; r++) {
        const float *s = src + (long)r * ld;
        uint32_t *d = dst + (long)r * ARS;
        for (int k0 = 0; k0 < full; k0 += 32)
            _mm512_storeu_si512(d + k0 / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k0 + 16),
                                                                          _mm512_loadu_ps(s + k0)));
        for (int k0 = full; k0 < kc; k0 += 32) {
            __m512 x0 = _mm512_maskz_loadu_ps(first_lanes(kc - k0), s + k0);
            __m512 x1 = _mm512_maskz_loadu_ps(first_lanes(kc - k0 - 16), s + k0 + 16);
            _mm512_mask_storeu_epi32(dst + (long)r * ARS + k0 / 2, first_lanes(pairs - k0 / 2),
                                     (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
        }
    }
}

// C[0..MR)[0..cols) = alpha·(A panel · B panel) + beta·C; beta == 0 never reads C.
// MR is a compile-time constant at every call site (see KERNEL below), so acc[][] lives in registers.
// Row r's pair p is at ap[p·MR + r] (A packed pair by pair) or, with ROWS, at ap[r·ARS + p] (pack_a_rows).
AVX512 static inline __attribute__((always_inline)) void kernel_body(const int MR, const int ROWS, long pairs,
                                                                     const uint32_t *ap,
                                                                     const uint32_t *bp, float *c, long ldc,
                                                                     int cols, float alpha, float beta) {
    __m512 acc[MR_MAX][2];
    UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp + 32 * p);
        __m512bh b1 = (__m512bh)_mm512_load_si512(bp + 32 * p + 16);
        UNROLL for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)(ROWS ? ap[r * ARS + p] : ap[p * MR + r]));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    const __mmask16 m0 = first_lanes(cols), m1 = first_lanes(cols - 16);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    UNROLL for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = _mm512_mul_ps(acc[r][0], va), v1 = _mm512_mul_ps(acc[r][1], va);
        if (beta != 0.0f) {
            v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, cr), vb, v0);
            v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, cr + 16), vb, v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

typedef void (*kernel_fn)(long, const uint32_t *, const uint32_t *, float *, long, int, float, float);
#define KERNEL(R)                                                                                           \
    AVX512 static void kernel_##R(long pairs, const uint32_t *ap, const uint32_t *bp, float *c, long ldc,  \
                                  int cols, float alpha, float beta) {                                     \
        kernel_body(R, 0, pairs, ap, bp, c, ldc, cols, alpha, beta);                                       \
    }                                                                                                      \
    AVX512 static void kernel_rows_##R(long pairs, const uint32_t *ap, const uint32_t *bp, float *c, long ldc, \
                                       int cols, float alpha, float beta) {                                \
        kernel_body(R, 1, pairs, ap, bp, c, ldc, cols, alpha, beta);                                       \
    }
KERNEL(1) KERNEL(2) KERNEL(3) KERNEL(4) KERNEL(5) KERNEL(6) KERNEL(7)
KERNEL(8) KERNEL(9) KERNEL(10) KERNEL(11) KERNEL(12) KERNEL(13) KERNEL(14)
static const kernel_fn kernels[MR_MAX + 1] = {
    NULL,      kernel_1,  kernel_2,  kernel_3,  kernel_4,  kernel_5,  kernel_6, kernel_7,
    kernel_8,  kernel_9,  kernel_10, kernel_11, kernel_12, kernel_13, kernel_14,
};
static const kernel_fn kernels_rows[MR_MAX + 1] = {
    NULL,           kernel_rows_1,  kernel_rows_2,  kernel_rows_3,  kernel_rows_4,
    kernel_rows_5,  kernel_rows_6,  kernel_rows_7,  kernel_rows_8,  kernel_rows_9,
    kernel_rows_10, kernel_rows_11, kernel_rows_12, kernel_rows_13, kernel_rows_14,
};

static void scale_c(int m, int n, float beta, float *c, long ldc) {
    if (beta == 1.0f) return;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

// Splits total into ceil(total / max) near-equal blocks, each a multiple of `unit`.
static int block_size(int total, int max, int unit) {
    int blocks = (total + max - 1) / max;
    int size = (total + blocks - 1) / blocks;
    return (size + unit - 1) / unit * unit;
}

// Prefetches part `part` of `parts` of the cache lines of rows × kc floats at src (row stride ld). Spread over the
// kernel calls of one row panel, this brings the next panel's A source into cache while the kernels compute, so that
// packing it does not wait on L3/memory latency. (One division per call: this runs between kernel calls.)
AVX512 static inline void prefetch_part(const float *src, long ld, int rows, int kc, int part, int parts) {
    const int per_row = (kc + 15) / 16, lines = rows * per_row;
    const int l0 = (int)((long)lines * part / parts), l1 = (int)((long)lines * (part + 1) / parts);
    int r = l0 / per_row, x = l0 % per_row;
    for (int l = l0; l < l1; l++) {
        _mm_prefetch((const char *)(src + r * ld + x * 16), _MM_HINT_T0);
        if (++x == per_row) x = 0, r++;
    }
}

AVX512 void graft_bf16_gemm(int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
                            const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    uint32_t *bpack = thread_buffer();
    uint32_t *apack = bpack + (size_t)(KC / 2) * NC;

    // Row panels as even as possible (e.g. 128 rows → 10 panels of 12–13, not 9 of 14 + one of 2).
    const int panels = (m + MR_MAX - 1) / MR_MAX, mr_small = m / panels, big_panels = m % panels;
    const int ncb = block_size(n, NC, NR), kcb = block_size(k, KC, 2);

    for (int jc = 0; jc < n; jc += ncb) {
        const int nc = n - jc < ncb ? n - jc : ncb, calls = (nc + NR - 1) / NR;
        for (int pc = 0; pc < k; pc += kcb) {
            const int kc = k - pc < kcb ? k - pc : kcb, pairs = (kc + 1) / 2;
            if (transB) {
                for (int j = 0; j < nc; j += NR)
                    pack_k_contiguous(bpack + (long)j * pairs, NR, b + (long)(jc + j) * ldb + pc, ldb,
                                      nc - j < NR ? nc - j : NR, kc);
            } else {
                pack_b_rows(bpack, b + (long)pc * ldb + jc, ldb, nc, kc);
            }
            const float beta_block = pc == 0 ? beta : 1.0f;
            for (int g0 = 0, i0 = 0; g0 < panels; g0 += GROUP) {
                const int gn = panels - g0 < GROUP ? panels - g0 : GROUP;
                int col[GROUP], width[GROUP];
                long off[GROUP];
                for (int q = 0, i = i0; q < gn; q++) {
                    width[q] = mr_small + (g0 + q < big_panels);
                    col[q] = i;
                    off[q] = (long)(q ? off[q - 1] + (long)width[q - 1] * pairs : 0);
                    i += width[q];
                }
                if (transA) pack_a_trans_group(apack, a + (long)pc * lda, lda, gn, col, width, off, kc);
                // Transposed A's next group: its first row and an upper bound of its width.
                const int next_group = col[gn - 1] + width[gn - 1], next_span = GROUP * (mr_small + 1);
                for (int q = 0; q < gn; q++) {
                    const int mr = width[q], i = col[q];
                    uint32_t *ap = apack + off[q];
                    if (!transA) {
                        ap = apack;
                        pack_a_rows(ap, a + (long)i * lda + pc, lda, mr, kc);
                    }
                    const int next = i + mr, next_mr = m - next < mr ? m - next : mr;
                    float *ci = c + (long)i * ldc + jc;
                    for (int j = 0, t = 0; j < nc; j += NR, t++) {
                        // (With few kernel calls per panel there is nothing to overlap with, and small operands
                        // are in cache anyway.) Transposed A: the next group's kc source rows, over the whole group.
                        if (!transA && next_mr > 0 && calls >= 4)
                            prefetch_part(a + (long)next * lda + pc, lda, next_mr, kc, t, calls);
                        if (transA && next_group < m && calls >= 4)
                            prefetch_part(a + (long)pc * lda + next_group, lda, kc, next_span + 15, q * calls + t,
                                          gn * calls);
                        (transA ? kernels : kernels_rows)[mr](pairs, ap, bpack + (long)j * pairs, ci + j, ldc, nc - j,
                                                              alpha, beta_block);
                    }
                }
                i0 = col[gn - 1] + width[gn - 1];
            }
        }
    }
}

#else  // not x86-64: no AVX-512 BF16 possible

int graft_bf16_hardware(void) { return 0; }

void graft_bf16_gemm(int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
    (void)transA, (void)transB, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
    (void)beta, (void)c, (void)ldc;
    abort();  // contract: only called when graft_bf16_hardware() == 1
}

#endif
