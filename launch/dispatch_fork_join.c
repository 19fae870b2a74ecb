/* What a parallel region costs on this machine through libdispatch, the pool Graft's own kernels share work over
 * (`parallelChunks`, `shareImages`): two lanes of a fixed amount of arithmetic each, through dispatch_apply_f on
 * the global queue, beside both lanes run one after the other on this thread; with and without serial work
 * between the regions (as between a step's operations).
 *   TC=$(dirname $(dirname $(command -v swift)))
 *   clang -O2 -I$TC/lib/swift launch/dispatch_fork_join.c -L$TC/lib/swift/linux -ldispatch -lBlocksRuntime \
 *     -Wl,-rpath,$TC/lib/swift/linux -o /tmp/fork_join && /tmp/fork_join */
#include <dispatch/dispatch.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile float sink[64];

/* One lane: `steps` dependent float additions (about 4 cycles each). */
static void lane(void *steps, size_t i) {
    float s = 0;
    for (long k = 0; k < (long)steps; k++) s += (float)k * 0.5f;
    sink[(i * 16) % 64] = s;
}

static void between(int serialWork) {
    volatile float s = 0;
    for (int k = 0; k < serialWork; k++) s += (float)k;
}

int main(void) {
    dispatch_queue_t queue = dispatch_get_global_queue(0, 0);
    for (long steps = 2000; steps <= 2000000; steps *= 10) {
        for (int gap = 0; gap <= 20000; gap += 20000) {
            int regions = steps >= 2000000 ? 50 : 500;
            double start = now();
            for (int r = 0; r < regions; r++) {
                dispatch_apply_f(2, queue, (void *)steps, lane);
                between(gap);
            }
            double parallel = (now() - start) / regions * 1e6;
            start = now();
            for (int r = 0; r < regions; r++) {
                lane((void *)steps, 0);
                lane((void *)steps, 1);
                between(gap);
            }
            double serial = (now() - start) / regions * 1e6;
            printf("%8ld steps per lane, %5d serial steps between: two lanes through dispatch %8.1f us, "
                   "one after the other %8.1f us (%.2fx)\n", steps, gap, parallel, serial, serial / parallel);
        }
    }
    return 0;
}
