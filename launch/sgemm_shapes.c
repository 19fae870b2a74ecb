/* OpenBLAS's own sgemm GF/s on the GEMM shapes of the benchmark's GEMM-bound steps, one and two threads, best of
 * five rounds: what Graft's steps could reach before any other work.
 *   cc -O2 launch/sgemm_shapes.c -lopenblas -o /tmp/sgemm_shapes && /tmp/sgemm_shapes
 * Unset OPENBLAS_CORETYPE (or set the CPU's own kernel set) so that OpenBLAS picks the same kernels as Graft. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    /* m, n, k of C[m, n] = A[m, k] B[k, n]: 1024², MiniLM-L6's training shapes (16 × 64 tokens, width 384, feed
     * forward 1536), the MLP's (batch 128, 784-512). */
    static const int shapes[][3] = {{1024, 1024, 1024}, {1024, 384, 384}, {1024, 1536, 384}, {1024, 384, 1536},
                                    {384, 384, 1024},   {1536, 384, 1024}, {128, 512, 784},  {512, 784, 128}};
    printf("core %s\n", openblas_get_corename());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (long i = 0; i < (long)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
        for (int threads = 1; threads <= 2; threads++) {
            openblas_set_num_threads(threads);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
            int calls = (int)(2e9 / (2.0 * m * n * k)) + 1;
            double best = 1e30;
            for (int round = 0; round < 5; round++) {
                double start = now();
                for (int i = 0; i < calls; i++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
                double seconds = (now() - start) / calls;
                if (seconds < best) best = seconds;
            }
            printf("%5d x %5d x %5d  %d thread(s)  %6.1f GF/s\n", m, n, k, threads, 2.0 * m * n * k / best / 1e9);
        }
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
