#ifndef GRAFT_BF16_H
#define GRAFT_BF16_H

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU and OS run AVX-512 BF16 (avx512f, avx512bw, avx512vl, avx512bf16 and the OS saves zmm state), else 0.
int graft_bf16_hardware(void);

/// C = alpha · op(A) · op(B) + beta · C, row-major, op = transpose when transA/transB is non-zero (cblas_sgemm's
/// meaning with CblasRowMajor). A and B are fp32; each element is rounded to bf16 (round to nearest even; NaN kept
/// a NaN) as it is packed; products accumulate in fp32. beta == 0 means C is written without being read (NaN in C is
/// overwritten). m, n or k may be 0 (k == 0: C = beta·C). Single-threaded: the caller splits work across threads
/// by calling it on disjoint row ranges of C.
/// Must only be called when graft_bf16_hardware() returns 1.
void graft_bf16_gemm(int transA, int transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/// dst[i] = src[i] rounded to the nearest bf16 value (ties to even), kept as fp32; NaN stays NaN, ±inf stays.
/// Portable (no AVX-512 needed): the reference numerics for machines without the hardware.
/// Bit-exact with the vcvtne2ps2bf16 used by graft_bf16_gemm: fp32 subnormals become ±0 (the instruction's DAZ),
/// values at or above the midpoint between the largest bf16 and 2^128 (FLT_MAX included) become ±inf, NaNs are quieted.
void graft_bf16_round(const float *src, float *dst, long count);

#ifdef __cplusplus
}
#endif

#endif
