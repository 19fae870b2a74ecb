import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ends the whole job when this rank makes no progress for `timeout` seconds: a rank that died or hangs would
/// otherwise leave the others waiting in a collective forever. The trainer marks progress at every step.
public final class Watchdog: Sendable {
    public let timeout: Double
    private let communicator: any Communicator
    /// Nanoseconds (monotonic) of the last progress mark, and where it was.
    private let lastMark = Atomic<UInt64>(0)
    private let epoch = Atomic<Int>(0), step = Atomic<Int>(0)
    private let running = Atomic<Bool>(false)

    public init(timeout: Double, communicator: any Communicator) {
        precondition(timeout > 0, "Watchdog: timeout must be positive, got \(timeout)")
        (self.timeout, self.communicator) = (timeout, communicator)
    }

    /// Records progress: the step under way now.
    public func mark(epoch: Int, step: Int) {
        self.epoch.store(epoch, ordering: .relaxed)
        self.step.store(step, ordering: .relaxed)
        lastMark.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
    }

    /// Watches until `stop()`; checks a few times per timeout.
    public func start() {
        mark(epoch: epoch.load(ordering: .relaxed), step: step.load(ordering: .relaxed))
        guard !running.exchange(true, ordering: .acquiring) else { return }
        let interval = Swift.max(0.05, Swift.min(1, timeout / 4))
        DispatchQueue.global().async { [self] in
            while running.load(ordering: .acquiring) {
                usleep(UInt32(interval * 1e6))
                let idle = Double(DispatchTime.now().uptimeNanoseconds - lastMark.load(ordering: .acquiring)) / 1e9
                guard running.load(ordering: .acquiring), idle > timeout else { continue }
                let text = "[rank \(communicator.rank)/\(communicator.size)] error: step \(step.load(ordering: .relaxed) + 1) "
                    + "of epoch \(epoch.load(ordering: .relaxed) + 1) has not finished in \(Int(timeout)) s "
                    + "(training.step-timeout): a rank is stuck or gone; ending the job\n"
                _ = text.withCString { write(2, $0, strlen($0)) }
                communicator.abort(code: 1)
            }
        }
    }

    public func stop() { running.store(false, ordering: .releasing) }
}
