import CBLAS
import Dispatch
import Synchronization

/// The number of worker threads Graft's own kernels split large loops over: `GRAFT_NUM_THREADS` if set
/// (launch scripts set it to 1 when ranks share cores), else every core.
public let kernelThreads: Int = {
    if let text = getenv("GRAFT_NUM_THREADS"), let n = Int(String(cString: text)), n > 0 { return n }
    return max(1, System.activeProcessorCount)
}()

enum System {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }
}

/// Splits `0..<count` into contiguous chunks of at least `grain` items and runs them on the worker threads.
/// Small loops run inline: a parallel region costs microseconds even with the pool's workers awake.
@inline(__always)
public func parallelChunks(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(kernelThreads, count / max(grain, 1))
    if chunks <= 1 { body(0..<count); return }
    let per = (count + chunks - 1) / chunks
    runLanes(chunks) { c in
        let lo = c * per
        body(lo..<min(count, lo + per))
    }
}

/// body(0), …, body(lanes − 1) at once, on this thread and the worker pool; through libdispatch when the pool is
/// taken (a call from inside a lane, or from another thread meanwhile).
@inline(__always)
func runLanes(_ lanes: Int, _ body: (Int) -> Void) {
    if SpinningPool.shared.run(lanes: lanes, body) { return }
    withoutActuallyEscaping(body) { body in
        // The lanes are disjoint and the call returns only when all are done, so sharing `body` is safe.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: lanes) { shared.value($0) }
    }
}

/// `parallelChunks`, or the whole range on this thread (for loops already inside a thread's share of the work).
@inline(__always)
func chunks(_ count: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelChunks(count, grain: grain, body) } else { body(0..<count) }
}

/// Runs body(first, count, parallel) over a batch of images: with several worker threads each takes one contiguous
/// share through every step of a kernel, OpenBLAS held to one thread and `parallel` false; with one thread, the
/// whole batch with `parallel` true. For kernels made of many small GEMMs and copies, which split badly one by one.
func shareImages(_ batch: Int, _ body: (Int, Int, Bool) -> Void) {
    let groups = min(kernelThreads, batch)
    guard groups > 1 else { return body(0, batch, true) }
    let per = (batch + groups - 1) / groups
    withSingleThreadedBLAS {
        runLanes(groups) { g in
            let first = g * per
            if first < batch { body(first, min(per, batch - first), false) }
        }
    }
}

/// Runs `body` with OpenBLAS held to one thread: for loops that give each worker thread GEMMs of its own.
func withSingleThreadedBLAS<T>(_ body: () -> T) -> T {
    let saved = openblas_get_num_threads()
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(saved) }
    return body()
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

#if canImport(Glibc)
import Glibc
#endif

/// Graft's own worker threads (kernelThreads − 1 of them) for `parallelChunks` and `shareImages`. After a parallel
/// region each keeps polling for the next, yielding its core meanwhile, and sleeps only after a while: a step's
/// operations follow one another within microseconds, and a sleeping thread takes longer than that to wake. Through
/// libdispatch alone, two lanes of 15 µs took 41–48 µs against 29 µs one after the other on the 2-vCPU machine
/// here (`launch/dispatch_fork_join.c`).
final class SpinningPool: @unchecked Sendable {
    static let shared = SpinningPool(workers: kernelThreads - 1)

    private let workers: Int
    /// Bumped to start a region; workers run their lane when they see it change.
    private let generation = Atomic<Int>(0)
    /// Workers that have not yet finished the current region.
    private let unfinished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let taken = Atomic<Bool>(false)
    /// The region's body and lane count, published by `generation`'s increment.
    private var body: ((Int) -> Void)?
    private var lanes = 0
    private let sleep = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Yields a worker polls before it sleeps (each a sched_yield, about a microsecond when nothing else runs).
    private static let pollsBeforeSleep = 2000

    private init(workers: Int) {
        self.workers = Swift.max(0, workers)
        pthread_mutex_init(sleep, nil)
        pthread_cond_init(wake, nil)
        for index in 0..<self.workers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(WorkerContext(pool: self, lane: index + 1)).toOpaque()
            let created = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.work(lane: context.lane)
                return nil
            }, context)
            precondition(created == 0, "SpinningPool: cannot start a worker thread (error \(created))")
            pthread_detach(thread)
        }
    }

    private final class WorkerContext {
        let pool: SpinningPool, lane: Int
        init(pool: SpinningPool, lane: Int) { (self.pool, self.lane) = (pool, lane) }
    }

    /// Runs body(0..<lanes) with this thread taking lane 0; false, having run nothing, when there are fewer
    /// workers than lanes − 1 or the pool is running another region.
    func run(lanes count: Int, _ region: (Int) -> Void) -> Bool {
        guard count - 1 <= workers,
              taken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(region) { region in
            body = region
            lanes = count
            unfinished.store(workers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(sleep)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(sleep)
            }
            region(0)
            var polls = 0
            while unfinished.load(ordering: .acquiring) > 0 {
                polls += 1
                if polls > 64 { sched_yield() }
            }
            body = nil
        }
        taken.store(false, ordering: .releasing)
        return true
    }

    private func work(lane: Int) {
        var seen = 0
        while true {
            var polls = 0
            while generation.load(ordering: .acquiring) == seen {
                if polls < Self.pollsBeforeSleep {
                    polls += 1
                    sched_yield()
                    continue
                }
                pthread_mutex_lock(sleep)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, sleep) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(sleep)
            }
            seen = generation.load(ordering: .acquiring)
            if lane < lanes, let body { body(lane) }
            unfinished.subtract(1, ordering: .releasing)
        }
    }
}
