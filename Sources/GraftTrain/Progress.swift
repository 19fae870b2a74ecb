import Foundation

/// Where a long pass (caching features, an epoch, an evaluation) says how far it is. Rank 0's run sets one; every
/// rank does the same work, so one rank's progress is the job's.
public protocol ProgressReporter: AnyObject {
    func begin(_ label: String, total: Int, unit: String)
    func advance(to done: Int)
    func end()
}

/// Progress for people: on a terminal a bar redrawn in place, with the rate and the time left; elsewhere (a log
/// file, mpirun's forwarding) a plain line every `lineEvery` seconds. Passes shorter than `quietFor` seconds show
/// nothing.
public final class TextProgress: ProgressReporter {
    private let isTerminal: Bool
    private let quietFor: Double, lineEvery: Double
    private let write: (String) -> Void
    private var label = "", unit = "", total = 0, done = 0
    private var started = Date(), lastShown: Date?
    private var drawn = false

    public init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0, quietFor: Double = 1, lineEvery: Double = 10,
                write: @escaping (String) -> Void = { text in FileHandle.standardOutput.write(Data(text.utf8)) }) {
        (self.isTerminal, self.quietFor, self.lineEvery, self.write) = (isTerminal, quietFor, lineEvery, write)
    }

    public func begin(_ label: String, total: Int, unit: String) {
        (self.label, self.total, self.unit, done, started, lastShown, drawn) = (label, total, unit, 0, Date(), nil, false)
    }

    public func advance(to done: Int) {
        self.done = done
        let now = Date(), elapsed = now.timeIntervalSince(started)
        // A plain log gets its last line from `end`.
        guard elapsed >= quietFor, total > 0, isTerminal || done < total else { return }
        let interval = isTerminal ? 0.1 : lineEvery
        if let lastShown, now.timeIntervalSince(lastShown) < interval, done < total { return }
        lastShown = now
        show(elapsed: elapsed)
    }

    public func end() {
        if drawn { show(elapsed: Date().timeIntervalSince(started), final: true) }
        drawn = false
    }

    private func show(elapsed: Double, final: Bool = false) {
        let rate = Double(done) / max(elapsed, 1e-9)
        let left = rate > 0 ? Double(total - done) / rate : 0
        let figures = String(format: "%d/%d %@  %.1f %@/s", done, total, unit, rate, unit)
            + (final ? String(format: "  %@", clock(elapsed)) : String(format: "  ETA %@", clock(left)))
        if isTerminal {
            let width = 30, filled = total == 0 ? width : min(width, width * done / total)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[2K\(label) \(bar) \(figures)" + (final ? "\n" : ""))
        } else {
            write("\(label): \(figures)\n")
        }
        drawn = true
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
