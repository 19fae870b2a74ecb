/* OpenBLAS's own sgemm GF/s on the GEMM shapes of the benchmark's GEMM-bound steps, best of five rounds: one
 * thread, two through OpenBLAS's threading, and two threads each running single-threaded OpenBLAS on half the
 * rows or half the columns. What Graft's steps could reach before any other work.
 *   cc -O2 launch/sgemm_shapes.c -lopenblas -lpthread -o /tmp/sgemm_shapes && /tmp/sgemm_shapes
 * Unset OPENBLAS_CORETYPE (or set the CPU's own kernel set) so that OpenBLAS picks the same kernels as Graft. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* One row-major C[m, n] = A[m, k] B[k, n] with leading dimensions of its own. */
typedef struct {
    int m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
} Product;

static void multiply(const Product *p) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->m, p->n, p->k, 1, p->a, p->lda, p->b, p->ldb, 0, p->c,
                p->ldc);
}

static void *multiplyOnThread(void *p) {
    multiply(p);
    return NULL;
}

/* The product in two halves, by rows (`byRows`) or by columns, the second half on a thread of its own. */
static void halves(int m, int n, int k, const float *a, const float *b, float *c, int byRows) {
    Product first = {m, n, k, k, n, n, a, b, c}, second = first;
    if (byRows) {
        first.m = m / 2;
        second.m = m - m / 2;
        second.a = a + (long)first.m * k;
        second.c = c + (long)first.m * n;
    } else {
        first.n = n / 2;
        second.n = n - n / 2;
        second.b = b + first.n;
        second.c = c + first.n;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, multiplyOnThread, &second);
    multiply(&first);
    pthread_join(thread, NULL);
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
        static const char *ways[] = {"1 thread", "2 threads (OpenBLAS)", "2 threads, rows split", "2 threads, columns split"};
        for (int way = 0; way < 4; way++) {
            openblas_set_num_threads(way == 1 ? 2 : 1);
            int calls = (int)(2e9 / (2.0 * m * n * k)) + 1;
            double best = 1e30;
            for (int round = -1; round < 5; round++) { /* round -1 warms up */
                double start = now();
                for (int i = 0; i < calls; i++) {
                    if (way < 2) {
                        Product p = {m, n, k, k, n, n, a, b, c};
                        multiply(&p);
                    } else {
                        halves(m, n, k, a, b, c, way == 2);
                    }
                }
                double seconds = (now() - start) / calls;
                if (round >= 0 && seconds < best) best = seconds;
            }
            printf("%5d x %5d x %5d  %-24s %6.1f GF/s\n", m, n, k, ways[way], 2.0 * m * n * k / best / 1e9);
        }
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
