#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import GraftTrain
import Synchronization

/// SIGTERM, SIGINT and SIGUSR1 (a scheduler's warning before preemption or the time limit) ask a run to stop after
/// the step under way and save where it is; a second signal of the same kind ends the process at once.
enum StopSignals {
    /// The first stop signal received, or 0.
    static let received = Atomic<Int32>(0)

    /// The exit status of a run stopped by a signal after saving: EX_TEMPFAIL, "try again", which the cluster scripts
    /// turn into a requeue with --resume.
    static let exitCode: Int32 = 75

    static func install() {
        for signal in [SIGTERM, SIGINT, SIGUSR1] {
            _ = Glibc.signal(signal) { number in
                StopSignals.received.store(number, ordering: .relaxed)
                // The next one takes its default action.
                _ = Glibc.signal(number, SIG_DFL)
            }
        }
    }

    /// Runs `body` with the handlers installed and a flag that reads them; a run that stopped on a signal
    /// (`TrainingInterrupted`, after saving) exits with `exitCode`.
    static func stoppable(_ body: (_ stopRequested: @escaping () -> Bool) throws -> Void) throws {
        install()
        do {
            try body { received.load(ordering: .relaxed) != 0 }
        } catch is TrainingInterrupted {
            throw ExitCode(exitCode)
        }
    }

    static var name: String {
        switch received.load(ordering: .relaxed) {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGUSR1: "SIGUSR1"
        default: "a signal"
        }
    }
}
