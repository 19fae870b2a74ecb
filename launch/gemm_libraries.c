/* GF/s of one fp32 GEMM library, OpenBLAS's cblas_sgemm or oneDNN's dnnl_sgemm, on 1024² and on the GEMM shapes
 * of the benchmark's MLP and MiniLM-L6 training steps (forward, input and weight gradients), median of nine rounds.
 * One library per process, since each keeps its idle threads spinning for a while after a product; alternate the
 * two for a comparison (the header is in Debian's libdnnl-dev):
 *   cc -O2 launch/gemm_libraries.c -lopenblas -ldnnl -fopenmp -o /tmp/gemm_libraries
 *   for round in 1 2 3; do for lib in openblas onednn; do /tmp/gemm_libraries $lib 2; done; done
 * Unset OPENBLAS_CORETYPE (or set the CPU's own kernel set) so that OpenBLAS picks the same kernels as Graft, and
 * set GOMP_SPINCOUNT=3000 as Graft does. */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "openblas") && strcmp(argv[1], "onednn"))) {
        fprintf(stderr, "usage: %s openblas|onednn THREADS\n", argv[0]);
        return 2;
    }
    int onednn = !strcmp(argv[1], "onednn"), threads = atoi(argv[2]);
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    /* Row-major C[m, n] = op(A) op(B): m, n, k, A transposed, B transposed. */
    static const int shapes[][5] = {
        {1024, 1024, 1024, 0, 0},
        /* MLP 784-512-512-10, batch 128: forward, input gradient, weight gradients */
        {128, 512, 784, 0, 1}, {128, 512, 512, 0, 1}, {128, 512, 512, 0, 0}, {512, 512, 128, 1, 0},
        {512, 784, 128, 1, 0},
        /* MiniLM-L6, 16 × 64 tokens: projections and feed-forward, forward, input and weight gradients */
        {1024, 384, 384, 0, 1}, {1024, 1536, 384, 0, 1}, {1024, 384, 1536, 0, 0}, {384, 384, 1024, 1, 0},
        {1536, 384, 1024, 1, 0}, {384, 1536, 1024, 1, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ta = shapes[s][3], tb = shapes[s][4];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < (long)m * k; i++) a[i] = rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < (long)k * n; i++) b[i] = rand() / (float)RAND_MAX - 0.5f;
        int lda = ta ? m : k, ldb = tb ? k : n;
        double flops = 2.0 * m * n * k, rounds[9];
        int calls = (int)(0.03 / (flops / 3e11)) + 1;  /* rounds of about 30 ms */
        for (int r = 0; r < 9; r++) {
            double start = now();
            for (int i = 0; i < calls; i++) {
                if (onednn)
                    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1, a, lda, b, ldb, 0, c, n);
                else
                    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                                1, a, lda, b, ldb, 0, c, n);
            }
            rounds[r] = (now() - start) / calls;
        }
        qsort(rounds, 9, sizeof rounds[0], ascending);
        printf("%s %d thread(s) %5d x %5d x %5d %c%c %6.1f GF/s\n", argv[1], threads, m, n, k, ta ? 'T' : 'N',
               tb ? 'T' : 'N', flops / rounds[4] / 1e9);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
